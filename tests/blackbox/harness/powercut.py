# powercut.py - a simulated power cut for the black-box tests: the relay runs with the shim of
# tests/powercut/pcut_shim.c preloaded, which logs (in an undo log per database file) the old
# bytes under every write that no fsync has made durable yet; after a kill -9, cut() puts those
# ranges back as a power cut could leave them: every unsynced write lost ("drop"), or a seeded
# random subset of them lost and the rest kept, in any order ("random": the kernel may have
# written back any dirty pages before the cut). File creation, renames and truncation count as
# durable (metadata in the file system's journal). The -shm file is left as it is: SQLite
# rebuilds it from the WAL when the first connection opens the database after a crash.
import os
import struct

from .checks import TestFailure

REC = struct.Struct("=IIQQQ")  # magic, kind, offset (or new length), length, old size
MAGIC = 0x54554350
WRITE, TRUNC = 1, 2
SUFFIXES = ("", "-wal", "-journal")


def shim_path():
    """The built shim (CTest passes EI_PCUT_SHIM), or None when it is not there."""
    p = os.environ.get("EI_PCUT_SHIM")
    return p if p and os.path.exists(p) else None


def shim_env(db_path, log_dir):
    """Environment for a relay that runs with the shim, logging into log_dir. Under a
    sanitizer build whose runtime is a shared library, that library must come first."""
    os.makedirs(log_dir, exist_ok=True)
    return {"LD_PRELOAD": shim_path(), "EI_PCUT_DB": db_path, "EI_PCUT_LOG": log_dir}


def read_log(path):
    """The records of one undo log: [(kind, off, length, old_size, old_bytes)]."""
    out = []
    with open(path, "rb") as f:
        data = f.read()
    pos = 0
    while pos + REC.size <= len(data):
        magic, kind, off, length, old_size = REC.unpack_from(data, pos)
        if magic != MAGIC or kind not in (WRITE, TRUNC):
            raise TestFailure("undo log %s: bad record at %d" % (path, pos))
        pos += REC.size
        old = b""
        if kind == WRITE:
            if pos + length > len(data):
                break  # killed while logging: its write never happened
            old = data[pos:pos + length]
            pos += length
        out.append((kind, off, length, old_size, old))
    return out


def _subtract(ranges, lo, hi):
    """Parts of [lo, hi) not covered by the sorted, disjoint ranges."""
    out = []
    for a, b in ranges:
        if b <= lo or a >= hi:
            continue
        if a > lo:
            out.append((lo, a))
        lo = max(lo, b)
        if lo >= hi:
            break
    if lo < hi:
        out.append((lo, hi))
    return out


def _add(ranges, lo, hi):
    ranges.append((lo, hi))
    ranges.sort()
    merged = []
    for a, b in ranges:
        if merged and a <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], b))
        else:
            merged.append((a, b))
    return merged


def cut_file(path, records, keep):
    """Rolls one file back. keep(i) says whether unsynced write i survives the cut. Newest to
    oldest: a kept write settles its bytes (older writes no longer matter there); a lost one
    puts back the bytes that were there before it, wherever no newer kept write settled them.
    The size: the size at the last fsync, grown by kept writes, set by truncations. Returns
    (writes lost, writes kept)."""
    if not records:
        return 0, 0
    decisions = [keep(i) if r[0] == WRITE else True for i, r in enumerate(records)]
    settled = []
    fd = os.open(path, os.O_RDWR)
    try:
        for i in range(len(records) - 1, -1, -1):
            kind, off, length, _, old = records[i]
            if kind != WRITE:
                continue
            if decisions[i]:
                settled = _add(settled, off, off + length)
                continue
            for lo, hi in _subtract(settled, off, off + length):
                os.pwrite(fd, old[lo - off:hi - off], lo)
        size = records[0][3]
        for (kind, off, length, _, _), kept in zip(records, decisions):
            if kind == TRUNC:
                size = off
            elif kept:
                size = max(size, off + length)
        os.ftruncate(fd, size)
    finally:
        os.close(fd)
    writes = [d for r, d in zip(records, decisions) if r[0] == WRITE]
    return writes.count(False), writes.count(True)


def cut(db_path, log_dir, rng=None):
    """The power cut, after the relay was killed: rolls back each tracked file from its undo
    log and empties the logs. rng None: every unsynced write is lost; else each is kept or lost
    by rng. Returns (writes lost, writes kept) over all files."""
    lost = kept = 0
    for suffix in SUFFIXES:
        path = db_path + suffix
        log = os.path.join(log_dir, os.path.basename(path) + ".undo")
        if not os.path.exists(log):
            continue
        records = read_log(log)
        if os.path.exists(path):
            lo, ke = cut_file(path, records,
                              (lambda i: False) if rng is None else
                              (lambda i: rng.random() < 0.5))
            lost, kept = lost + lo, kept + ke
        os.unlink(log)
    return lost, kept
