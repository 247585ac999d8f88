# test_modules.py - black-box: libvips and GStreamer are modules the relay loads on first use
# (server/core/module.h), so an idle relay maps neither. After the start and after an image is
# stored (its header is read without libvips) no libvips or GStreamer library is mapped
# (/proc/PID/maps); the first thumbnail loads libvips (mapped from then on), still no GStreamer.
# A copy of the binary without its modules still stores images, and a thumbnail is a 500 that
# names the missing file; a broken module file (not an ELF) is a 500 naming its path. Neither
# crashes the relay (it stops cleanly afterwards).
import os
import shutil
import tempfile

from harness import (Relay, check, eq, error_of, make_jpeg, relay_bin, run_tests)

DOC = {"result": {"classification": {"a": 0.5}}}
NO_MODULE_DIR = {"EI_MODULE_DIR": ""}  # empty: not set (core/module.c), whatever the caller has


def mapped(r, what):
    """The mapped files of the relay whose name contains what."""
    with open("/proc/%d/maps" % r.proc.pid) as f:
        return sorted({ln.split()[-1] for ln in f if what in ln and "/" in ln})


def test_loaded_on_first_use():
    with Relay() as r:
        eq(mapped(r, "libvips"), [], "libvips mapped at the start")
        eq(mapped(r, "libgst"), [], "GStreamer mapped at the start")
        v = r.ingest_multipart(DOC, make_jpeg(64, 48), "image/jpeg").json()
        eq(v["image"]["width"], 64, "width read from the header")
        eq(mapped(r, "libvips"), [], "libvips mapped after an image was stored")
        th = r.get(v["image"]["thumbnail_url"])
        eq(th.status, 200, "thumbnail: %r" % th.body[:200])
        check(mapped(r, "ei-relay-vips.so") and mapped(r, "libvips"),
              "libvips not mapped after a thumbnail")
        eq(mapped(r, "libgst"), [], "GStreamer mapped without a camera")


class Copy:
    """The binary copied alone into a temp dir (with extra files beside it), run by EI_RELAY_BIN.
    The installed location (EI_MODULE_INSTALL_DIR) of a test build is not populated."""

    def __init__(self, extra=None):
        self.dir = tempfile.mkdtemp(prefix="ei-bb-mod-")
        self.bin = os.path.join(self.dir, "ei-relay")
        shutil.copy2(relay_bin(), self.bin)
        for name, data in (extra or {}).items():
            with open(os.path.join(self.dir, name), "wb") as f:
                f.write(data)
        self.old = os.environ.get("EI_RELAY_BIN")

    def __enter__(self):
        os.environ["EI_RELAY_BIN"] = self.bin
        return self

    def __exit__(self, *exc):
        if self.old is None:
            os.environ.pop("EI_RELAY_BIN", None)
        else:
            os.environ["EI_RELAY_BIN"] = self.old
        shutil.rmtree(self.dir, ignore_errors=True)


def thumbnail_error(r):
    v = r.ingest_multipart(DOC, make_jpeg(32, 32), "image/jpeg").json()
    eq(r.get_json("/api/v1/inferences/" + v["id"])["image"]["height"], 32, "stored image")
    return error_of(r.get(v["image"]["thumbnail_url"]), 500)[1]


def test_missing_module():
    with Copy() as c, Relay(env=NO_MODULE_DIR) as r:
        msg = thumbnail_error(r)
        check("ei-relay-vips.so is not installed" in msg and c.dir in msg,
              "the error names the missing file: %r" % msg)
        check("ei-relay-vips.so is not installed" in r.log(), "logged too")
        eq(mapped(r, "libvips"), [], "libvips mapped")
        msg2 = thumbnail_error(r)  # the same answer every time, nothing looked for again
        eq(msg2, msg, "second error")


def test_broken_module():
    with Copy({"ei-relay-vips.so": b"not an ELF file\n"}) as c, Relay(env=NO_MODULE_DIR) as r:
        msg = thumbnail_error(r)
        check("cannot load " + os.path.join(c.dir, "ei-relay-vips.so") in msg,
              "the error names the broken file: %r" % msg)


TESTS = [test_loaded_on_first_use, test_missing_module, test_broken_module]

if __name__ == "__main__":
    run_tests(TESTS)
