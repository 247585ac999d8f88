#!/usr/bin/env python3
# check_recipes.py - the recipe check: every recipes/*.yaml must be valid on the Java nucleus AND
# on nucleus lite (docs/greengrass.md, "Rules the recipes follow"). One row per rule in RULES (a
# rule reads one recipe) and COLLECTION_RULES (a rule compares recipes); each finding names the
# file and the rule. test_check_recipes.py breaks a copy of the recipes once per rule and requires
# that rule to fail.
#
# Usage: check_recipes.py [RECIPE_DIR] [--ei-relay BIN] [--project-version X.Y.Z]
#   --ei-relay: also check that every setting a recipe gives ei-relay is one it knows (--help);
#   --project-version: every ComponentVersion must be it (CMakeLists.txt's PROJECT_VERSION).
# Exit status: 0 clean, 1 findings, 2 the recipes could not be read. Python 3 + PyYAML.
import argparse
import os
import re
import shutil
import subprocess
import sys

try:
    import yaml
except ImportError:  # CTest counts exit 77 as a skip, never a pass
    print("SKIP: PyYAML is not installed (python3-yaml; scripts/deps.sh test)")
    sys.exit(77)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import nucleus as N  # noqa: E402

MAX_BYTES = 16 * 1024  # nucleus lite's recipe limit
BUCKET_PLACEHOLDER = "YOUR-BUCKET"
S3_URI = re.compile(r"^s3://([^/]+)/artifacts/([^/]+)/([^/]+)/([^/]+)$")
BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
SEMVER = re.compile(r"^\d+\.\d+\.\d+$")
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
CONFIG_POINTER = re.compile(r"\{configuration:(/[^}]*)\}")
PACKAGE = "ei-relay_%s_%s.deb"  # version, Debian architecture
SAMPLE_ROOT = "/greengrass/v2"


class Recipe:
    """One recipe file as both nuclei see it."""

    def __init__(self, path, text, doc):
        self.path, self.text, self.doc = path, text, doc
        self.file = os.path.basename(path)
        self.name = doc.get("ComponentName")
        self.version = doc.get("ComponentVersion")
        self.config = N.default_config(doc)
        self.manifests = [m for m in doc.get("Manifests") or [] if isinstance(m, dict)]

    def artifacts(self):
        for m in self.manifests:
            for a in m.get("Artifacts") or []:
                yield m, a

    def carries_package(self):
        return any(str(a.get("Uri", "")).endswith(".deb") for _, a in self.artifacts())

    def arches(self):
        """The Greengrass architectures the recipe has a manifest for (all three if any
        manifest takes every architecture)."""
        named = [(m.get("Platform") or {}).get("architecture") for m in self.manifests]
        return [a for a in N.DEB_ARCH if a in named or None in named or "*" in named]

    def lifecycles(self):
        """(nucleus, arch, lifecycle) for every nucleus and architecture."""
        for nucleus in N.NUCLEI:
            for arch in self.arches():
                m = N.select_manifest(self.doc, nucleus, arch)
                yield nucleus, arch, (N.lifecycle(self.doc, m) if m else None)

    def steps(self):
        """(phase, step mapping) of the lifecycle lite runs on the first architecture."""
        for nucleus, _, life in self.lifecycles():
            if nucleus == "lite" and isinstance(life, dict):
                return [(k, v) for k, v in life.items() if k != "Setenv"]
        return []

    def texts(self):
        """Every Script and Setenv value of the lifecycles, as (where, text, in_script)."""
        seen = []
        lives = [self.doc.get("Lifecycle") or {}] + [m.get("Lifecycle") or {}
                                                     for m in self.manifests]
        for life in lives:
            for where, t, s in _walk_texts(life):
                if (where, t) not in seen:
                    seen.append((where, t))
                    yield where, t, s

    def context(self, nucleus):
        return N.Context(nucleus, SAMPLE_ROOT, self.name, self.version, "sample-thing",
                         self.config)


def _walk_texts(sect, where=""):
    if not isinstance(sect, dict):
        return
    for k, v in sect.items():
        if k == "Script" and isinstance(v, str):
            yield where + "Script", v, True
        elif k == "Setenv" and isinstance(v, dict):
            for ek, ev in v.items():
                yield where + "Setenv " + str(ek), str(ev), False
        elif isinstance(v, dict):
            yield from _walk_texts(v, where + str(k) + " ")


# ------------------------------------------------------------------ rules on one recipe -------

def rule_name(r, opts):
    want = "%s-%s.yaml" % (r.name, r.version)
    if r.file != want:
        yield "file name is %s; nucleus lite loads a local recipe only as %s" % (r.file, want)


def rule_size(r, opts):
    n = len(r.text.encode("utf-8"))
    if n > MAX_BYTES:
        yield "%d bytes: nucleus lite refuses a recipe over %d" % (n, MAX_BYTES)


def rule_format(r, opts):
    if r.doc.get("RecipeFormatVersion") != "2020-01-25":
        yield "RecipeFormatVersion must be the string \"2020-01-25\""
    if r.doc.get("ComponentType", "aws.greengrass.generic") != "aws.greengrass.generic":
        yield "nucleus lite runs only aws.greengrass.generic components"
    if not isinstance(r.name, str) or not isinstance(r.version, str) \
            or not SEMVER.match(r.version):
        yield "ComponentName and ComponentVersion (X.Y.Z, a string) are required"
    elif opts.project_version and r.version != opts.project_version:
        yield "ComponentVersion %s is not the project's version %s (CMakeLists.txt): rename " \
              "the recipe with the version" % (r.version, opts.project_version)


class _StrictLoader(yaml.SafeLoader):
    """Refuses what the nuclei's YAML readers may take differently: duplicate keys (PyYAML keeps
    the last), anchors and aliases."""

    def construct_mapping(self, node, deep=False):
        keys = set()
        for k, _ in node.value:
            if k.value in keys:
                raise yaml.constructor.ConstructorError(
                    None, None, "duplicate key %r" % k.value, k.start_mark)
            keys.add(k.value)
        return super().construct_mapping(node, deep)

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent) or (
                self.check_event(yaml.NodeEvent) and self.peek_event().anchor):
            raise yaml.composer.ComposerError(None, None, "anchor or alias",
                                              self.peek_event().start_mark)
        return super().compose_node(parent, index)


def rule_yaml(r, opts):
    try:
        yaml.load(r.text, Loader=_StrictLoader)
    except yaml.YAMLError as e:
        yield str(e).replace("\n", " ")


def rule_platform(r, opts):
    if not r.manifests:
        yield "no manifest"
    for i, m in enumerate(r.manifests):
        p = m.get("Platform") or {}
        extra = set(p) - {"os", "architecture", "architecture.detail", "runtime"}
        if extra:
            yield "manifest %d: platform keys %s are not matched by nucleus lite" % (i, sorted(extra))
        if p.get("os") != "linux":
            yield "manifest %d: os must be linux" % i
        if p.get("runtime") != "*":
            yield "manifest %d: runtime must be \"*\" (nucleus lite skips the manifest " \
                  "otherwise; the Java nucleus takes \"*\" too)" % i
        arch = p.get("architecture")
        if arch is not None and arch not in N.DEB_ARCH:
            yield "manifest %d: architecture %r is not one of %s (no regex: nucleus lite " \
                  "compares the name)" % (i, arch, ", ".join(N.DEB_ARCH))


def rule_lifecycle(r, opts):
    for nucleus, arch, life in r.lifecycles():
        if not life:
            yield "no lifecycle for %s on %s" % (arch, nucleus)
            continue
        bad = [k for k in life if k not in N.LIFECYCLE_KEYS or k == "bootstrap"]
        if bad:
            yield "lifecycle keys %s: use install, run or startup (lower case, as nucleus lite " \
                  "reads them) and Setenv; no shutdown, recover or bootstrap" % bad
        if ("run" in life) == ("startup" in life):
            yield "the lifecycle needs run or startup, one of them"


def rule_step(r, opts):
    for phase, s in r.steps():
        if not isinstance(s, dict):
            yield "%s: a step is a mapping with Script" % phase
            continue
        bad = [k for k in s if k not in N.STEP_FIELDS]
        if bad:
            yield "%s: fields %s (nucleus lite reads only %s; no Skipif)" % (
                phase, bad, ", ".join(N.STEP_FIELDS))
        if not isinstance(s.get("Script"), str):
            yield "%s: Script is missing" % phase
        if "RequiresPrivilege" in s and not isinstance(s["RequiresPrivilege"], bool):
            yield "%s: RequiresPrivilege is true or false" % phase
        t = s.get("Timeout")
        if t is not None and (isinstance(t, bool) or not isinstance(t, int) or t <= 0):
            yield "%s: Timeout is a positive number of seconds" % phase
    for where, text, _ in r.texts():
        if where.startswith("Setenv") or " Setenv " in " " + where:
            name = where.split()[-1]
            if not ENV_NAME.match(name):
                yield "%s: not a valid environment variable name" % where


def rule_variables(r, opts):
    for where, text, _ in r.texts():
        for var in re.findall(r"\{([^{}]*)\}", text):
            known = var in N.SYSTEM_VARIABLES or (
                var.startswith("configuration:/") and
                N.config_value(r.config, var[len("configuration:"):]) is not N.MISSING)
            if not known or not N.JAVA_VARIABLE.fullmatch("{%s}" % var):
                yield "%s: {%s} is not a recipe variable both nuclei substitute here (lite " \
                      "fails the step on it: a missing configuration key, {dep:...}, a " \
                      "cross-component or unknown variable)" % (where, var)
        rest = re.sub(r"\{[^{}]*\}", "", text)
        if "{" in rest or "}" in rest:
            yield "%s: a '{' or '}' that is not part of a recipe variable (nucleus lite reads " \
                  "every {...} as one: no ${VAR}, no awk '{...}')" % where


def rule_config(r, opts):
    used = set()
    for _, text, _ in r.texts():
        for ptr in CONFIG_POINTER.findall(text):
            used.add(ptr.split("/")[1])
    for key, value in r.config.items():
        if key not in used:
            yield "configuration key %s reaches no step (nothing reads it)" % key
        if isinstance(value, (dict, list)) and key != "Parameters":
            yield "configuration key %s: only Parameters holds an object" % key


def rule_artifacts(r, opts):
    for _, a in r.artifacts():
        uri = str(a.get("Uri", ""))
        m = S3_URI.match(uri)
        if not m:
            yield "artifact %s: write s3://BUCKET/artifacts/NAME/VERSION/FILE" % uri
        else:
            bucket, name, version, _ = m.groups()
            if bucket != BUCKET_PLACEHOLDER and not BUCKET.match(bucket):
                yield "artifact %s: bucket is %s or a bucket name" % (uri, BUCKET_PLACEHOLDER)
            if (name, version) != (r.name, r.version):
                yield "artifact %s: not under artifacts/%s/%s/" % (uri, r.name, r.version)
        if a.get("Unarchive") not in ("NONE", "ZIP"):
            yield "artifact %s: Unarchive NONE or ZIP, written out" % uri
        perm = a.get("Permission") or {}
        if perm.get("Read") not in ("NONE", "OWNER", "ALL") or \
                perm.get("Execute") not in ("NONE", "OWNER", "ALL"):
            yield "artifact %s: Permission with Read and Execute written out (the nuclei's " \
                  "defaults differ)" % uri


def rule_package(r, opts):
    if not r.carries_package():
        return
    for arch, deb_arch in N.DEB_ARCH.items():
        ms = [m for m in r.manifests if (m.get("Platform") or {}).get("architecture") == arch]
        want = PACKAGE % (r.version, deb_arch)
        files = [str(a.get("Uri", "")).rsplit("/", 1)[-1] for a in (ms[0].get("Artifacts") or [])
                 ] if len(ms) == 1 else []
        if len(ms) != 1 or files != [want]:
            yield "architecture %s: one manifest whose one artifact is %s" % (arch, want)
    for nucleus, arch, life in r.lifecycles():
        s = N.step(life or {}, "install", nucleus)
        if not s or "ei-relay_%s_$arch.deb" % r.version not in s[0] or not s[2]:
            yield "install (with RequiresPrivilege) installs ei-relay_%s_$arch.deb" % r.version
            return
        run = N.step(life, "run", nucleus)
        if not run or "exec ei-relay " not in run[0] or run[2]:
            yield "run (without RequiresPrivilege) execs ei-relay"
            return


def relay_settings(binary):
    """The setting names ei-relay knows: its --help rows and the keys it accepts and ignores."""
    out = subprocess.run([binary, "--help"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         text=True, timeout=30).stdout
    names = set(m.lower() for m in re.findall(r"\bEI_RELAY_([A-Z0-9_]+)\b", out))
    tail = out.split("Accepted for compatibility", 1)
    if len(tail) == 2:
        names.update(tail[1].split(":", 1)[-1].split())
    if not names:
        raise OSError("%s --help lists no settings" % binary)
    return names


def rule_relay_settings(r, opts):
    if not opts.settings or not r.carries_package():
        return
    for where, text, in_script in r.texts():
        name = where.split()[-1]
        if in_script or not name.startswith("EI_RELAY_"):
            continue
        ptr = CONFIG_POINTER.fullmatch(text)
        key = name[len("EI_RELAY_"):].lower()
        if key == "parameters":
            if not ptr or ptr.group(1) != "/Parameters":
                yield "%s must be {configuration:/Parameters}" % where
        elif key not in opts.settings:
            yield "%s: ei-relay has no setting %s" % (where, key)
        elif not ptr or ptr.group(1) != "/" + key:
            yield "%s must be {configuration:/%s}" % (where, key)
    for key in (r.config.get("Parameters") or {}):
        if key not in opts.settings:
            yield "Parameters/%s: ei-relay has no such setting (it would refuse to start)" % key
    for key, value in r.config.items():
        if key in opts.settings and value != "__none__":
            yield "%s: a top-level setting defaults to \"__none__\" so Parameters can give it" \
                  % key


_SHELL_RUNS = {}


def shell_tool(argv, script):
    """(exit code, output) of a checker reading script on stdin. Remembered per argv and script:
    the answer depends on nothing else, and the self-test checks the same unchanged scripts once
    per broken copy (one shellcheck each, most of its time before)."""
    key = (tuple(argv), script)
    if key not in _SHELL_RUNS:
        p = subprocess.run(argv, input=script, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           text=True)
        _SHELL_RUNS[key] = (p.returncode, p.stdout)
    return _SHELL_RUNS[key]


def rule_shell(r, opts):
    for where, text, in_script in r.texts():
        if not in_script:
            continue
        try:
            script = N.substitute(text, r.context("lite"), True)
        except N.RecipeError:
            continue  # rule_variables says why
        rc, out = shell_tool(["sh", "-n"], script)
        if rc != 0:
            yield "%s: not POSIX sh (both nuclei run /bin/sh): %s" % (where, out.strip())
        elif shutil.which("shellcheck"):  # where it is installed, its warnings too
            rc, out = shell_tool(["shellcheck", "-s", "sh", "-S", "warning", "-f", "gcc", "-"],
                                 script)
            if rc != 0:
                yield "%s: shellcheck: %s" % (where, " / ".join(out.strip().splitlines()))


RULES = [
    ("name", rule_name), ("size", rule_size), ("format", rule_format), ("yaml", rule_yaml),
    ("platform", rule_platform), ("lifecycle", rule_lifecycle), ("step", rule_step),
    ("variables", rule_variables), ("config", rule_config), ("artifacts", rule_artifacts),
    ("package", rule_package), ("relay-settings", rule_relay_settings), ("shell", rule_shell),
]


# ------------------------------------------------------------------ rules across recipes ------

def _phase_text(r, phase):
    for nucleus, _, life in r.lifecycles():
        if nucleus == "lite" and life:
            s = N.step(life, phase, "lite")
            return s[0] if s else None
    return None


def rule_shared(recipes, opts):
    """Recipes that carry ei-relay's package (the relay, the runner and the serial components)
    share install and run; any others that install edge-impulse-linux share install: one script
    each, written in every recipe that runs it."""
    groups = [("ei-relay's package", [r for r in recipes if r.carries_package()],
               ("install", "run")),
              ("edge-impulse-linux", [r for r in recipes if not r.carries_package() and
                                      "edge-impulse-linux" in (_phase_text(r, "install") or "")],
               ("install",))]
    for what, members, phases in groups:
        for phase in phases:
            first = members[0] if members else None
            for r in members[1:]:
                if _phase_text(r, phase) != _phase_text(first, phase):
                    yield r, "%s differs from %s's: recipes running %s share it" % (
                        phase, first.file, what)


def rule_dependencies(recipes, opts):
    by_name = {r.name: r for r in recipes}
    for r in recipes:
        for dep, props in (r.doc.get("ComponentDependencies") or {}).items():
            props = props or {}
            if props.get("DependencyType", "HARD") not in ("HARD", "SOFT"):
                yield r, "dependency %s: DependencyType HARD or SOFT" % dep
            if dep in by_name and str(props.get("VersionRequirement")) != by_name[dep].version:
                yield r, "dependency %s: VersionRequirement must be %s, the version beside it" % (
                    dep, by_name[dep].version)


COLLECTION_RULES = [("shared", rule_shared), ("dependencies", rule_dependencies)]


# ------------------------------------------------------------------ driver --------------------

def scan(recipe_dir, opts):
    """[(file, rule, message)] for every *.yaml in recipe_dir."""
    recipes, findings = [], []
    for f in sorted(os.listdir(recipe_dir)):
        if not f.endswith(".yaml"):
            continue
        path = os.path.join(recipe_dir, f)
        try:
            text, doc = N.load(path)
        except yaml.YAMLError as e:
            findings.append((f, "yaml", str(e).replace("\n", " ")))
            continue
        if not isinstance(doc, dict):
            findings.append((f, "format", "not a YAML mapping"))
            continue
        recipes.append(Recipe(path, text, doc))
    if not recipes and not findings:
        findings.append((recipe_dir, "name", "no recipe (*.yaml) here"))
    for r in recipes:
        for rule, fn in RULES:
            findings += [(r.file, rule, msg) for msg in fn(r, opts)]
    for rule, fn in COLLECTION_RULES:
        findings += [(r.file, rule, msg) for r, msg in fn(recipes, opts)]
    return list(dict.fromkeys(findings))  # one line per finding, in order


def project_version(root):
    with open(os.path.join(root, "CMakeLists.txt"), encoding="utf-8") as f:
        m = re.search(r"project\([^)]*\bVERSION\s+(\d+\.\d+\.\d+)", f.read())
    return m.group(1) if m else None


def main(argv):
    here = os.path.dirname(os.path.abspath(__file__))
    root = os.path.realpath(os.path.join(here, "..", ".."))
    ap = argparse.ArgumentParser(description="both Greengrass nuclei's rules on every recipe")
    ap.add_argument("recipe_dir", nargs="?", default=os.path.join(root, "recipes"))
    ap.add_argument("--ei-relay", help="the ei-relay binary whose settings the recipes give")
    ap.add_argument("--project-version", help="the version every recipe must carry ('cmake': "
                    "CMakeLists.txt's)")
    opts = ap.parse_args(argv[1:])
    if opts.project_version == "cmake":
        opts.project_version = project_version(root)
    try:
        opts.settings = relay_settings(opts.ei_relay) if opts.ei_relay else None
        findings = scan(opts.recipe_dir, opts)
    except (OSError, subprocess.SubprocessError) as e:
        print("check_recipes: cannot read %s: %s" % (opts.recipe_dir, e))
        return 2
    for f, rule, msg in findings:
        print("%s: %s: %s" % (f, rule, msg))
    print("check_recipes: %d finding(s) in %s" % (len(findings), opts.recipe_dir))
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
