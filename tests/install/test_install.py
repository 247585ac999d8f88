#!/usr/bin/env python3
"""test_install.py - the package on a clean Debian 12 (label install).

1. scripts/package.sh builds the host's .deb into the build tree (as a release would).
2. The .deb itself (dpkg-deb): its fields, files, modes, conffile and maintainer scripts; the
   unit passes `systemd-analyze verify` (when installed) and lintian reports nothing above info
   (when installed).
3. A minimal Debian 12 root (tests/install/chroot.py: mmdebstrap minbase, cached under the build
   tree) gets `apt-get install --no-install-recommends ./ei-relay_<v>_<arch>.deb`: apt must pull every runtime dependency
   and nothing else (every package it adds is in the Depends closure, none is a -dev package,
   each Depends is installed, and the recommended GStreamer plugins, which only a camera needs,
   are not).
4. The service as the unit runs it: the unit's ExecStart with its EnvironmentFile, as its user in
   its working directory, with no-new-privileges and (where the kernel can) no W+X memory, on
   free ports, forwarding through /etc/default/ei-relay to a local mosquitto over TLS with client
   certificates (where mosquitto is installed). Health answers; `ei-relay token` as the ei-relay
   user gives the admin token; an inference with a JPEG is stored, its thumbnail made (libvips)
   and its message received by the broker (OpenSSL, paho); SIGTERM stops it with 0.
5. Remove keeps the state, reinstall works over it, purge removes it.
It prints the install time: apt's part and the whole (root extraction included).

Root only: otherwise, or when mmdebstrap cannot reach Debian's mirror, it is skipped (77).
Env: EI_TEST_SOURCE_DIR (the checkout), EI_INSTALL_DIR (its work and cache directory).
"""
import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import chroot  # noqa: E402

from harness import check, eq, free_port, make_jpeg, multipart_body, wait_for  # noqa: E402
from harness import mqtt  # noqa: E402

SRC = os.environ.get("EI_TEST_SOURCE_DIR") or os.path.normpath(os.path.join(HERE, "..", ".."))
WORK = os.environ.get("EI_INSTALL_DIR") or os.path.join(SRC, "build", "install")
CACHE = os.path.join(WORK, "cache")
UNIT = "/lib/systemd/system/ei-relay.service"
# Recommended, not required: only the camera (server/camera) needs GStreamer's plugins
CAMERA_PLUGINS = ("gstreamer1.0-plugins-base", "gstreamer1.0-plugins-good")
# The camera's libraries (soname -> the package dpkg-shlibdeps must name in Depends)
GST_LIBS = {"libgstreamer-1.0.so.0": "libgstreamer1.0-0",
            "libgstapp-1.0.so.0": "libgstreamer-plugins-base1.0-0"}
REQUIRED_FILES = {
    "./usr/bin/ei-relay": "-rwxr-xr-x",
    "./usr/share/ei-relay/web/index.html": "-rw-r--r--",
    "./lib/systemd/system/ei-relay.service": "-rw-r--r--",
    "./etc/default/ei-relay": "-rw-r--r--",
    "./usr/share/doc/ei-relay/examples/ei-relay.default": "-rw-r--r--",
    "./usr/share/man/man1/ei-relay.1.gz": "-rw-r--r--",
    "./usr/share/doc/ei-relay/copyright": "-rw-r--r--",
    "./usr/share/doc/ei-relay/changelog.gz": "-rw-r--r--",
}


def skip(why):
    print("SKIP: " + why)
    sys.exit(77)


def step(msg):
    print("== " + msg, flush=True)


def cmake_version():
    return chroot.project_version(SRC)


def control_fields(deb):
    text = subprocess.run(["dpkg-deb", "-f", deb], capture_output=True, text=True,
                          check=True).stdout
    fields, key = {}, None
    for line in text.splitlines():
        if line.startswith(" ") and key:
            fields[key] += "\n" + line
        else:
            key, _, val = line.partition(":")
            fields[key] = val.strip()
    return fields


def dep_names(field):
    """Package names of a Depends-like field (alternatives included)."""
    names = []
    for clause in filter(None, (c.strip() for c in field.split(","))):
        for alt in clause.split("|"):
            names.append(alt.split()[0].split(":")[0])
    return names


def binary_needed(deb, path):
    """The NEEDED sonames of the packaged file path ("./usr/bin/ei-relay"; readelf -d)."""
    tar = subprocess.run(["dpkg-deb", "--fsys-tarfile", deb], capture_output=True, check=True)
    binary = os.path.join(WORK, "ei-relay.needed-check")
    with open(binary, "wb") as out:
        subprocess.run(["tar", "-xO", path], input=tar.stdout, stdout=out, check=True)
    try:
        r = subprocess.run(["readelf", "-d", binary], capture_output=True, text=True, check=True)
    finally:
        os.unlink(binary)
    return {ln.split("[", 1)[1].rstrip("]") for ln in r.stdout.splitlines() if "(NEEDED)" in ln}


def check_deb(deb, arch):
    step("dpkg-deb checks of " + os.path.basename(deb))
    f = control_fields(deb)
    eq(f.get("Package"), "ei-relay", "Package")
    eq(f.get("Version"), cmake_version(), "Version follows CMakeLists.txt")
    eq(f.get("Architecture"), arch, "Architecture")
    deps = dep_names(f.get("Depends", ""))
    for lib in ("libc6", "libvips42", "libsqlite3-0", "libmicrohttpd12", "libpaho-mqtt1.3",
                "libwebsockets17", "libcjson1", "adduser"):
        check(lib in deps, "Depends lacks %s: %s" % (lib, f.get("Depends")))
    listing = subprocess.run(["dpkg-deb", "-c", deb], capture_output=True, text=True,
                             check=True).stdout
    modes = {}
    for line in listing.splitlines():
        parts = line.split()
        modes[parts[5]] = (parts[0], tuple(parts[1].split("/")))  # (mode, (owner, group))
    # libvips and GStreamer are modules in <libdir>/ei-relay (dlopen'ed on first use), which the
    # relay finds by its compiled-in path: the binary links neither, the modules do
    modules = {os.path.basename(p): p for p in modes
               if re.fullmatch(r"\./usr/lib/([^/]+/)?ei-relay/ei-relay-(vips|gst)\.so", p)}
    eq(sorted(modules), ["ei-relay-gst.so", "ei-relay-vips.so"], "the modules packaged")
    for name in modules.values():
        eq(modes[name], ("-rw-r--r--", ("root", "root")), "mode and owner of " + name)
    needed = binary_needed(deb, "./usr/bin/ei-relay")
    check(not [n for n in needed if "vips" in n or "gst" in n],
          "the binary links libvips or GStreamer itself: %s" % sorted(needed))
    check("libvips.so.42" in binary_needed(deb, modules["ei-relay-vips.so"]),
          "ei-relay-vips.so does not link libvips")
    # the eim source's camera links GStreamer's libraries: Depends must name their packages
    needed = binary_needed(deb, modules["ei-relay-gst.so"])
    for soname, lib in GST_LIBS.items():
        check(soname in needed, "ei-relay-gst.so does not link %s (the camera)" % soname)
        check(lib in deps, "the camera needs %s but Depends lacks %s: %s"
              % (soname, lib, f.get("Depends")))
    # the plugins only a camera needs (~180 packages on a clean root) are recommended, not
    # required: the camera's "no element" error names them
    recommends = dep_names(f.get("Recommends", ""))
    for pkg in CAMERA_PLUGINS:
        check(pkg in recommends and pkg not in deps,
              "%s should be in Recommends, not Depends: %s" % (pkg, f.get("Recommends")))
    bad = [d for d in deps if d.endswith("-dev")]
    check(not bad, "Depends names -dev packages: %s" % bad)
    for path, mode in REQUIRED_FILES.items():
        check(path in modes, "the package lacks %s" % path)
        eq(modes[path], (mode, ("root", "root")), "mode and owner of " + path)
    owners = {o for _, o in modes.values()}
    eq(owners, {("root", "root")}, "every file is owned by root")
    scratch = os.path.join(WORK, "deb-control")
    shutil.rmtree(scratch, ignore_errors=True)
    subprocess.run(["dpkg-deb", "-e", deb, scratch], check=True)
    with open(os.path.join(scratch, "conffiles")) as fh:
        eq(fh.read().split(), ["/etc/default/ei-relay"], "conffiles")
    for script in ("postinst", "prerm", "postrm"):
        check(os.access(os.path.join(scratch, script), os.X_OK), script + " is executable")
        subprocess.run(["sh", "-n", os.path.join(scratch, script)], check=True)
    check_unit(deb)
    if shutil.which("lintian"):
        r = subprocess.run(["lintian", "--fail-on", "warning", deb], capture_output=True,
                           text=True)
        print(r.stdout, end="")
        eq(r.returncode, 0, "lintian reports warnings or errors:\n" + r.stdout + r.stderr)
    else:
        print("   lintian not installed: not run")


def check_unit(deb):
    """systemd-analyze verify on the packaged unit, its ExecStart pointed at the packaged
    binary (the host has none installed); any output is a finding. Prints the security score."""
    if not shutil.which("systemd-analyze"):
        print("   systemd-analyze not installed: the unit is not verified")
        return
    tree = os.path.join(WORK, "deb-tree")
    shutil.rmtree(tree, ignore_errors=True)
    subprocess.run(["dpkg-deb", "-x", deb, tree], check=True)
    with open(tree + UNIT) as f:
        unit = f.read().replace("/usr/bin/ei-relay", tree + "/usr/bin/ei-relay")
    unit_dir = os.path.join(WORK, "unit")
    os.makedirs(unit_dir, exist_ok=True)
    path = os.path.join(unit_dir, "ei-relay.service")
    with open(path, "w") as f:
        f.write(unit)
    r = subprocess.run(["systemd-analyze", "verify", "--man=no", path], capture_output=True,
                       text=True)
    eq((r.returncode, (r.stdout + r.stderr).strip()), (0, ""), "systemd-analyze verify")
    r = subprocess.run(["systemd-analyze", "security", "--offline=yes", path],
                       capture_output=True, text=True)
    score = [ln for ln in r.stdout.splitlines() if "Overall exposure level" in ln]
    print("   unit verified; " + (score[0].strip() if score else "no security score"))


def depends_closure(root, names):
    """Every package apt would install for names: their Depends/Pre-Depends, recursively,
    each alternative and virtual package's providers included."""
    r = chroot.run_in_root(root, ["apt-cache", "depends", "--recurse", "--no-recommends",
                                  "--no-suggests", "--no-conflicts", "--no-breaks",
                                  "--no-replaces", "--no-enhances"] + names)
    closure = set()
    for line in r.stdout.splitlines():
        name = line.split(":", 1)[-1].strip() if ":" in line and line.startswith(" ") else \
            line.strip()
        closure.add(name.strip("<>").split(":")[0])
    return closure


def unit_settings(root):
    """(ExecStart argv, User, WorkingDirectory, EnvironmentFile path) of the installed unit."""
    vals = {}
    with open(root + UNIT) as f:
        for line in f:
            key, sep, val = line.strip().partition("=")
            if sep and not key.startswith("#"):
                vals.setdefault(key, val)
    return vals["ExecStart"].split(), vals["User"], vals["WorkingDirectory"], \
        vals["EnvironmentFile"].lstrip("-")


def environment_file(root, path):
    env = {}
    with open(root + path) as f:
        for line in f:
            line = line.strip()
            if line and not line.startswith("#"):
                k, _, v = line.partition("=")
                env[k] = v.strip("'\"")
    return env


def http(port, method, path, body=None, headers=None):
    req = urllib.request.Request("http://127.0.0.1:%d%s" % (port, path), data=body,
                                 method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.headers.get("Content-Type", ""), r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type", ""), e.read()


DEVICE = "install-test"


def configure_forwarding(root, user, env_file):
    """A local broker and the relay's certificates in its state directory (as greengrass-setup
    hands them over: the key 0600, the user's), named in the environment file. Returns the
    broker and a subscriber, or (None, None) without mosquitto."""
    if not mqtt.mosquitto_bin() or not shutil.which("openssl"):
        print("   mosquitto or openssl missing: forwarding not checked")
        return None, None
    pki = mqtt.make_pki(os.path.join(WORK, "pki"))
    broker = mqtt.Broker(pki, persistence=False).start()
    sub = broker.subscriber(mqtt.topic(DEVICE, "inference/output"))
    state = "/var/lib/ei-relay"
    for name, src, mode in (("ca.crt", pki["ca"], 0o644), ("relay.crt", pki["client_cert"], 0o644),
                            ("relay.key", pki["client_key"], 0o600)):
        shutil.copy(src, root + state + "/" + name)
        os.chmod(root + state + "/" + name, mode)
        chroot.run_in_root(root, ["chown", user + ":" + user, state + "/" + name])
    with open(root + "/etc/hosts", "a") as f:  # the broker's certificate names localhost
        f.write("127.0.0.1 localhost\n")
    with open(root + env_file, "a") as f:
        f.write("\n# install test\nEI_RELAY_MQTT_ENDPOINT=localhost\nEI_RELAY_MQTT_PORT=%d\n"
                "EI_RELAY_MQTT_CA=%s/ca.crt\nEI_RELAY_MQTT_CERT=%s/relay.crt\n"
                "EI_RELAY_MQTT_KEY=%s/relay.key\nEI_RELAY_DEVICE_NAME=%s\n"
                "EI_RELAY_DEVICE_MAC_SUFFIX=false\n" % (broker.port, state, state, state, DEVICE))
    return broker, sub


def run_service(root, log_path):
    step("the service as its unit runs it")
    argv, user, cwd, env_file = unit_settings(root)
    broker, sub = configure_forwarding(root, user, env_file)
    env = environment_file(root, env_file)
    http_port, ws_port = free_port(), free_port()
    argv += ["--http-port", str(http_port), "--ws-port", str(ws_port)]
    mdwe = chroot.mdwe_supported()
    print("   %s as %s in %s%s" % (" ".join(argv), user, cwd,
                                   "; W+X memory refused" if mdwe else
                                   "; this kernel cannot refuse W+X memory (no PR_SET_MDWE)"))
    with open(log_path, "w") as log:
        proc = chroot.start_in_root(root, argv, user=user, env=env, cwd=cwd, log=log)
    try:
        def health():
            if proc.poll() is not None:
                raise AssertionError("the service exited with %s:\n%s" % (proc.returncode,
                                                                         open(log_path).read()))
            try:
                return http(http_port, "GET", "/api/v1/health")
            except OSError:
                return None
        status, _, body = wait_for("health", health, timeout=30)
        eq(status, 200, "health")
        doc = json.loads(body)
        eq(doc["status"], "ok", "health status")
        eq(doc["db"]["path"], "/var/lib/ei-relay/ei-relay.db", "the unit's database")

        token = chroot.run_in_root(root, ["runuser", "-u", user, "--", "ei-relay", "token",
                                          "--db-path", "/var/lib/ei-relay/ei-relay.db"]
                                   ).stdout.strip()
        check(len(token) >= 16, "ei-relay token printed %r" % token)
        auth = {"Authorization": "Bearer " + token}
        ctype, body = multipart_body([
            ("json", None, "application/json",
             json.dumps({"result": {"classification": {"idle": 0.1, "wave": 0.9}}}).encode()),
            ("image", "frame.jpg", "image/jpeg", make_jpeg(320, 240, noise=8))])
        status, _, answer = http(http_port, "POST", "/api/v1/inferences", body,
                                 dict(auth, **{"Content-Type": ctype}))
        eq(status, 201, "ingest: %r" % answer[:300])
        inf = json.loads(answer)
        status, ctype, thumb = http(http_port, "GET", inf["image"]["thumbnail_url"], None, auth)
        eq((status, ctype), (200, "image/jpeg"), "thumbnail (libvips)")
        check(thumb[:2] == b"\xff\xd8", "the thumbnail is a JPEG")
        if sub:
            sub.wait_count(mqtt.topic(DEVICE, "inference/output"), 1, 30,
                           pred=lambda m: m.json().get("id") == inf["id"])
        status, _, page = http(http_port, "GET", "/", None, {})
        eq(status, 200, "the dashboard from the packaged web_root")
        check(b"<html" in page.lower(), "the dashboard's index.html")
    finally:
        code = chroot.stop_in_root(proc)
        if broker:
            sub.close()
            broker.stop()
    log_text = open(log_path).read()
    eq(code, 0, "exit status after SIGTERM; log:\n" + log_text)
    print("   health, token, ingest with image, thumbnail, dashboard, %sclean stop: ok"
          % ("forwarded over TLS, " if broker else ""))


def lifecycle(root, deb):
    step("remove keeps the state, reinstall, purge removes it")
    state = root + "/var/lib/ei-relay/ei-relay.db"
    check(os.path.exists(state), "the service made its database")
    chroot.run_in_root(root, ["dpkg", "--remove", "ei-relay"])
    check(os.path.exists(state), "remove keeps /var/lib/ei-relay")
    check(os.path.exists(root + "/etc/default/ei-relay"), "remove keeps the conffile")
    chroot.run_in_root(root, ["dpkg", "--install", "/tmp/" + os.path.basename(deb)])
    chroot.run_in_root(root, ["dpkg", "--purge", "ei-relay"])
    check(not os.path.exists(root + "/var/lib/ei-relay"), "purge removes /var/lib/ei-relay")
    check(not os.path.exists(root + "/etc/default/ei-relay"), "purge removes the conffile")


def main():
    if os.geteuid() != 0:
        skip("the clean-root install test needs root (mmdebstrap, chroot)")
    if not shutil.which("mmdebstrap"):
        skip("mmdebstrap is not installed (scripts/deps.sh test installs it)")
    os.makedirs(WORK, exist_ok=True)
    t_build = time.monotonic()
    deb, arch = chroot.build_deb(SRC, WORK)
    t_build = time.monotonic() - t_build
    check_deb(deb, arch)

    step("a clean Debian 12 root")
    t0 = time.monotonic()
    try:
        root = chroot.debian_root(CACHE, dest=os.path.join(WORK, "root"))
    except chroot.Unavailable as e:
        skip(str(e))
    t_root = time.monotonic() - t0
    before = chroot.dpkg_packages(root)

    step("apt-get install --no-install-recommends ./" + os.path.basename(deb))
    try:
        # as the README and the recipes install it: without the dependencies' Recommends, which
        # would add ghostscript, dbus, fonts... (libvips42 and libmagickcore recommend them)
        times = chroot.install_deb(root, deb, CACHE, apt_args=["--no-install-recommends"])
    except chroot.Unavailable as e:
        skip(str(e))
    t_whole = time.monotonic() - t0
    after = chroot.dpkg_packages(root)
    added = sorted(set(after) - set(before))
    fields = control_fields(deb)
    closure = depends_closure(root, dep_names(fields["Depends"])) | {"ei-relay"}
    extra = [p for p in added if p not in closure]
    check(not extra, "apt installed packages outside the Depends closure: %s" % extra)
    dev = [p for p in added if p.endswith("-dev")]
    check(not dev, "apt installed -dev packages: %s" % dev)
    missing = [d for d in dep_names(fields["Depends"]) if d not in after]
    check(not missing, "Depends not installed: %s" % missing)
    plugins = [p for p in CAMERA_PLUGINS if p in after]
    check(not plugins, "--no-install-recommends installed the camera plugins: %s" % plugins)
    print("   %d packages added, all in the Depends closure, no -dev package"
          % len(added))

    run_service(root, os.path.join(WORK, "service.log"))
    lifecycle(root, deb)
    chroot.remove_root(root)
    print("install time: apt %.1f s; whole %.1f s (the root %.1f s: made with mmdebstrap, or "
          "extracted from the cache; then apt); package build %.1f s"
          % (times["apt_s"], t_whole, t_root, t_build))
    print("PASS")


if __name__ == "__main__":
    main()
