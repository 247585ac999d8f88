# disk.py - a small tmpfs for the database of the full-disk tests (test_diskfull*.py): mounting
# one, and the skip (exit 77) where that is not possible (not root, no tmpfs, no mount rights);
# filling it with image ingests, and the database's integrity check afterwards.
# Python 3 standard library only.
import os
import sqlite3
import subprocess
import sys
import tempfile

from .checks import TestFailure, eq
from .http import error_of
from .relay import new_id

SKIP_CODE = 77


def mount_tmpfs(path, size):
    """Mounts a tmpfs of size ("3m") on path; True on success."""
    return subprocess.run(["mount", "-t", "tmpfs", "-o", "size=%s,mode=0755" % size, "tmpfs",
                           path], capture_output=True).returncode == 0


def resize_tmpfs(path, size):
    return subprocess.run(["mount", "-o", "remount,size=%s" % size, path]).returncode == 0


def umount(path):
    subprocess.run(["umount", "-l", path])


def require_tmpfs():
    """Exits with CTest's skip code unless this process can mount a tmpfs."""
    if os.geteuid() != 0 or not os.path.exists("/proc/filesystems") or \
            "tmpfs" not in open("/proc/filesystems").read():
        print("SKIP: needs root and tmpfs to simulate a full disk", flush=True)
        sys.exit(SKIP_CODE)
    probe = tempfile.mkdtemp(prefix="ei-bb-mnt-")
    if not mount_tmpfs(probe, "1m"):
        print("SKIP: cannot mount tmpfs here", flush=True)
        sys.exit(SKIP_CODE)
    subprocess.run(["umount", probe])


def post_image(r, image):
    """One inference with a JPEG; returns (its id, the response). A 507 must be the documented
    storage_full error."""
    ident = new_id()
    resp = r.ingest_multipart({"id": ident, "result": {"classification": {"x": 0.5}}}, image,
                              "image/jpeg", expect=None)
    if resp.status == 507:
        error_of(resp, 507, "storage_full")
    return ident, resp


def ingest_until_full(r, image, limit=400):
    """Posts image until one is refused with 507; returns (acked ids, the 507, its id)."""
    acked = []
    for _ in range(limit):
        ident, resp = post_image(r, image)
        if resp.status == 507:
            return acked, resp, ident
        eq(resp.status, 201, "ingest before the disk is full: %r" % resp.body[:200])
        acked.append(ident)
    raise TestFailure("disk never reported full after %d posts" % limit)


def integrity(path):
    """PRAGMA integrity_check of the database at path ("ok" when sound)."""
    db = sqlite3.connect(path)
    try:
        return "\n".join(row[0] for row in db.execute("PRAGMA integrity_check"))
    finally:
        db.close()
