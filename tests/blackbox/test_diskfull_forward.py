# test_diskfull_forward.py - a full disk with forwarding on, end to end, against a real TLS
# mosquitto: ingest answers 507 with a JSON error while reads keep working; the forwarder keeps
# draining to the broker and its acks are recorded (retried, not lost, no publish hot loop);
# the relay makes room by evicting rows the broker already has, so ingest resumes by itself;
# when the disk grows back everything works without a restart; every acknowledged inference is
# at the broker and PRAGMA integrity_check is ok. Also: a cache_max_bytes larger than the file
# system is warned about at start and shown in health (checks.disk) and /metrics.
# The database lives on a small tmpfs mounted for the test (needs root; skipped otherwise).
import os
import re
import tempfile

from harness import Relay, check, eq, error_of, make_jpeg_of_size, run_tests, wait_for
from harness.disk import (ingest_until_full, integrity, mount_tmpfs, post_image,
                          require_tmpfs, resize_tmpfs, umount)
from harness.mqtt import (Broker, device_name, first_ids, make_pki, relay_mqtt_config,
                          require_tools, topic, wait_forwarder)

WAIT_S = 20
MiB = 1024 * 1024


def metric(r, name):
    text = r.get("/metrics").body.decode()
    m = re.search(r"^%s(?:\{[^}]*\})? (\S+)$" % re.escape(name), text, re.M)
    check(m is not None, "metric %s missing" % name)
    return float(m.group(1))


def test_disk_full_with_forwarding():
    workdir = tempfile.mkdtemp(prefix="ei-bb-fullfwd-")
    dbdir = os.path.join(workdir, "db")
    os.makedirs(dbdir)
    check(mount_tmpfs(dbdir, "4m"), "mount tmpfs")
    name = device_name("full")
    out = topic(name, "inference/output")
    try:
        with Broker(make_pki()) as b:
            sub = b.subscriber(topic(name, "#"))
            try:
                run_full(b, sub, workdir, dbdir, name, out)
            finally:
                sub.close()
    finally:
        umount(dbdir)


def at_broker(sub, out, ids):
    want = set(ids)
    sub.wait_for(lambda msgs: want <= {m.json().get("id") for m in msgs if m.topic == out},
                 WAIT_S, "%d inferences at the broker" % len(want))


def post(r, image):
    """One ingest on the (maybe) full disk: its id when accepted, None on the 507."""
    ident, resp = post_image(r, image)
    check(resp.status in (201, 507), "ingest: %d %r" % (resp.status, resp.body[:200]))
    return ident if resp.status == 201 else None


def run_full(b, sub, workdir, dbdir, name, out):
    # a chosen cache_max_bytes (1 GiB) more than this 4 MiB file system holds (the default would
    # be lowered to fit: checked last)
    with Relay(workdir=workdir, overrides=dict(relay_mqtt_config(b, name),
                                               cache_max_bytes=1 << 30)) as r:
        h = r.health()
        check(h["checks"]["disk"].startswith("cache_max_bytes (1073741824) exceeds"),
              "checks.disk at start: %r" % h["checks"])
        eq(h["status"], "ok", "a cap above the disk is a warning, not degraded")
        check(0 < metric(r, "ei_relay_db_fs_free_bytes") <= 4 * MiB, "free bytes gauge")
        eq(metric(r, "ei_relay_cache_max_bytes_exceeds_fs"), 1, "exceeds gauge")
        check(re.search(r"warn +store: database file system: \d+ bytes free of 4194304.*"
                        r"cache_max_bytes 1073741824 exceeds", r.log()), "start warning")

        image = make_jpeg_of_size(50000)[0]
        acked, full, _ = ingest_until_full(r, image)
        error_of(full, 507, "storage_full")
        check(len(acked) > 5, "some inferences fit first (%d)" % len(acked))

        # reads keep working while writes fail
        h = r.health()
        eq(h["status"], "degraded", "health while full")
        check(h["checks"]["store"].startswith("writes failing: disk full"), "checks.store")
        listed = [it["id"] for it in r.list_all()]
        check(set(listed) <= set(acked) and listed, "list while full")
        eq(r.get_json("/api/v1/inferences/" + acked[-1])["id"], acked[-1], "get while full")
        img = r.get("/api/v1/inferences/%s/image" % acked[-1])
        eq((img.status, img.body), (200, image), "image while full")
        eq(r.get("/api/v1/stats").status, 200, "stats while full")

        # the forwarder drains to the broker and its acks are recorded on the full disk
        at_broker(sub, out, acked)
        wait_forwarder(r, lambda d: d.get("queue_depth") == 0 and d.get("in_flight") == 0,
                       WAIT_S, "acks recorded on a full disk")

        # ingest resumes by itself: the rows the broker has are evicted to make room
        first = wait_for("ingest accepted again on the full disk", lambda: post(r, image),
                         WAIT_S, relay=r)
        more = [first]
        while len(more) < 30:  # a ring: fill, evict what was forwarded, fill again
            ident = wait_for("ingest accepted (%d)" % len(more), lambda: post(r, image),
                             WAIT_S, relay=r)
            more.append(ident)
        acked += more
        check(metric(r, "ei_relay_retention_deleted_total") > 0, "rows were evicted")
        at_broker(sub, out, acked)
        doc = wait_forwarder(r, lambda d: d.get("queue_depth") == 0, WAIT_S, "drained")
        eq(doc.get("reconnects"), 0, "no reconnect (no re-publishing)")
        msgs = [m.json().get("id") for m in sub.on(out)]
        eq(len(msgs), len(set(msgs)), "each inference published once (no hot loop)")
        eq(doc.get("sent"), len(acked), "sent once each")
        listed = [it["id"] for it in r.list_all()]
        check(set(listed) <= set(acked), "no unacknowledged rows")
        check(more[-1] in listed, "the newest row is kept")

        # space returns: writes work, health is ok, without a restart
        eq(resize_tmpfs(dbdir, "32m"), True, "grow")
        for _ in range(3):
            ident = post(r, image)
            check(ident is not None, "ingest after space returned")
            acked.append(ident)
        h = r.health()
        eq((h["status"], h["checks"]["store"]), ("ok", "ok"), "health after recovery")
        at_broker(sub, out, acked)
        r.stop()
        check(re.search(r"disk full: evicted [1-9]\d* rows the broker has", r.log()), "eviction log")
        eq(integrity(r.db_path), "ok", "integrity_check")

        # a cap below what the file system holds: no warning
        r.cfg["cache_max_bytes"] = 4 * MiB
        r.write_config()
        r.start()
        h = r.health()
        eq(h["checks"]["disk"], "ok", "checks.disk with cache_max_bytes 4 MiB on 32 MiB")
        eq(metric(r, "ei_relay_cache_max_bytes_exceeds_fs"), 0, "exceeds gauge")
        r.stop()

        # the default cap (1 GiB, not chosen) is lowered to half of what the disk holds, and
        # the log says so
        del r.cfg["cache_max_bytes"]
        r.write_config()
        r.start()
        h = r.health()
        eq(h["checks"]["disk"], "ok", "checks.disk with the default cap on 32 MiB")
        eq(metric(r, "ei_relay_cache_max_bytes_exceeds_fs"), 0, "exceeds gauge, default cap")
        m = re.search(r"warn +store: cache_max_bytes: the default 1073741824 is more than half of "
                      r"what this file system can hold \((\d+) bytes.*\): using (\d+)", r.log())
        check(m, "the log says the default cap was lowered")
        eq(int(m.group(2)), int(m.group(1)) // 2, "half of what the file system holds")


if __name__ == "__main__":
    require_tmpfs()
    require_tools()
    run_tests([test_disk_full_with_forwarding])
