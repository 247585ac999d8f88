# sources.py - the relay's inference sources as the black-box tests see them: the "sources"
# setting, a source's status in GET /api/v1/sources, and the inferences it stored, with bounded
# waits on both (sources hand inferences to the store asynchronously, so a source's counter
# runs ahead of the commits).
import json

from .checks import WAIT_S, TestFailure, check, eq, wait_for


def sources_cfg(srcs):
    """Config overrides for these sources (in the config file, "sources" is the array's JSON
    text)."""
    return {"sources": json.dumps(srcs)}


def runner_source(port, name="cam", path="/", **extra):
    """A runner-ws source reading a runner (stand-in) on 127.0.0.1:port."""
    src = {"name": name, "kind": "runner-ws", "url": "ws://127.0.0.1:%d%s" % (port, path)}
    src.update(extra)
    return src


def source_status(relay, name):
    """The status object of source name in GET /api/v1/sources."""
    doc = relay.get_json("/api/v1/sources")
    check(isinstance(doc.get("sources"), list), "sources list %r" % doc)
    for s in doc["sources"]:
        if s["name"] == name:
            return s
    raise TestFailure("source %r not listed: %r" % (name, doc))


def wait_status(relay, name, what, pred, timeout=WAIT_S):
    """Source name's status once pred(status) holds."""
    return wait_for(what, lambda: source_status(relay, name), timeout, until=pred, relay=relay)


def stored(relay, name):
    """The inferences of source name, oldest first."""
    items = relay.list_all("source=" + name)
    items.sort(key=lambda i: i["seq"])
    return items


def wait_stored(relay, name, n, timeout=WAIT_S, exact=True):
    """Source name's inferences (oldest first) once at least n are stored; with exact, checks
    there are not more."""
    items = wait_for("%d inferences from %r" % (n, name), lambda: stored(relay, name), timeout,
                     until=lambda it: len(it) >= n, relay=relay)
    if exact:
        eq(len(items), n, "inferences stored from %r" % name)
    return items
