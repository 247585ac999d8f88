#!/usr/bin/env python3
"""debroot.py - Debian 12 roots made with mmdebstrap from Debian's mirrors, cached as tarballs, and
commands run inside them. The packaging uses them as cross-build roots (scripts/package.sh arm64,
armhf) and the tests as clean machines (tests/install/chroot.py: the install test, the Greengrass
fake-nucleus tests).

A root is named by what it holds (variant, architectures, packages): its tarball
<cache>/debian12-<variant>-<hash>.tar is made once and reused, so a rerun downloads nothing.
Every use extracts a fresh copy. Commands run in their own mount namespace (unshare), with
/proc, /dev and any bind mounts the caller asks for, so nothing stays mounted when they end.
Root only (mmdebstrap's root mode, chroot, mount).

CLI (for shell scripts):
  debroot.py tarball CACHE_DIR VARIANT ARCHS PKGS...   prints the tarball (made when missing)
  debroot.py extract TARBALL DEST                      a fresh root at DEST
  debroot.py run ROOT [--bind SRC:DST]... [--env K=V]... -- CMD...
"""
import hashlib
import os
import shutil
import subprocess
import sys
import time

SUITE = "bookworm"
MIRRORS = [
    "deb http://deb.debian.org/debian bookworm main",
    "deb http://deb.debian.org/debian bookworm-updates main",
    "deb http://deb.debian.org/debian-security bookworm-security main",
]
# the PATH a Debian root's commands expect (the caller's may name directories it lacks)
ROOT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class RootUnavailable(Exception):
    """No root can be made here: not root, no mmdebstrap, or the mirror cannot be reached."""


def _log(msg):
    print("debroot: " + msg, file=sys.stderr, flush=True)


def tarball(cache_dir, variant="minbase", archs=("amd64",), include=()):
    """The cached tarball of a root with these packages (made when missing): its path."""
    if os.geteuid() != 0:
        raise RootUnavailable("building a Debian root needs root")
    if not shutil.which("mmdebstrap"):
        raise RootUnavailable("mmdebstrap is not installed (scripts/deps.sh test)")
    key = "\n".join([SUITE, variant, ",".join(archs)] + MIRRORS + sorted(include))
    name = "debian12-%s-%s.tar" % (variant, hashlib.sha256(key.encode()).hexdigest()[:12])
    path = os.path.join(cache_dir, name)
    if os.path.exists(path):
        return path
    os.makedirs(cache_dir, exist_ok=True)
    tmp = path[:-len(".tar")] + ".part.tar"
    cmd = ["mmdebstrap", "--quiet", "--format=tar", "--variant=" + variant, "--architectures=" + ",".join(archs)]
    if include:
        cmd.append("--include=" + ",".join(include))
    # keep the package lists: installing into the root later needs them
    cmd += ["--skip=cleanup/apt/lists", SUITE, tmp] + MIRRORS
    _log("making %s (%s; %s)" % (name, variant, " ".join(include) or "no extra packages"))
    t0 = time.monotonic()
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if r.returncode != 0:
        if os.path.exists(tmp):
            os.unlink(tmp)
        out = r.stdout.strip()
        if "Could not resolve" in out or "Failed to fetch" in out or "Temporary failure" in out:
            raise RootUnavailable("cannot reach the Debian mirror: " + out.splitlines()[-1])
        raise RuntimeError("mmdebstrap failed (%d):\n%s" % (r.returncode, out))
    os.rename(tmp, path)
    _log("made %s in %.0f s" % (name, time.monotonic() - t0))
    return path


def extract(tar_path, dest):
    """A fresh root at dest from the tarball (whatever was at dest is removed)."""
    if os.path.exists(dest):
        shutil.rmtree(dest)
    os.makedirs(dest)
    subprocess.run(["tar", "-C", dest, "-xf", tar_path], check=True)
    # name resolution for apt inside the root
    shutil.copyfile("/etc/resolv.conf", os.path.join(dest, "etc/resolv.conf"), follow_symlinks=True)
    return dest


def root_argv(root, argv, binds=(), env=None, cwd="/"):
    """The argv that runs argv inside root: a private mount namespace with /proc, /dev and the
    binds (pairs of host path, path in the root), then chroot with a clean environment."""
    mounts = ["mount -t proc proc %s/proc" % _q(root), "mount --rbind /dev %s/dev" % _q(root)]
    for src, dst in binds:
        target = os.path.join(root, dst.lstrip("/"))
        mounts.append("mkdir -p %s && mount --bind %s %s" % (_q(target), _q(src), _q(target)))
    full_env = {"PATH": ROOT_PATH, "HOME": "/", "LANG": "C.UTF-8"}
    full_env.update(env or {})
    envs = " ".join(_q("%s=%s" % kv) for kv in sorted(full_env.items()))
    script = "%s && exec chroot %s /usr/bin/env -i %s sh -c 'cd \"$0\" && exec \"$@\"' %s %s" % (
        " && ".join(mounts), _q(root), envs, _q(cwd), " ".join(_q(a) for a in argv))
    return ["unshare", "--mount", "--propagation", "private", "--fork", "sh", "-c", script]


def run_in_root(root, argv, binds=(), env=None, cwd="/", check=True, **kw):
    """Runs argv inside root (see root_argv) like subprocess.run; returns its CompletedProcess."""
    r = subprocess.run(root_argv(root, argv, binds, env, cwd), **kw)
    if check and r.returncode != 0:
        raise subprocess.CalledProcessError(r.returncode, argv, r.stdout, r.stderr)
    return r


def _q(s):
    return "'" + str(s).replace("'", "'\\''") + "'"


def main(argv):
    if len(argv) >= 5 and argv[1] == "tarball":
        archs = tuple(argv[4].split(","))
        print(tarball(argv[2], argv[3], archs, argv[5:]))
    elif len(argv) == 4 and argv[1] == "extract":
        extract(argv[2], argv[3])
    elif len(argv) >= 4 and argv[1] == "run" and "--" in argv:
        sep = argv.index("--")
        opts, cmd = argv[3:sep], argv[sep + 1:]
        binds, env = [], {}
        for flag, val in zip(opts[::2], opts[1::2]):
            if flag == "--bind":
                binds.append(tuple(val.split(":", 1)))
            elif flag == "--env":
                k, _, v = val.partition("=")
                env[k] = v
        return run_in_root(argv[2], cmd, binds, env, check=False).returncode
    else:
        sys.exit(__doc__)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv))
    except RootUnavailable as e:
        print("debroot: " + str(e), file=sys.stderr)
        sys.exit(77)
