#!/usr/bin/env python3
# test_check_layers.py - the layering check (check_layers.py) run on scratch trees: it must fail
# on an upward include, a peer include, another module's private header, a module missing from
# the order and an include that names no module, each at its file and line, and pass what the
# order allows (own headers, own private header, any lower row). Python 3 standard library only.
import os
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import check_layers  # noqa: E402
import checklib  # noqa: E402

T = checklib.SelfTest()
expect = T.expect
write = checklib.write


# Allowed everywhere below: own public and private headers, lower rows, system headers.
GOOD = {
    "server/core/util.c": '#include "core/util.h"\n#include <stdio.h>\n',
    "server/store/store.c": '#include "store/store_internal.h"\n#include "model/inference.h"\n'
                            '#include "core/rc.h"\n',
    "server/http/http.h": '#include "store/store.h"\n#include "auth/auth.h"\n'
                          '#include "core/report.h"\n',
    "server/app/relay.c": '#include "http/http.h"\n#include "live/live.h"\n'
                          '#include "forward/forwarder.h"\n',
    "server/main.c": '#include "app/relay.h"\n#include "tools/guidfiles.h"\n',
}

# (file, text, line of the bad include, words the reason must hold)
BAD = [
    ("server/model/view.c", '#include "model/view.h"\n#include "store/store.h"\n', 2,
     "upward"),
    ("server/live/live.c", '#include "live/live.h"\n\n#include "http/http.h"\n', 3, "upward"),
    ("server/http/api.c", '#include "store/store_internal.h"\n', 1, "private header"),
    ("server/forward/fwd.c", '#include "core/rc.h"\n#include "sources/sources.h"\n', 2,
     "same row"),
    ("server/core/log.c", '  #  include "app/relay.h"\n', 1, "upward"),
    ("server/ingest/ingest.c", '#include "plugins/x.h"\n', 1, "not in the layering order"),
    ("server/media/image.c", '#include "image.h"\n', 1, "names no module"),
    ("server/extra/extra.c", '#include "core/rc.h"\n', 1, "not in the layering order"),
]


def make_tree(root):
    for rel, text in GOOD.items():
        write(root, rel, text)
    for rel, text, _, _ in BAD:
        write(root, rel, text)
    write(root, "tests/unit/test_x.c", '#include "store/store_internal.h"\n')  # not server/


def run_main(root):
    return checklib.run_check(check_layers.__file__, root)


def main():
    base = tempfile.mkdtemp(prefix="ei-check-layers-")
    try:
        # 1. every kind of bad include is flagged at its line, nothing else is
        root = os.path.join(base, "bad")
        make_tree(root)
        hits = check_layers.scan(root)
        got = {(path, n): why for path, n, why, _ in hits}
        for rel, _, line, words in BAD:
            why = got.get((rel, line))
            expect(why is not None and words in why,
                   "%s:%d flagged as %r (got %r)" % (rel, line, words, why))
        expect(len(hits) == len(BAD), "only the bad includes are flagged (got %r)" %
               sorted(got))
        code, out = run_main(root)
        expect(code == 1, "bad tree: exit status 1 (got %d)" % code)
        expect("server/model/view.c:2: breaks the layering" in out,
               "output names file:line (%r)" % out[:300])

        # 2. what the order allows passes
        clean = os.path.join(base, "clean")
        for rel, text in GOOD.items():
            write(clean, rel, text)
        code, out = run_main(clean)
        expect(code == 0, "clean tree: exit status 0 (got %d: %s)" % (code, out.strip()))

        # 3. no server/ folder: the check cannot run, and says so
        code, out = run_main(os.path.join(base, "empty"))
        expect(code == 2, "no server/: exit status 2 (got %d)" % code)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    return T.finish()


if __name__ == "__main__":
    sys.exit(main())
