# test_diskfull.py - a full disk: ingest answers 507 with a JSON error, nothing half-written is
# visible, the relay stays up and serves reads, and ingest works again once space returns.
# The database lives on a small tmpfs mounted for the test (needs root; skipped otherwise).
import os
import subprocess
import sys
import tempfile

from harness import Relay, check, eq, error_of, make_jpeg_of_size, new_id, run_tests

SKIP = 77  # CTest SKIP_RETURN_CODE


def mount_tmpfs(path, size):
    return subprocess.run(["mount", "-t", "tmpfs", "-o", "size=%s,mode=0755" % size, "tmpfs",
                           path], capture_output=True).returncode == 0


def test_disk_full_507_and_recovery():
    workdir = tempfile.mkdtemp(prefix="ei-bb-full-")
    dbdir = os.path.join(workdir, "db")
    os.makedirs(dbdir)
    check(mount_tmpfs(dbdir, "3m"), "mount tmpfs")
    try:
        with Relay(workdir=workdir) as r:
            image = make_jpeg_of_size(50000)[0]
            acked, full = [], None
            for i in range(200):  # 3 MB holds far fewer than 200 x 50 KB
                ident = new_id()
                resp = r.ingest_multipart({"id": ident, "result": {"classification": {"x": 0.5}}},
                                          image, "image/jpeg", expect=None)
                if resp.status == 507:
                    full = resp
                    break
                eq(resp.status, 201, "ingest before the disk is full")
                acked.append(ident)
            check(full is not None, "disk never reported full")
            error_of(full, 507, "storage_full")
            check(len(acked) > 5, "some inferences fit first (%d)" % len(acked))

            # still up, still serving, nothing half-written: exactly the acknowledged rows
            h = r.health()
            eq(h["status"], "degraded", "health while full")
            check(h["checks"]["store"].startswith("writes failing: disk full (SQLITE_FULL) since "),
                  "checks.store while full: %r" % h["checks"])
            ids = [it["id"] for it in r.list_all()]
            eq(sorted(ids), sorted(acked), "stored rows are exactly the acknowledged ones")
            for _ in range(3):
                resp = r.ingest_multipart({"result": {"classification": {"x": 0.5}}}, image,
                                          "image/jpeg", expect=None)
                error_of(resp, 507, "storage_full")
            eq(len(r.list_all()), len(acked), "refused ingests left nothing behind")
            img = r.get("/api/v1/inferences/%s/image" % acked[0])
            eq(img.status, 200, "earlier images still readable")
            eq(img.body, image, "earlier image intact")

            # space returns: the next ingest succeeds without a restart
            eq(subprocess.run(["mount", "-o", "remount,size=32m", dbdir]).returncode, 0, "grow")
            resp = r.ingest_multipart({"result": {"classification": {"x": 0.5}}}, image,
                                      "image/jpeg", expect=None)
            eq(resp.status, 201, "ingest after space returned: %r" % resp.body[:200])
            eq(len(r.list_all()), len(acked) + 1, "rows after recovery")
            h = r.health()
            eq((h["status"], h["checks"]["store"]), ("ok", "ok"), "health after recovery")
            r.stop()
            check("full" in r.log().lower(), "the log names the full disk")
            out = subprocess.run(["sqlite3", r.db_path, "PRAGMA integrity_check;"],
                                 capture_output=True, text=True)
            if out.returncode == 0:  # sqlite3 CLI present (a test dependency)
                eq(out.stdout.strip(), "ok", "integrity_check")
    finally:
        subprocess.run(["umount", "-l", dbdir])


if __name__ == "__main__":
    if os.geteuid() != 0 or not os.path.exists("/proc/filesystems") or \
            "tmpfs" not in open("/proc/filesystems").read():
        print("SKIP: needs root and tmpfs to simulate a full disk")
        sys.exit(SKIP)
    probe = tempfile.mkdtemp(prefix="ei-bb-mnt-")
    if not mount_tmpfs(probe, "1m"):
        print("SKIP: cannot mount tmpfs here")
        sys.exit(SKIP)
    subprocess.run(["umount", probe])
    run_tests([test_disk_full_507_and_recovery])
