#!/usr/bin/env python3
# test_check_docs.py - the documentation check (check_docs.py) run on a scratch tree: every kind
# of dangling pointer is flagged at its line, and what is not a pointer (URLs, patterns,
# placeholders, anchors of repeated headings, file:line) passes. Python 3 standard library only.
import os
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import check_docs  # noqa: E402
import checklib  # noqa: E402

T = checklib.SelfTest()
expect = T.expect
write = checklib.write

# (line text, flagged?) for docs/page.md; the tree has docs/, tests/, scripts/ and README.md.
LINES = [
    ("# The `page` (draft)", False),
    ("## Usage", False),
    ("## Usage", False),
    ("See [the README](../README.md) and [its start](../README.md#quick-start).", False),
    ("Jump to [usage](#usage), [the second](#usage-1), [the draft](#the-page-draft).", False),
    ("[the tests](../tests/) and [a script](../scripts/run.sh) and [web](https://example.org/x)", False),
    ("Run `scripts/run.sh --demo`, then tests/unit/test_a.c:12 and scripts/run.sh.", False),
    ("Patterns: `tests/*/test_*.c`, tests/<tier>/, scripts/{a,b}.sh, docs/$PAGE", False),
    ("Not ours: build/ei-relay, dist/x.deb, /usr/share/doc/tests/x, ./var/tests/y", False),
    ("[gone](../docs/gone.md)", True),
    ("[no such heading](../README.md#configuration)", True),
    ("[no such local heading](#usage-2)", True),
    ("[outside](../../elsewhere/x.md)", True),
    ("run scripts/gone.sh first", True),
    ("`tests/unit/test_gone.c`", True),
]


def make_tree(root):
    write(root, "README.md", "# ei\n\n## Quick start\n\ntext\n")
    write(root, "scripts/run.sh", "#!/bin/sh\n")
    write(root, "tests/unit/test_a.c", "int x;\n")
    write(root, "docs/page.md", "\n".join(t for t, _ in LINES) + "\n```sh\n# Not a heading\n"
          "scripts/run.sh\n```\n")
    # a fenced '# Not a heading' gives no anchor; a link to it must fail
    write(root, "docs/other.md", "[fenced](page.md#not-a-heading)\n[ok](page.md#usage)\n")


def main():
    base = tempfile.mkdtemp(prefix="ei-check-docs-")
    try:
        root = os.path.join(base, "tree")
        make_tree(root)
        hits = check_docs.scan(root)
        page = [(n, rule) for p, n, rule, _ in hits if p == os.path.join("docs", "page.md")]
        want = [i + 1 for i, (_, bad) in enumerate(LINES) if bad]
        expect(sorted(n for n, _ in page) == want,
               "each dangling pointer flagged at its line %s (got %s)" % (want, page))
        for i, (text, bad) in enumerate(LINES):
            if not bad:
                expect(all(n != i + 1 for n, _ in page), "passes: %s" % text)
        other = [(n, why) for p, n, _, why in hits if p == os.path.join("docs", "other.md")]
        expect([n for n, _ in other] == [1], "a heading inside a code block is no anchor (got %r)"
               % other)
        rc, out = checklib.run_check(check_docs.__file__, root)
        expect(rc == 1 and "docs/page.md:14: path" in out,
               "the command exits 1 and names page:line: rule (got %d: %s)" % (rc, out[-300:]))
        os.remove(os.path.join(root, "docs", "other.md"))
        with open(os.path.join(root, "docs", "page.md"), "w") as f:
            f.write("\n".join(t for t, bad in LINES if not bad) + "\n")
        rc, out = checklib.run_check(check_docs.__file__, root)
        expect(rc == 0, "a clean tree exits 0 (got %d: %s)" % (rc, out[-300:]))
    finally:
        shutil.rmtree(base, ignore_errors=True)
    return T.finish()


if __name__ == "__main__":
    sys.exit(main())
