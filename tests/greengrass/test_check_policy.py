#!/usr/bin/env python3
# test_check_policy.py - the policy check (check_policy.py) on scratch copies of docs/greengrass.md
# and the forwarder's sources: each row of BREAKS changes one file the way the check must catch
# (a topic or action missing or extra in the IoT policy, a topic added to the relay, a broad token
# exchange role, a policy that is not JSON), and the unchanged copy must pass.
import os
import shutil
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "check"))
import check_policy as P  # noqa: E402
import checklib  # noqa: E402

ROOT = os.path.realpath(os.path.join(HERE, "..", ".."))
FILES = [P.DOC, P.TOPICS_H] + [os.path.join(P.FORWARD_DIR, f) for f in
                               os.listdir(os.path.join(ROOT, P.FORWARD_DIR)) if f.endswith(".c")]
BATCH = ('        "arn:aws:iot:REGION:ACCOUNT:topic//edgeimpulse/device/MyEdgeImpulseDevice_*/'
         'inference/batch",\n')

# (what, file, text to replace, replacement, words the finding must hold)
BREAKS = [
    ("a published topic missing", P.DOC, BATCH, "", "iot:Publish on .../inference/batch is missing"),
    ("no iot:RetainPublish", P.DOC, '"Action": "iot:RetainPublish"', '"Action": "iot:Publish"',
     "iot:RetainPublish on .../command/input is missing"),
    ("a topic the relay never uses", P.DOC, "/model/metrics\",", "/model/metrics\",\n        "
     "\"arn:aws:iot:REGION:ACCOUNT:topic//edgeimpulse/device/MyEdgeImpulseDevice_*/state\",",
     "iot:Publish on .../state is granted but ei-relay never does it"),
    ("a single slash", P.DOC, "topicfilter//edgeimpulse", "topicfilter/edgeimpulse",
     "the leading slash"),
    ("all actions", P.DOC, '"Action": "iot:Receive"', '"Action": "iot:*"', "action iot:*"),
    ("another client id", P.DOC, "ThingName}-ei-relay", "ThingName}", "iot:Connect on"),
    ("not JSON", P.DOC, '"Sid": "SubscribeToCommands",', '"Sid": "SubscribeToCommands"',
     "not JSON"),
    ("a broad token exchange role", P.DOC, '"Action": "s3:GetObject"', '"Action": "s3:*"',
     "only s3:GetObject"),
    ("no policy block", P.DOC, "<!-- tes-policy", "<!-- tes", "no ```json block"),
    ("a topic added to the relay", P.TOPICS_C, '[TOPICS_BATCH] = "inference/batch",',
     '[TOPICS_BATCH] = "inference/batch", [TOPICS_STATE] = "state",', "does not match"),
    ("... and to topics.h as well", P.TOPICS_H, "    TOPICS_BATCH,",
     "    TOPICS_BATCH,\n    TOPICS_STATE,", "iot:Publish on .../state is missing"),
]


def scratch(base, i):
    d = os.path.join(base, "r%d" % i)
    for rel in FILES:
        os.makedirs(os.path.dirname(os.path.join(d, rel)), exist_ok=True)
        shutil.copy(os.path.join(ROOT, rel), os.path.join(d, rel))
    return d


def main():
    T = checklib.SelfTest()
    base = tempfile.mkdtemp(prefix="ei-check-policy-")
    try:
        rc, out = checklib.run_check(P.__file__, scratch(base, 0))
        T.expect(rc == 0, "the policies as they are pass (%s)" % out.strip())
        d = None
        for i, (what, rel, old, new, words) in enumerate(BREAKS, 1):
            if not what.startswith("..."):
                d = scratch(base, i)  # a "..." row breaks the previous row's copy further
            checklib.break_file(T, os.path.join(d, rel), old, new, what)
            rc, out = checklib.run_check(P.__file__, d)
            T.expect(rc != 0 and words in out, "%s: found (%s)" % (what, out.strip()))
    finally:
        shutil.rmtree(base, ignore_errors=True)
    return T.finish()


if __name__ == "__main__":
    sys.exit(main())
