#!/usr/bin/env python3
# seeds_from_fixtures.py - writes the seeds of corpus/serial, corpus/runner, corpus/normalize
# and corpus/preprocess that are made from tests/fixtures (whole files, CRLF and chunked variants,
# truncations, single messages, replays), so the fuzzers start from the formats the tests use.
# The other seeds (hand-written edge cases, fuzz-<sha1> finds, regress-<what> reproducers) are
# not touched. Run it after changing a fixture, then `ctest -L fuzz` in both builds.
#
# Usage: python3 tests/fuzz/seeds_from_fixtures.py
import json
import os
import random
import re

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(HERE, "..", "fixtures")
CORPUS = os.path.join(HERE, "corpus")

# fuzz_serial's input: byte 0 % 8 = how many chunk-size bytes follow, then the text.
WHOLE = b"\x00"
CRLF_CHUNKED = b"\x03\x01\x10\xff"  # chunks of 2, 17 and 256 bytes, cycled
BYTEWISE = b"\x01\x00"  # chunks of 1 byte


def read(*path):
    with open(os.path.join(FIXTURES, *path), "rb") as f:
        return f.read()


def write(harness, name, data):
    with open(os.path.join(CORPUS, harness, name), "wb") as f:
        f.write(data)


def serial_seeds():
    names = sorted(n for n in os.listdir(os.path.join(FIXTURES, "serial")) if n.endswith(".txt"))
    for name in names:
        write("serial", name, WHOLE + read("serial", name))
    for name in ("classic-classification.txt", "classic-object-detection.txt",
                 "esp32-camera.txt", "sdk-timing.txt", "sdk-current-classification.txt",
                 "sdk-current-more.txt", "debug-window.txt"):
        crlf = read("serial", name).replace(b"\n", b"\r\n")
        write("serial", name[:-4] + "-crlf-chunked.txt", CRLF_CHUNKED + crlf)
    cls, sdk = read("serial", "classic-classification.txt"), read("serial", "sdk-timing.txt")
    rnd = random.Random(9)
    garbage = bytes(rnd.getrandbits(8) for _ in range(200)).replace(b"\n", b"") + b"\n"
    write("serial", "noise-between.txt", WHOLE + cls + garbage + b"x" * 120 + b"\n" + sdk)
    write("serial", "truncated-classification.txt", WHOLE + cls[:len(cls) * 2 // 3])
    write("serial", "truncated-sdk-bytewise.txt", BYTEWISE + sdk[:-7])


LINE = re.compile(rb'^\{"dir":"(server|client)","msg":(.*)\}$')


def session(name):
    """(index, dir, raw message) of each line of a runner-ws session."""
    out = []
    for i, line in enumerate(read("runner-ws", name).splitlines()):
        m = LINE.match(line)
        out.append((i, m.group(1).decode(), m.group(2)))
    return out


def runner_seeds():
    for name in ("classification", "object-detection"):
        lines = session(name + ".jsonl")
        server = [(i, raw) for i, d, raw in lines if d == "server"]
        kinds = {i: json.loads(raw)["type"] for i, raw in server}
        picks = [i for i in kinds if kinds[i] in ("hello", "handling-message-success")]
        cls = [i for i in kinds if kinds[i] == "classification"]
        for i in picks + [cls[0], cls[-1]]:
            write("runner", "%s-%02d-%s.json" % (name, i, kinds[i]), dict(server)[i])
        write("runner", name + "-replay.txt", b"\n".join(raw for _i, raw in server) + b"\n")
        if name == "classification":  # a frame and the classification made from it
            frame = next(i for i in kinds if kinds[i] == "camera-preview")
            write("runner", "frame-then-class.txt",
                  dict(server)[frame] + b"\n" + dict(server)[frame + 1] + b"\n")
        # normalize's input: the POST body shape, and the runner's message as it is
        for k, i in enumerate(cls[:2]):
            raw = dict(server)[i]
            result = json.dumps(json.loads(raw)["result"], separators=(",", ":"))
            write("normalize", "fixture-%s-%d.json" % (name, k), b'{"result":%s}' %
                  result.encode())
            write("normalize", "runner-%s-%d.json" % (name, k), raw)


# fuzz_preprocess's input: byte 0 = 3 channels (bit 0), mode (bits 1-2: none, fit-shortest,
# fit-longest, squash), result image (bit 3); bytes 1, 2 = width, height - 1; then the frame.
PREPROCESS = [("exact-32x32.jpg", 3, 0, 32, 32), ("exact-32x32.jpg", 1, 3, 32, 32),
              ("small-40x30.jpg", 3, 2, 16, 16), ("small-40x30.jpg", 1, 1, 48, 32),
              ("gray-200x150.jpg", 3, 1, 8, 8), ("cmyk-120x90.jpg", 3, 2, 16, 9),
              ("icc-p3-300x200.jpg", 1, 3, 12, 20), ("alpha-120x90.png", 3, 2, 20, 10)]


def preprocess_seeds():
    os.makedirs(os.path.join(CORPUS, "preprocess"), exist_ok=True)
    for name, ch, mode, w, h in PREPROCESS:
        head = bytes(((ch == 3) | mode << 1 | 8, w - 1, h - 1))
        frame = read("eim-features", "images", name)
        stem = "%s-c%d-m%d-%dx%d" % (os.path.splitext(name)[0], ch, mode, w, h)
        write("preprocess", stem + os.path.splitext(name)[1], head + frame)
    frame = read("eim-features", "images", "small-40x30.jpg")
    write("preprocess", "truncated-small-40x30.jpg", bytes((9, 15, 15)) + frame[:len(frame) // 2])


if __name__ == "__main__":
    serial_seeds()
    runner_seeds()
    preprocess_seeds()
