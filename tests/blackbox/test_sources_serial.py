# test_sources_serial.py - black-box tests of the "serial" source: the real binary reads Edge
# Impulse firmware text from a pseudo-terminal standing in for the MCU's device, from a
# command's stdout, and survives a device path that does not exist (GET /api/v1/sources).
import os
import shutil
import tempfile

from harness import (Relay, check, eq, fixture_path, free_port, run_tests, source_status,
                     sources_cfg, wait_status, wait_stored)


def fixture(name):
    return fixture_path("serial", name)


def boxes_of(item):
    return item["result"].get("bounding_boxes", [])


def test_pty_device():
    master, slave = os.openpty()
    path = os.ttyname(slave)
    try:
        with Relay(sources_cfg([{"name": "mcu", "kind": "serial", "device": path}])) as r:
            wait_status(r, "mcu", "source running", lambda s: s["state"] == "running")
            data = open(fixture("classic-object-detection.txt"), "rb").read()
            for i in range(0, len(data), 7):  # lines arrive in pieces
                os.write(master, data[i:i + 7])
            items = wait_stored(r, "mcu", 3)
            eq(len(items), 3, "inferences from mcu")
            items.sort(key=lambda i: i["seq"])
            eq([i["kind"] for i in items], ["object-detection", "empty", "object-detection"],
               "kinds")
            eq(sum(len(boxes_of(i)) for i in items), 5, "boxes in total")
            eq(sorted(b["label"] for b in boxes_of(items[0])), ["forklift", "pallet"], "labels")
            eq(boxes_of(items[1]), [], "No objects found")
            st = source_status(r, "mcu")
            eq(st["kind"], "serial", "kind")
            eq(st["inferences"], 3, "inferences counter")
            eq(st["bytes"], len(data), "bytes counter")
    finally:
        os.close(master)
        os.close(slave)


def test_device_vanishes_and_returns():
    """The device path is a symlink to a pty: closing the pty and removing the link is the MCU
    unplugged; a new pty behind the same path is it plugged back in."""
    d = tempfile.mkdtemp(prefix="ei-bb-tty-")
    link = os.path.join(d, "ttyMCU")
    data = open(fixture("classic-object-detection.txt"), "rb").read()
    m1, s1 = os.openpty()
    os.symlink(os.ttyname(s1), link)
    m2 = s2 = None
    try:
        with Relay(sources_cfg([{"name": "plug", "kind": "serial", "device": link}])) as r:
            wait_status(r, "plug", "source running", lambda s: s["state"] == "running")
            os.write(m1, data)
            wait_stored(r, "plug", 3)
            os.close(m1)
            os.close(s1)
            m1 = None
            os.unlink(link)
            st = wait_status(r, "plug", "backoff after unplug", lambda s: s["state"] == "backoff")
            check(link in st["last_error"], "last_error names the device: %r" % st["last_error"])
            m2, s2 = os.openpty()
            os.symlink(os.ttyname(s2), link)
            st = wait_status(r, "plug", "running again",
                             lambda s: s["state"] == "running" and s["reconnects"] >= 1)
            os.write(m2, data)
            items = wait_stored(r, "plug", 6)
            eq(len(items), 6, "inferences across the reconnect")
            eq(source_status(r, "plug")["inferences"], 6, "inferences counter")
    finally:
        for fd in (m1, s1 if m1 is not None else None, m2, s2):
            if fd is not None:
                os.close(fd)
        shutil.rmtree(d, ignore_errors=True)


def test_command_once():
    cmd = "cat '%s'" % fixture("sdk-timing.txt")
    srcs = [{"name": "sdk", "kind": "serial", "command": cmd, "restart": False}]
    with Relay(sources_cfg(srcs)) as r:
        wait_status(r, "sdk", "command source stopped", lambda s: s["state"] == "stopped")
        items = wait_stored(r, "sdk", 4)
        eq(len(items), 4, "inferences from sdk (the command ran once)")
        items.sort(key=lambda i: i["seq"])
        eq(items[0]["kind"], "classification", "first kind")
        eq(len(boxes_of(items[1])), 2, "boxes of the second")
        eq(source_status(r, "sdk")["inferences"], 4, "inferences counter")


def test_command_restarts():
    cmd = "cat '%s'" % fixture("sdk-timing.txt")
    with Relay(sources_cfg([{"name": "again", "kind": "serial", "command": cmd}])) as r:
        st = wait_status(r, "again", "a restart", lambda s: s["reconnects"] >= 1)
        check(st["inferences"] >= 4, "inferences before the restart: %r" % st)
        wait_stored(r, "again", 8, exact=False)  # it runs on: 8 or more


def test_missing_device():
    path = "/dev/ei-relay-no-such-tty-%d" % os.getpid()
    srcs = [{"name": "gone", "kind": "serial", "device": path},
            {"name": "ws", "kind": "runner-ws", "url": "ws://127.0.0.1:%d/" % free_port()}]
    with Relay(sources_cfg(srcs)) as r:
        st = wait_status(r, "gone", "backoff", lambda s: s["state"] == "backoff")
        check(st["last_error"] and path in st["last_error"], "last_error %r" % st["last_error"])
        eq(r.health()["status"], "ok", "relay healthy with a failing source")
        wait_status(r, "ws", "runner-ws in backoff too", lambda s: s["state"] == "backoff")
        wait_status(r, "gone", "a retry", lambda s: s["reconnects"] >= 1)


if __name__ == "__main__":
    run_tests([test_pty_device, test_device_vanishes_and_returns, test_command_once, test_command_restarts, test_missing_device])
