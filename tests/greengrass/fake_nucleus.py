# fake_nucleus.py - a Java nucleus or a nucleus lite, faked in a clean Debian 12 root
# (tests/install/chroot.py) as far as a component sees one: the device's identity where that
# nucleus keeps it (Java: <root>/config/effectiveConfig.yaml, thingCert.crt, privKey.key,
# rootCA.pem, all root's; lite: /etc/greengrass/config.yaml + config.d/*.yaml, device.pem,
# device.key, AmazonRootCA1.pem, ggcore's), its users, a deployment of one recipe (the effective
# configuration, the artifacts of the manifest it selects with their Permission, the work folder
# owned by the component user), and the lifecycle steps run as it runs them: variables
# substituted as nucleus.py models, its environment, install as root, run as the component user
# in the work folder; Java passes Setenv as the environment of `sh -c SCRIPT`, lite writes a
# script of `export K='v'` lines before the step. Used by test_fake_nucleus.py.
import json
import os
import shutil
import subprocess
import time

import yaml

import nucleus as N

JAVA, LITE = "java", "lite"
LAYOUT = {
    JAVA: {"root": "/greengrass/v2", "user": "ggc_user", "group": "ggc_group",
           "cert": "thingCert.crt", "key": "privKey.key", "ca": "rootCA.pem",
           "ipc": "/greengrass/v2/ipc.socket"},
    LITE: {"root": "/var/lib/greengrass", "user": "gg_component", "group": "gg_component",
           "cert": "device.pem", "key": "device.key", "ca": "AmazonRootCA1.pem",
           "ipc": "/var/lib/greengrass/gg-ipc.socket"},
}
REGION = "eu-west-1"


def deep_merge(base, merge):
    out = dict(base)
    for k, v in merge.items():
        out[k] = deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) \
            else v
    return out


class FakeNucleus:
    """One nucleus in the Debian root at fs (a path on this machine). chroot: the
    tests/install/chroot.py module; binds: extra (host path, root path) mounts for every step
    (apt's download cache)."""

    def __init__(self, kind, fs, chroot, thing, binds=()):
        self.kind, self.fs, self.chroot, self.thing = kind, fs, chroot, thing
        self.binds = list(binds)
        lay = LAYOUT[kind]
        self.root, self.user, self.group = lay["root"], lay["user"], lay["group"]
        self.lay = lay
        self.recipe = self.name = self.version = self.config = None

    def host(self, path):
        """The path on this machine of a path in the root."""
        return os.path.join(self.fs, path.lstrip("/"))

    def run(self, argv, **kw):
        return self.chroot.run_in_root(self.fs, argv, binds=self.binds, **kw)

    def put(self, path, data, mode, owner="root:root"):
        p = self.host(path)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "wb" if isinstance(data, bytes) else "w") as f:
            f.write(data)
        self.run(["chown", owner, path])
        os.chmod(p, mode)

    # ---------------------------------------------------------------- the device ----------

    def install_identity(self, cert, key, ca, endpoint):
        """Users, the device certificate, key and CA, and the nucleus configuration naming
        them and the IoT data endpoint (the nucleus's own files, unreadable to the component
        user)."""
        # a device resolves localhost (a minimal root has no /etc/hosts)
        self.put("/etc/hosts", "127.0.0.1 localhost\n::1 localhost ip6-localhost\n", 0o644)
        g = self.group
        self.run(["sh", "-c", "getent group %s || groupadd --system %s" % (g, g)])
        self.run(["useradd", "--system", "--create-home", "-g", g, self.user])
        files = {}
        for what, src in (("cert", cert), ("key", key), ("ca", ca)):
            files[what] = os.path.join(self.root, self.lay[what])
            with open(src, "rb") as f:
                data = f.read()
            if self.kind == LITE:  # lite's files belong to its own user, ggcore
                self.run(["sh", "-c", "getent passwd ggcore || useradd --system ggcore"])
                self.put(files[what], data, 0o600 if what == "key" else 0o644, "ggcore:ggcore")
            else:
                self.put(files[what], data, 0o600 if what == "key" else 0o644)
        system = {"certificateFilePath": files["cert"], "privateKeyPath": files["key"],
                  "rootCaPath": files["ca"], "rootpath": self.root, "thingName": self.thing}
        if self.kind == JAVA:
            self.java_config = {"system": system, "services": {"aws.greengrass.Nucleus": {
                "componentType": "NUCLEUS", "version": "2.14.3", "configuration": {
                    "awsRegion": REGION, "iotDataEndpoint": endpoint,
                    "iotCredEndpoint": "credentials.example.invalid",
                    "runWithDefault": {"posixUser": "%s:%s" % (self.user, self.group)}}}}}
            self._write_java_config()
        else:
            # The identity in config.yaml, the endpoint in a config.d file (lite merges them).
            system["rootPath"] = system.pop("rootpath")
            self.put("/etc/greengrass/config.yaml", yaml.safe_dump({
                "system": system, "services": {"aws.greengrass.NucleusLite": {
                    "componentType": "NUCLEUS", "configuration": {
                        "awsRegion": REGION, "iotCredEndpoint": "credentials.example.invalid",
                        "iotRoleAlias": "GreengrassV2TokenExchangeRoleAlias",
                        "runWithDefault": {"posixUser": "%s:%s" % (self.user, self.group)}}}}}),
                0o644)
            self.put("/etc/greengrass/config.d/endpoint.yaml", yaml.safe_dump({
                "services": {"aws.greengrass.NucleusLite": {"configuration": {
                    "iotDataEndpoint": endpoint}}}}), 0o644)
        self.ca_path = files["ca"]

    def _write_java_config(self):
        d = os.path.join(self.root, "config")
        self.put(os.path.join(d, "effectiveConfig.yaml"), yaml.safe_dump(self.java_config),
                 0o600)
        os.chmod(self.host(d), 0o700)

    # ---------------------------------------------------------------- a deployment --------

    def deploy(self, recipe_path, artifacts_dir, merge=None):
        """The recipe deployed with a configuration merge: the artifacts of the manifest
        this nucleus selects here, the work folder, the effective configuration."""
        _, self.recipe = N.load(recipe_path)
        self.name, self.version = self.recipe["ComponentName"], self.recipe["ComponentVersion"]
        self.config = deep_merge(N.default_config(self.recipe), merge or {})
        arch = {"amd64": "amd64", "arm64": "aarch64", "armhf": "arm"}[
            subprocess.run(["dpkg", "--print-architecture"], capture_output=True, text=True,
                           check=True).stdout.strip()]
        manifest = N.select_manifest(self.recipe, self.kind, arch)
        assert manifest, "%s selects no manifest of %s on %s" % (self.kind, self.name, arch)
        self.life = N.lifecycle(self.recipe, manifest)
        art_dir = os.path.join(self.root, "packages", "artifacts", self.name, self.version)
        for a in manifest.get("Artifacts") or []:
            f = a["Uri"].rsplit("/", 1)[1]
            with open(os.path.join(artifacts_dir, self.name, self.version, f), "rb") as src:
                data = src.read()
            perm = a.get("Permission") or {}
            mode = (0o400 if perm.get("Read") == "OWNER" else 0o444 if perm.get("Read") == "ALL"
                    else 0) | (0o100 if perm.get("Execute") == "OWNER" else 0o111
                               if perm.get("Execute") == "ALL" else 0)
            self.put(os.path.join(art_dir, f), data, mode)
        os.makedirs(self.host(os.path.join(self.root, "packages", "artifacts-unarchived",
                                           self.name, self.version)), exist_ok=True)
        work = os.path.join(self.root, "work", self.name)
        os.makedirs(self.host(work), exist_ok=True)
        self.run(["chown", "%s:%s" % (self.user, self.group), work])
        os.chmod(self.host(work), 0o700)
        self.work = work
        if self.kind == JAVA:
            self.java_config["services"][self.name] = {"version": self.version,
                                                       "configuration": self.config}
            self._write_java_config()

    def context(self):
        return N.Context(self.kind, self.root, self.name, self.version, self.thing, self.config)

    def environment(self):
        """What the nucleus gives every step of a component."""
        env = {"AWS_IOT_THING_NAME": self.thing, "AWS_REGION": REGION,
               "AWS_DEFAULT_REGION": REGION, "SVCUID": "fake-svcuid-%s" % self.kind,
               "AWS_GG_NUCLEUS_DOMAIN_SOCKET_FILEPATH_FOR_COMPONENT": self.lay["ipc"],
               "GG_ROOT_CA_PATH": self.ca_path,
               "GGC_VERSION": "2.14.3" if self.kind == JAVA else "2.2.0"}
        if self.kind == LITE:
            env["AWS_CONTAINER_AUTHORIZATION_TOKEN"] = env["SVCUID"]
        return env

    def step_argv(self, phase):
        """(argv run inside the root, environment, runs as root) of one lifecycle phase."""
        script, setenv, privileged, _ = N.step(self.life, phase, self.kind)
        ctx = self.context()
        body = N.substitute(script, ctx, True)
        env = self.environment()
        values = {k: N.substitute(str(v), ctx, False) for k, v in setenv.items()}
        if self.kind == JAVA:
            env.update(values)
            text = body
        else:
            exports = "".join("export %s='%s'\n" % (k, v.replace("'", "'\\''"))
                              for k, v in values.items())
            text = exports + body
        argv = ["sh", "-c", text]
        if not privileged:
            env["HOME"] = "/home/" + self.user
            argv = ["setpriv", "--reuid=" + self.user, "--regid=" + self.group,
                    "--init-groups", "--"] + argv
        return argv, env, privileged

    def install(self):
        """Runs install; returns (exit status, output, seconds)."""
        argv, env, _ = self.step_argv("install")
        t0 = time.monotonic()
        r = self.run(argv, env=env, cwd=self.work, check=False, stdout=subprocess.PIPE,
                     stderr=subprocess.STDOUT, capture_output=False)
        return r.returncode, r.stdout, time.monotonic() - t0

    def start(self, log_path):
        """Starts run (as the component user); returns the Popen (stop with stop())."""
        argv, env, _ = self.step_argv("run")
        log = open(log_path, "ab")
        try:
            return subprocess.Popen(self.chroot.root_argv(self.fs, argv, self.binds, env,
                                                          self.work),
                                    stdout=log, stderr=subprocess.STDOUT)
        finally:
            log.close()

    def stop(self, proc, timeout):
        """SIGTERM as the nucleus sends it; (exit status or None, seconds)."""
        t0 = time.monotonic()
        status = self.chroot.stop_in_root(proc, timeout)
        return status, time.monotonic() - t0

    def as_user(self, argv):
        """argv run inside the root as the component user; its stdout."""
        return self.run(["setpriv", "--reuid=" + self.user, "--regid=" + self.group,
                         "--init-groups", "--"] + argv, cwd=self.work).stdout

    def stat(self, path):
        """(mode, owner) of a path in the root."""
        out = self.run(["stat", "-c", "%a %U", path]).stdout.split()
        return int(out[0], 8), out[1]

    def read_json(self, path):
        with open(self.host(path), encoding="utf-8") as f:
            return json.load(f)

    def remove(self):
        shutil.rmtree(self.fs, ignore_errors=True)
