# test_db_recovery.py - black-box: the database at start and corruption while running. A file
# that is not a database (random bytes) or a truncated database is moved aside byte for byte to
# <db>.corrupt-<UTC time>, a fresh database is created, the log says so at error level and
# GET /api/v1/health shows db.recovered; ingest works. A database of a newer schema version or
# of another application is refused with exit code 2 and left untouched. A good database is not
# moved or rewritten. Corruption met while running turns health to "degraded" with a reason.
# quick_check at start only after an unclean stop: a clean stop leaves <db>.clean and the next
# start skips the check (log says so); after kill -9 the next start runs it (log says how long)
# and finds corruption planted while the relay was down; corruption in the middle of a cleanly
# stopped file is met by the first read (degraded), no mark is left at that stop, and the next
# start checks and moves the file aside.
import glob
import hashlib
import os
import sqlite3
import subprocess

from harness import Relay, check, eq, run_tests, wait_for
from harness.images import make_png

EXIT_CONFIG = 2
SKIPPED = "quick_check skipped"
CHECKED = "quick_check ran in"


def sha(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def plant(r, data):
    os.makedirs(os.path.dirname(r.db_path), exist_ok=True)
    with open(r.db_path, "wb") as f:
        f.write(data)


def aside(r):
    """The database files moved aside (their -wal/-shm/-journal, moved with them, left out)."""
    return sorted(p for p in glob.glob(r.db_path + ".corrupt-*")
                  if not p.endswith(("-wal", "-shm", "-journal")))


def fill(r, n=20):
    """n inferences with an image each, so that the database spans many pages."""
    for i in range(n):
        r.ingest_multipart({"result": {"classification": {"a": 0.5, "b": 0.25}}},
                           make_png(96, 96, noise=True, seed=i + 1), "image/png")


def check_recovered(r, original, reason_has):
    h = r.health()
    eq(h["status"], "ok", "status after a recovery at start (the fresh database is fine)")
    rec = h["db"].get("recovered")
    check(rec is not None, "health shows no db.recovered: %r" % h)
    eq(aside(r), [rec["moved_to"]], "the moved file is where health says")
    check(reason_has in rec["reason"], "reason %r lacks %r" % (rec["reason"], reason_has))
    check(rec["at"] > 0, "recovered.at")
    with open(rec["moved_to"], "rb") as f:
        eq(f.read() == original, True, "the moved file is byte-identical to the corrupt one")
    check("error store: DATABASE" in r.log() and rec["moved_to"] in r.log(),
          "no error line naming where the file went:\n" + r.log())
    eq(h["db"]["rows"], 0, "fresh database")
    r.ingest({"result": {"classification": {"after": 0.5}}})
    eq(r.health()["db"]["rows"], 1, "ingest works on the fresh database")


def test_random_bytes():
    data = os.urandom(8192)
    r = Relay()
    plant(r, data)
    with r:
        check_recovered(r, data, "not a database")
        # the next start finds a good database: nothing moved again, no recovery shown
        r.stop()
        r.start()
        check("recovered" not in r.health()["db"], "a second recovery on a good database")
        eq(len(aside(r)), 1, "files moved aside")
        eq(r.health()["db"]["rows"], 1, "the row of the fresh database survives a restart")


def test_truncated_db():
    with Relay() as r:
        fill(r)
        r.stop()
        check(not os.path.exists(r.db_path + "-wal") or os.path.getsize(r.db_path + "-wal") == 0,
              "WAL left after a clean stop")
        size = os.path.getsize(r.db_path)
        with open(r.db_path, "r+b") as f:
            f.truncate(size // 2)
        with open(r.db_path, "rb") as f:
            truncated = f.read()
        r.start()
        # caught by the cheap checks at the first read (SQLite's page count), after a clean stop
        check(CHECKED not in r.log(), "quick_check ran after a clean stop:\n" + r.log())
        check_recovered(r, truncated, "")


def refused(r, needle):
    """Starts r, which must exit with code 2 and a log line containing needle."""
    r.wait_ready = False
    r.start()
    try:
        code = r.proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        raise AssertionError("relay did not exit:\n" + r.log())
    r.proc = None
    eq(code, EXIT_CONFIG, "exit code\n" + r.log())
    check(needle in r.log(), "log lacks %r:\n%s" % (needle, r.log()))


def test_newer_schema_refused():
    with Relay() as r:
        r.ingest({"result": {"classification": {"a": 0.5}}})
        r.stop()
        db = sqlite3.connect(r.db_path)
        current = db.execute("PRAGMA user_version").fetchone()[0]
        db.execute("PRAGMA user_version = %d" % (current + 1))
        db.close()
        before = sha(r.db_path)
        files = sorted(os.listdir(os.path.dirname(r.db_path)))
        refused(r, "schema version %d, newer than this ei-relay knows (%d)" % (current + 1,
                                                                             current))
        eq(sha(r.db_path), before, "the newer database is untouched")
        eq(sorted(os.listdir(os.path.dirname(r.db_path))), files, "nothing moved or created")


def test_foreign_sqlite_refused():
    r = Relay(wait_ready=False)
    try:
        os.makedirs(os.path.dirname(r.db_path))
        db = sqlite3.connect(r.db_path)
        db.execute("CREATE TABLE theirs (x)")
        db.execute("INSERT INTO theirs VALUES (42)")
        db.commit()
        db.close()
        before = sha(r.db_path)
        refused(r, "SQLite database of another application")
        eq(sha(r.db_path), before, "another application's database is untouched")
        eq(aside(r), [], "nothing moved aside")
    finally:
        r.cleanup()


def test_good_db_untouched():
    with Relay() as r:
        fill(r, 5)
        r.stop()
        st = os.stat(r.db_path)
        before = sha(r.db_path)
        r.start()
        h = r.health()
        eq(h["status"], "ok", "status")
        check("recovered" not in h["db"], "recovered shown for a good database")
        eq(h["db"]["rows"], 5, "rows kept")
        r.stop()
        eq(os.stat(r.db_path).st_ino, st.st_ino, "inode of the good database")
        eq(sha(r.db_path), before, "content of the good database (no write happened)")
        eq(aside(r), [], "nothing moved aside")


def mark(r):
    return os.path.exists(r.db_path + ".clean")


def corrupt_second_half(r):
    """Everything into the main file, then its image pages overwritten (the first pages, schema
    and counters, stay readable so health can answer)."""
    db = sqlite3.connect(r.db_path)
    busy = wait_for("checkpoint", lambda: db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                    .fetchone(), until=lambda row: row[0] == 0)
    db.close()
    eq(busy[0], 0, "checkpoint")
    size = os.path.getsize(r.db_path)
    with open(r.db_path, "r+b") as f:
        f.seek(size // 2)
        f.write(b"\xa5" * (size - size // 2))


def check_met_while_running(r):
    """Reads meet the garbage (the list, or else the images it names): health degraded."""
    page = r.get("/api/v1/inferences?limit=100")
    ids = [it["id"] for it in page.json()["items"]] if page.status == 200 else []
    statuses = [r.get("/api/v1/inferences/%s/image" % i).status for i in ids]
    check(page.status >= 500 or any(s >= 500 for s in statuses),
          "no read failed on the corrupt pages: %d %r" % (page.status, statuses))
    h = wait_for("health degraded", r.health, until=lambda h: h["status"] == "degraded")
    check("corruption" in h["reason"], "reason %r" % h["reason"])
    check("malformed" in h["db"]["corrupt"]["reason"], "db.corrupt %r" % h["db"]["corrupt"])
    check(h["db"]["corrupt"]["at"] > 0, "db.corrupt.at")
    check("DATABASE CORRUPTION" in r.log(), "no error line:\n" + r.log())


def test_corruption_while_running():
    with Relay() as r:
        fill(r)
        corrupt_second_half(r)
        check_met_while_running(r)


def test_clean_stop_skips_check():
    with Relay() as r:
        check("is new: no check needed" in r.log(), "brand-new database:\n" + r.log())
        fill(r, 5)
        r.stop()
        check(mark(r), "no clean-stop mark after a clean stop")
        r.start()
        check(SKIPPED in r.log() and CHECKED not in r.log(), "check not skipped:\n" + r.log())
        check(not mark(r), "the mark stays while the relay runs")
        eq(r.health()["db"]["rows"], 5, "rows kept")


def test_kill9_runs_check():
    with Relay() as r:
        fill(r)
        r.kill9()
        check(not mark(r), "a mark after kill -9")
        r.start()
        check(CHECKED in r.log() and SKIPPED not in r.log(), "no check after kill -9:\n" + r.log())
        check(" ms: ok" in r.log(), "a sound file after kill -9:\n" + r.log())
        eq(r.health()["db"]["rows"], 20, "rows kept")
        check("recovered" not in r.health()["db"], "a sound file moved")
        r.kill9()
        # planted while the relay is down, in pages the start's cheap checks do not read
        corrupt_second_half(r)
        with open(r.db_path, "rb") as f:
            corrupted = f.read()
        r.start()
        check(CHECKED in r.log(), "no check after kill -9:\n" + r.log())
        check_recovered(r, corrupted, "")


def test_clean_stop_corruption_met_later():
    with Relay() as r:
        fill(r)
        r.stop()
        check(mark(r), "no clean-stop mark after a clean stop")
        corrupt_second_half(r)
        r.start()
        # documented: mid-file pages are not read by the cheap checks at start
        check(SKIPPED in r.log(), "check not skipped:\n" + r.log())
        check("recovered" not in r.health()["db"], "moved without quick_check")
        check_met_while_running(r)
        r.stop()
        check(not mark(r), "a clean-stop mark for a database known corrupt")
        check("no clean-stop mark" in r.log(), "no line saying why:\n" + r.log())
        r.start()
        check(CHECKED in r.log(), "no check after a run that met corruption:\n" + r.log())
        rec = r.health()["db"].get("recovered")
        check(rec is not None and rec["moved_to"] in aside(r), "not moved aside: %r" % rec)
        eq(r.health()["status"], "ok", "status on the fresh database")


TESTS = [test_random_bytes, test_truncated_db, test_newer_schema_refused,
         test_foreign_sqlite_refused, test_good_db_untouched, test_corruption_while_running,
         test_clean_stop_skips_check, test_kill9_runs_check, test_clean_stop_corruption_met_later]

if __name__ == "__main__":
    run_tests(TESTS)
