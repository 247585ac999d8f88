# disk.py - a small tmpfs for the database of the full-disk tests (test_diskfull*.py): mounting
# one, and the skip (exit 77) where that is not possible (not root, no tmpfs, no mount rights).
# Python 3 standard library only.
import os
import subprocess
import sys
import tempfile

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
