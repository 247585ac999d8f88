#!/usr/bin/env python3
# check_docs.py - fails when a Markdown page of the repository points at something that is not
# there: a relative link whose file or folder does not exist, a link's #anchor that is no
# heading of its page, or a repository path named in the text (`tests/readme/test_readme.py`,
# scripts/package.sh) that no tracked file has. Pages move less often than files do; a reader
# who follows a stale path is lost, and nothing else notices.
#
# A repository path is a word that starts with one of the repository's own top-level folders
# followed by '/'; words with placeholders or globs (<, {, *, $) are not paths but patterns and
# are skipped, as are links with a scheme (https:, mailto:). Files: checklib.list_files. Each hit
# is printed as page:line: rule: what.
#
# Usage: check_docs.py [ROOT]   (default: the repository holding this script)
# Exit status: 0 clean, 1 a page points at nothing, 2 the files could not be listed.
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import checklib  # noqa: E402

LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")
PATTERN_CHARS = set("<>{}*$[]")
FENCE = re.compile(r"^\s*(```|~~~)")


def slug(heading):
    """The anchor GitHub makes of a heading: lower case, punctuation dropped, spaces to '-'."""
    text = re.sub(r"`([^`]*)`", r"\1", heading.strip().lower())
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(text):
    """The anchors of a page's headings (outside code blocks), with GitHub's -1, -2 for repeats."""
    seen, out, fenced = {}, set(), False
    for line in text.split("\n"):
        if FENCE.match(line):
            fenced = not fenced
            continue
        m = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if m and not fenced:
            s = slug(m.group(1))
            n = seen.get(s, 0)
            seen[s] = n + 1
            out.add(s if n == 0 else "%s-%d" % (s, n))
    return out


class Tree:
    """The tracked files and folders of root, and the anchors of its pages (read once each)."""

    def __init__(self, root):
        self.root = root
        self.files = set(checklib.list_files(root))
        self.dirs = set()
        for f in self.files:
            parts = f.split("/")[:-1]
            for i in range(1, len(parts) + 1):
                self.dirs.add("/".join(parts[:i]))
        self.top = sorted(d for d in self.dirs if "/" not in d and not d.startswith("."))
        self._anchors = {}

    def exists(self, rel):
        rel = os.path.normpath(rel).replace(os.sep, "/")
        return rel in self.files or rel in self.dirs or rel == "."

    def page_anchors(self, rel):
        if rel not in self._anchors:
            with open(os.path.join(self.root, rel), encoding="utf-8", errors="replace") as f:
                self._anchors[rel] = anchors(f.read())
        return self._anchors[rel]


def check_link(tree, page, target):
    """What is wrong with a link target on page (None when nothing is)."""
    if SCHEME.match(target) or target.startswith("//"):
        return None
    path, _, anchor = target.partition("#")
    rel = page if not path else os.path.normpath(
        os.path.join(os.path.dirname(page), path)).replace(os.sep, "/")
    if rel.startswith("../") or rel == "..":
        return "link leaves the repository: %s" % target
    if path and not tree.exists(rel):
        return "link to a missing file: %s" % target
    if anchor and rel.endswith(".md") and rel in tree.files and \
            anchor not in tree.page_anchors(rel):
        return "link to a missing heading: %s" % target
    return None


def repo_paths(tree, line):
    """The repository paths a line names: words starting with a top-level folder and '/'."""
    if not tree.top:
        return []
    rx = re.compile(r"(?<![\w./~:-])((?:%s)/[^\s`'\"(),;]*)" %
                    "|".join(re.escape(t) for t in tree.top))
    out = []
    for m in rx.finditer(line):
        word = m.group(1)
        if any(c in PATTERN_CHARS for c in word) or line[m.end():m.end() + 1] in ("*", "<", "{"):
            continue
        word = re.sub(r"(:\d+)+$", "", word.rstrip(".:"))  # a sentence's end, file:line
        out.append(word)
    return out


def scan(root):
    """Every (page, line number, rule, what) where a page points at nothing."""
    root = os.path.realpath(root)
    tree = Tree(root)
    hits = []
    for page in sorted(f for f in tree.files if f.endswith(".md")):
        with open(os.path.join(root, page), encoding="utf-8", errors="replace") as f:
            lines = f.read().split("\n")
        for n, line in enumerate(lines, 1):
            for target in LINK.findall(line):
                why = check_link(tree, page, target)
                if why:
                    hits.append((page, n, "link", why))
            for word in repo_paths(tree, line):
                if not tree.exists(word):
                    hits.append((page, n, "path", "no such file or folder: %s" % word))
    return hits


def main(argv):
    return checklib.check_main(
        argv, "check_docs", scan, lambda hit: "%s:%d: %s: %s" % hit,
        errors=(OSError, subprocess.CalledProcessError))


if __name__ == "__main__":
    sys.exit(main(sys.argv))
