# test_diskfull.py - a full disk: ingest answers 507 with a JSON error, nothing half-written is
# visible, the relay stays up and serves reads, the oldest rows are evicted to make room so
# ingest resumes by itself, and ingest works again once space returns. (With forwarding on:
# test_diskfull_forward.py.)
# The database lives on a small tmpfs mounted for the test (needs root; skipped otherwise).
import os
import tempfile

from harness import Relay, check, eq, make_jpeg_of_size, run_tests, wait_for
from harness.disk import (ingest_until_full, integrity, mount_tmpfs, post_image, require_tmpfs,
                          resize_tmpfs, umount)


def test_disk_full_507_and_recovery():
    workdir = tempfile.mkdtemp(prefix="ei-bb-full-")
    dbdir = os.path.join(workdir, "db")
    os.makedirs(dbdir)
    check(mount_tmpfs(dbdir, "3m"), "mount tmpfs")
    try:
        # a chosen cap above the disk (the default would be lowered to half of it)
        with Relay({"cache_max_bytes": 1 << 30}, workdir=workdir) as r:
            image = make_jpeg_of_size(50000)[0]
            acked, full, full_id = ingest_until_full(r, image)
            check(len(acked) > 5, "some inferences fit first (%d)" % len(acked))

            # still up, still serving, nothing half-written: the newest acknowledged rows (a
            # full disk evicts the oldest rows, which nothing waits for with forwarding off)
            h = r.health()
            eq(h["status"], "degraded", "health while full")
            check(h["checks"]["store"].startswith("writes failing: disk full (SQLITE_FULL) since "),
                  "checks.store while full: %r" % h["checks"])
            ids = [it["id"] for it in r.list_all()]
            eq(sorted(ids), sorted(acked[len(acked) - len(ids):]), "stored: the newest acked")
            refused = [full_id]
            img = r.get("/api/v1/inferences/%s/image" % acked[-1])
            eq(img.status, 200, "earlier images still readable")
            eq(img.body, image, "earlier image intact")

            # ingest resumes by itself: the oldest rows make room (at most one try a second)
            def post():
                ident, resp = post_image(r, image)
                if resp.status == 507:
                    refused.append(ident)
                    return None
                eq(resp.status, 201, "ingest on the full disk")
                return ident
            acked.append(wait_for("ingest accepted again", post, 20, relay=r))
            ids = {it["id"] for it in r.list_all()}
            check(acked[-1] in ids and not ids & set(refused), "refused ingests left nothing")
            check(r.log().count("disk full: evicted") >= 1, "the eviction is logged")

            # space returns: the next ingest succeeds without a restart
            eq(resize_tmpfs(dbdir, "32m"), True, "grow")
            resp = r.ingest_multipart({"result": {"classification": {"x": 0.5}}}, image,
                                      "image/jpeg", expect=None)
            eq(resp.status, 201, "ingest after space returned: %r" % resp.body[:200])
            check(resp.json()["id"] in {it["id"] for it in r.list_all()}, "row after recovery")
            h = r.health()
            eq((h["status"], h["checks"]["store"]), ("ok", "ok"), "health after recovery")
            r.stop()
            check("full" in r.log().lower(), "the log names the full disk")
            eq(integrity(r.db_path), "ok", "integrity_check")
    finally:
        umount(dbdir)


if __name__ == "__main__":
    require_tmpfs()
    run_tests([test_disk_full_507_and_recovery])
