# nucleus.py - how each Greengrass nucleus reads a component recipe, as far as ei-relay's recipes
# and their tests need it: which manifest it selects on an architecture, which lifecycle it then
# runs (the manifest's own, or the "all" section of the global Lifecycle), how it looks up a step
# (Java: keys in any case; lite: exact), and how it substitutes recipe variables in Setenv values
# and scripts. Modelled on the Java nucleus (RecipeLoader, PlatformResolver, KernelConfigResolver)
# and on nucleus lite (ggl-recipe, recipe-runner, ggl-config-interpolation):
#
# |                      | Java nucleus                         | nucleus lite                     |
# |----------------------|--------------------------------------|----------------------------------|
# | {work:path}          | ROOT/work/NAME                       | ROOT/work/NAME/                  |
# | {artifacts:path}     | ROOT/packages/artifacts/NAME/VERSION | the same with a trailing '/'     |
# | unknown {ns:key}     | left as written                      | the step fails                   |
# | missing config key   | left as written                      | the step fails                   |
# | object/list value    | JSON text, keys sorted               | JSON text                        |
# | value in a Script    | as is                                | '"', '\', '$', '`' escaped       |
# | runtime missing      | manifest used                        | manifest skipped                 |
#
# Shared by check_recipes.py (the rules) and the fake-nucleus test. Python 3 + PyYAML.
import json
import os
import re

import yaml

NUCLEI = ("java", "lite")
# Greengrass architecture -> Debian architecture of the package built for it.
DEB_ARCH = {"amd64": "amd64", "aarch64": "arm64", "arm": "armhf"}
STEP_FIELDS = ("Script", "RequiresPrivilege", "Setenv", "Timeout")
LIFECYCLE_KEYS = ("Setenv", "install", "run", "startup", "bootstrap")
# The variables both nuclei substitute (besides configuration:/POINTER).
SYSTEM_VARIABLES = ("artifacts:path", "artifacts:decompressedPath", "work:path",
                    "kernel:rootPath", "iot:thingName")
MISSING = object()


class RecipeError(Exception):
    """What a nucleus would refuse (lite fails the step; the Java nucleus the deployment)."""


def load(path):
    """(text, recipe) of a recipe file."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    return text, yaml.safe_load(text)


def _platform_matches(platform, nucleus, arch):
    runtime = platform.get("runtime")
    if nucleus == "lite" and runtime not in ("*", "aws_nucleus_lite"):
        return False
    if nucleus == "java" and runtime == "aws_nucleus_lite":
        return False
    if platform.get("os", "*") not in ("linux", "*", "all"):
        return False
    return platform.get("architecture", "*") in ("*", arch)


def select_manifest(recipe, nucleus, arch):
    """The first manifest the nucleus takes on arch (a Greengrass architecture), or None."""
    for manifest in recipe.get("Manifests") or []:
        if _platform_matches(manifest.get("Platform") or {}, nucleus, arch):
            return manifest
    return None


def lifecycle(recipe, manifest):
    """The lifecycle a selected manifest runs: its own when not empty, else the section of the
    global Lifecycle named by its first matching selection ("all" when it has none)."""
    own = manifest.get("Lifecycle")
    if own:
        return own
    glob = recipe.get("Lifecycle") or {}
    for sel in list(manifest.get("Selections") or []) + ["all"]:
        if isinstance(glob.get(sel), dict):
            return glob[sel]
    return {}


def get_key(mapping, key, nucleus):
    """mapping[key] as the nucleus finds it (Java ignores case), or None."""
    if key in mapping:
        return mapping[key]
    if nucleus == "java":
        for k, v in mapping.items():
            if isinstance(k, str) and k.lower() == key.lower():
                return v
    return None


def step(life, phase, nucleus):
    """(script, setenv, requires_privilege, timeout) of one phase; setenv is the lifecycle's
    Setenv overlaid with the step's. None when the phase is not there."""
    s = get_key(life, phase, nucleus)
    if s is None:
        return None
    if isinstance(s, str):
        s = {"Script": s}
    env = dict(get_key(life, "Setenv", nucleus) or {})
    env.update(get_key(s, "Setenv", nucleus) or {})
    return (get_key(s, "Script", nucleus) or "", env,
            bool(get_key(s, "RequiresPrivilege", nucleus)), get_key(s, "Timeout", nucleus))


def config_value(config, pointer):
    """The value at a JSON pointer ("/a/b") in a configuration, or MISSING."""
    node = config
    for part in pointer.split("/")[1:]:
        part = part.replace("~1", "/").replace("~0", "~")
        if isinstance(node, dict) and part in node:
            node = node[part]
        else:
            return MISSING
    return node


def render(value, nucleus):
    """A configuration value as the nucleus writes it into a script or environment variable."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        if nucleus == "java":
            return json.dumps(value, sort_keys=True, separators=(",", ":"))
        return json.dumps(value, separators=(",", ":"))
    if value is None:
        return "null"
    return str(value)


class Context:
    """Where a component lives on a device: the nucleus root, the component's name and version,
    the thing name and the component's effective configuration."""

    def __init__(self, nucleus, root, name, version, thing, config):
        self.nucleus, self.root, self.name, self.version = nucleus, root, name, version
        self.thing, self.config = thing, config

    def system(self, var):
        slash = "/" if self.nucleus == "lite" else ""
        return {
            "kernel:rootPath": self.root,
            "iot:thingName": self.thing,
            "work:path": os.path.join(self.root, "work", self.name) + slash,
            "artifacts:path": os.path.join(self.root, "packages", "artifacts", self.name,
                                           self.version) + slash,
            "artifacts:decompressedPath": os.path.join(
                self.root, "packages", "artifacts-unarchived", self.name, self.version) + slash,
        }.get(var)


JAVA_VARIABLE = re.compile(r"\{([.\w-]+):([^:}]*)\}")


def _lite_escape(text):
    return re.sub(r'(["\\$`])', r"\\\1", text)


def substitute(text, ctx, in_script):
    """text with the recipe variables replaced as ctx.nucleus does; RecipeError where lite
    fails the step. in_script: a Script (lite escapes values there), not a Setenv value."""
    if ctx.nucleus == "java":
        def java(m):
            ns, key = m.group(1), m.group(2)
            if ns == "configuration":
                v = config_value(ctx.config, key)
                return m.group(0) if v is MISSING else render(v, "java")
            v = ctx.system(ns + ":" + key)
            return m.group(0) if v is None else v
        return JAVA_VARIABLE.sub(java, text)
    out, i = [], 0
    while i < len(text):
        if text[i] != "{":
            out.append(text[i])
            i += 1
            continue
        end = text.find("}", i)
        if end < 0:
            raise RecipeError("recipe variable not terminated: %r" % text[i:i + 40])
        var = text[i + 1:end]
        ns, colon, key = var.partition(":")
        if not colon:
            raise RecipeError("no ':' in recipe variable {%s}" % var)
        if ns == "configuration":
            v = config_value(ctx.config, key)
            if v is MISSING:
                raise RecipeError("configuration key %s is missing" % key)
            v = render(v, "lite")
        else:
            v = ctx.system(var)
            if v is None:
                raise RecipeError("unhandled recipe variable {%s}" % var)
        out.append(_lite_escape(v) if in_script else v)
        i = end + 1
    return "".join(out)


def default_config(recipe):
    return ((recipe.get("ComponentConfiguration") or {}).get("DefaultConfiguration") or {})
