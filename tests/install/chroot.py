"""chroot.py - clean Debian 12 machines for tests: a minimal root (mmdebstrap, variant minbase, from
Debian's mirrors) cached as a tarball under a cache directory, a fresh copy of it per test, the
package installed into it with apt, and commands or services run inside it.

Used by tests/install/test_install.py and the Greengrass fake-nucleus tests; the root building
itself is packaging/debroot.py (scripts/package.sh's cross roots use it too).

  out, arch = build_dist(src_dir, work_dir)     # scripts/package.sh into work_dir/dist
  deb, arch = build_deb(src_dir, work_dir)      # the .deb: built once per ctest run, or here
  root = debian_root(cache_dir)                 # a fresh root; raises Unavailable to skip
  times = install_deb(root, deb, cache_dir)     # apt-get install ./<deb> in it
  run_in_root(root, ["ei-relay", "--version"])  # like subprocess.run, inside the root
  p = start_in_root(root, argv, user="ei-relay")  # a service in it; stop_in_root(p) -> status

Everything needs root (CI runs as root): callers skip (exit 77) on Unavailable, which is also
raised when the Debian mirror cannot be reached. apt's downloads are kept in
<cache_dir>/apt-archives, so a rerun downloads neither the root nor the packages.
"""
import ctypes
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                                "packaging"))
import debroot  # noqa: E402  (packaging/debroot.py)

Unavailable = debroot.RootUnavailable
root_argv = debroot.root_argv

PR_SET_NO_NEW_PRIVS = 38
PR_SET_MDWE = 65  # Linux >= 6.3: what systemd's MemoryDenyWriteExecute= enforces, per process
PR_MDWE_REFUSE_EXEC_GAIN = 1

APT_ENV = {"DEBIAN_FRONTEND": "noninteractive"}
NET_ERRORS = ("Could not resolve", "Temporary failure resolving", "Failed to fetch",
              "Unable to fetch", "Network is unreachable", "Connection timed out")


def project_version(src_dir):
    """The version in CMakeLists.txt's project(), the package's version."""
    with open(os.path.join(src_dir, "CMakeLists.txt")) as f:
        for line in f:
            if line.startswith("project(ei-relay VERSION "):
                return line.split()[2]
    raise RuntimeError("no project version in CMakeLists.txt")


def host_arch():
    return subprocess.run(["dpkg", "--print-architecture"], capture_output=True, text=True,
                          check=True).stdout.strip()


def build_dist(src_dir, work_dir, recipes=True):
    """This machine's release built by scripts/package.sh into work_dir/dist (its build trees in
    work_dir/pkg): the .deb and, with recipes, the Greengrass components (dist/greengrass).
    Returns (dist directory, Debian architecture)."""
    arch = host_arch()
    out = os.path.join(work_dir, "dist")
    subprocess.run([os.path.join(src_dir, "scripts", "package.sh")] +
                   ([] if recipes else ["--no-recipes"]) +
                   ["--out", out, "--work", os.path.join(work_dir, "pkg"), arch], check=True)
    return out, arch


def dist_prebuilt():
    """Whether this run's release is already in work_dir/dist: CTest's fixture test
    package.dist (build_dist.py) builds it once for install.clean_root and
    greengrass.fake_nucleus, which it runs first and tells so with EI_DIST_PREBUILT=1. A test
    run by hand builds its own."""
    return os.environ.get("EI_DIST_PREBUILT") == "1"


def build_deb(src_dir, work_dir):
    """This machine's .deb in work_dir/dist, built by scripts/package.sh unless this run's
    fixture built it (dist_prebuilt): (path, Debian architecture)."""
    if dist_prebuilt():
        out, arch = os.path.join(work_dir, "dist"), host_arch()
    else:
        out, arch = build_dist(src_dir, work_dir, recipes=False)
    deb = os.path.join(out, "ei-relay_%s_%s.deb" % (project_version(src_dir), arch))
    if not os.path.isfile(deb):
        raise RuntimeError("no %s (scripts/package.sh, or the package.dist fixture)" % deb)
    return deb, arch


def debian_root(cache_dir, dest=None, include=()):
    """A fresh minimal Debian 12 root (with the packages in include): its path. dest defaults to
    a new directory under cache_dir/roots; the caller removes it (remove_root)."""
    tar = debroot.tarball(cache_dir, "minbase", ("amd64",), tuple(include))
    if dest is None:
        os.makedirs(os.path.join(cache_dir, "roots"), exist_ok=True)
        dest = tempfile.mkdtemp(prefix="root-", dir=os.path.join(cache_dir, "roots"))
    return debroot.extract(tar, dest)


def remove_root(root):
    shutil.rmtree(root, ignore_errors=True)


def run_in_root(root, argv, binds=(), env=None, cwd="/", check=True, **kw):
    """argv run inside root like subprocess.run (text output captured unless the caller says)."""
    kw.setdefault("capture_output", True)
    kw.setdefault("text", True)
    return debroot.run_in_root(root, argv, binds, env, cwd, check, **kw)


def dpkg_packages(root):
    """{package name: version} of what dpkg has installed in root (arch qualifiers dropped)."""
    out = run_in_root(root, ["dpkg-query", "-W", "-f", "${db:Status-Abbrev} ${Package} ${Version}\n"])
    pkgs = {}
    for line in out.stdout.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0] == "ii":
            pkgs[parts[1]] = parts[2]
    return pkgs


def install_deb(root, deb, cache_dir, apt_args=()):
    """apt-get install ./<deb> inside root, downloads kept in cache_dir/apt-archives. Returns
    {"apt_s": seconds apt took, "apt_output": its output}. An unreachable mirror raises
    Unavailable; stale package lists (a 404) are refreshed once."""
    archives = os.path.join(cache_dir, "apt-archives")
    os.makedirs(os.path.join(archives, "partial"), exist_ok=True)
    shutil.copy(deb, os.path.join(root, "tmp"))
    binds = [(archives, "/var/cache/apt/archives")]
    argv = ["apt-get", "install", "-y", "-q"] + list(apt_args) + ["/tmp/" + os.path.basename(deb)]
    t0 = time.monotonic()
    r = run_in_root(root, argv, binds=binds, env=APT_ENV, check=False)
    if r.returncode != 0 and ("404" in r.stdout + r.stderr or "Unable to fetch" in r.stderr):
        run_in_root(root, ["apt-get", "update", "-q"], env=APT_ENV, check=False)
        r = run_in_root(root, argv, binds=binds, env=APT_ENV, check=False)
    took = time.monotonic() - t0
    if r.returncode != 0:
        text = r.stdout + r.stderr
        if any(e in text for e in NET_ERRORS):
            raise Unavailable("apt cannot reach the Debian mirror: " + text.strip()[-300:])
        raise RuntimeError("apt-get install failed (%d):\n%s" % (r.returncode, text))
    return {"apt_s": took, "apt_output": r.stdout}


def _restrict():
    """Before exec: no new privileges, and no writable+executable memory where the kernel can
    refuse it (the unit's NoNewPrivileges= and MemoryDenyWriteExecute=)."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
    libc.prctl(PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN, 0, 0, 0)


def mdwe_supported():
    """Whether this kernel can refuse W+X memory per process (PR_SET_MDWE): checked in a child."""
    code = ("import ctypes,sys; l=ctypes.CDLL(None); "
            "sys.exit(0 if l.prctl(%d,%d,0,0,0)==0 else 1)" % (PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN))
    return subprocess.run([sys.executable, "-c", code]).returncode == 0


def start_in_root(root, argv, user=None, env=None, cwd="/", log=None, binds=()):
    """Starts argv inside root as user (with its groups, setpriv) under no-new-privileges and,
    where the kernel can, no W+X memory. Returns the Popen; stop it with stop_in_root."""
    if user:
        argv = ["setpriv", "--reuid=" + user, "--regid=" + user, "--init-groups", "--"] + argv
    return subprocess.Popen(root_argv(root, argv, binds, env, cwd), preexec_fn=_restrict,
                            stdout=log or subprocess.DEVNULL, stderr=subprocess.STDOUT)


def stop_in_root(proc, timeout=10.0):
    """SIGTERM to the command started by start_in_root (unshare's child: the exec chain ends in
    it), then its exit status; None if it did not stop within timeout (it is then killed)."""
    children = _children(proc.pid)
    for pid in children or [proc.pid]:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        for pid in _children(proc.pid) + [proc.pid]:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        proc.wait()
        return None


def _children(pid):
    try:
        with open("/proc/%d/task/%d/children" % (pid, pid)) as f:
            return [int(p) for p in f.read().split()]
    except OSError:
        return []
