#!/usr/bin/env python3
# check_policy.py - the least-privilege policies of docs/greengrass.md against the code: the IoT
# policy (the JSON block after "<!-- iot-policy") must parse and grant the relay's connection
# exactly what the forwarder does with exactly the topics it uses, and the token exchange role's
# (after "<!-- tes-policy") only s3:GetObject on the artifacts. What the forwarder uses is read
# from its sources, so a topic added there fails this check until the policy names it:
#   server/forward/topics.c       the suffix of every topic (its table, one row per topics.h kind)
#   server/forward/*.c            the topics it subscribes to and the ones it publishes retained
# Usage: check_policy.py [REPO_ROOT]. Exit 0 clean, 1 findings, 2 unreadable. Standard library.
import json
import os
import re
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "check"))
import checklib  # noqa: E402

DOC = os.path.join("docs", "greengrass.md")
TOPICS_C = os.path.join("server", "forward", "topics.c")
TOPICS_H = os.path.join("server", "forward", "topics.h")
FORWARD_DIR = os.path.join("server", "forward")
ARN = "arn:aws:iot:REGION:ACCOUNT:"
TOPIC = re.compile(r"^(topic|topicfilter)//edgeimpulse/device/([^/]+)/(.+)$")
CLIENT_SUFFIX = "-ei-relay"  # greengrass-setup's client id: <thing>-ei-relay
ACTIONS = ("iot:Connect", "iot:Publish", "iot:RetainPublish", "iot:Subscribe", "iot:Receive")


def read(root, rel):
    with open(os.path.join(root, rel), encoding="utf-8") as f:
        return f.read()


def policy_block(doc, marker):
    """The JSON of the first ```json block after the line holding marker, or None."""
    m = re.search(r"<!-- " + re.escape(marker) + r"[^\n]*\n+```json\n(.*?)\n```", doc, re.S)
    return m.group(1) if m else None


def relay_topics(root):
    """{suffix: set of uses} of the forwarder: every topic is published; the subscribed ones
    are also received; the retained ones also retain-published. Raises ValueError when the
    sources no longer read as expected (never a silent empty answer)."""
    kinds = re.findall(r"^\s*(TOPICS_[A-Z_]+)\s*(?:=\s*0\s*)?,", read(root, TOPICS_H), re.M)
    suffix = dict(re.findall(r"\[(TOPICS_[A-Z_]+)\]\s*=\s*\"([^\"]+)\"", read(root, TOPICS_C)))
    if not kinds or sorted(kinds) != sorted(suffix):
        raise ValueError("%s's table (%s) does not match %s's kinds (%s)" % (
            TOPICS_C, sorted(suffix), TOPICS_H, sorted(kinds)))
    fwd = "".join(read(root, os.path.join(FORWARD_DIR, f))
                  for f in sorted(os.listdir(os.path.join(root, FORWARD_DIR))) if f.endswith(".c"))
    subscribed = re.findall(r"mqtt_subscribe\([^;]*?tp\.t\[(TOPICS_[A-Z_]+)\]", fwd)
    retained = re.findall(r"publish_aux\([^;]*?tp\.t\[(TOPICS_[A-Z_]+)\][^;]*?,\s*true\s*\)", fwd)
    if not subscribed or not retained:
        raise ValueError("%s/*.c: no mqtt_subscribe or retained publish_aux found" % FORWARD_DIR)
    uses = {s: {"iot:Publish"} for s in suffix.values()}
    for k in subscribed:
        uses[suffix[k]] |= {"iot:Subscribe", "iot:Receive"}
    for k in retained:
        uses[suffix[k]].add("iot:RetainPublish")
    return uses


def as_list(x):
    return x if isinstance(x, list) else [x]


def check_iot(text, uses):
    try:
        pol = json.loads(text)
    except ValueError as e:
        return ["the IoT policy is not JSON: %s" % e]
    found, granted = [], {}  # granted: (action, resource kind, suffix) set
    devices = set()
    for st in as_list(pol.get("Statement")):
        if st.get("Effect") != "Allow" or "NotAction" in st or "NotResource" in st:
            found.append("statement %s: only Allow with Action and Resource" % st.get("Sid"))
            continue
        for action in as_list(st.get("Action")):
            if action not in ACTIONS:
                found.append("statement %s: action %s (only %s)" % (st.get("Sid"), action,
                                                                    ", ".join(ACTIONS)))
                continue
            for res in as_list(st.get("Resource")):
                if not isinstance(res, str) or not res.startswith(ARN):
                    found.append("%s: resource %s is not under %s" % (action, res, ARN))
                    continue
                res = res[len(ARN):]
                if action == "iot:Connect":
                    if not (res.startswith("client/") and res.endswith(CLIENT_SUFFIX)):
                        found.append("iot:Connect on %s: the relay connects as "
                                     "client/<thing>%s" % (res, CLIENT_SUFFIX))
                    granted[(action, "client", "")] = True
                    continue
                m = TOPIC.match(res)
                if not m:
                    found.append("%s on %s: write topic//edgeimpulse/device/<name>/<topic> "
                                 "(the leading slash makes it //)" % (action, res))
                    continue
                kind, device, suffix = m.groups()
                devices.add(device)
                if (kind == "topicfilter") != (action == "iot:Subscribe"):
                    found.append("%s on %s: Subscribe takes topicfilter/, the others topic/" % (
                        action, res))
                granted[(action, kind, suffix)] = True
    if ("iot:Connect", "client", "") not in granted:
        found.append("no iot:Connect for the relay's client id")
    if len(devices) > 1:
        found.append("the topics name different devices: %s" % sorted(devices))
    want = {(a, "topicfilter" if a == "iot:Subscribe" else "topic", s)
            for s, acts in uses.items() for a in acts}
    have = {k for k in granted if k[0] != "iot:Connect"}
    for a, _, s in sorted(want - have):
        found.append("%s on .../%s is missing: ei-relay does it" % (a, s))
    for a, _, s in sorted(have - want):
        found.append("%s on .../%s is granted but ei-relay never does it" % (a, s))
    return found


def check_tes(text):
    try:
        pol = json.loads(text)
    except ValueError as e:
        return ["the token exchange role policy is not JSON: %s" % e]
    found = []
    for st in as_list(pol.get("Statement")):
        acts, res = as_list(st.get("Action")), as_list(st.get("Resource"))
        if st.get("Effect") != "Allow" or acts != ["s3:GetObject"] or \
                not all(isinstance(r, str) and re.match(r"^arn:aws:s3:::[^/*]+/artifacts/\*$", r)
                        for r in res):
            found.append("statement %s: the role needs only s3:GetObject on "
                         "arn:aws:s3:::BUCKET/artifacts/*" % st.get("Sid"))
    if not found and not as_list(pol.get("Statement")):
        found.append("no statement")
    return found


def scan(root):
    doc = read(root, DOC)
    uses = relay_topics(root)
    found = []
    for marker, check in (("iot-policy", lambda t: check_iot(t, uses)), ("tes-policy", check_tes)):
        text = policy_block(doc, marker)
        if text is None:
            found.append("no ```json block after <!-- %s" % marker)
        else:
            found += ["%s: %s" % (marker, f) for f in check(text)]
    return found


def main(argv):
    return checklib.check_main(argv, "check_policy", scan, lambda f: "%s: %s" % (DOC, f),
                               errors=(OSError, ValueError))


if __name__ == "__main__":
    sys.exit(main(sys.argv))
