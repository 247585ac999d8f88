#!/usr/bin/env python3
"""test_docker.py - what can be checked of docker/ without a Docker engine (label package):

Dockerfile: every COPY source exists in the build context (the repository); every repository
script a RUN calls was copied into that stage before it; the program the HEALTHCHECK runs is
installed by that stage's apt-get; the runtime stage installs the .deb the build stage wrote,
with apt; it runs as a non-root user with the database volume and both ports exposed.
compose.yaml: every file it mounts and its build context and Dockerfile exist; and, where a
compose client is installed (docker compose, docker-compose), `config` accepts the file.

Env: EI_TEST_SOURCE_DIR (the checkout).
"""
import os
import re
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.environ.get("EI_TEST_SOURCE_DIR") or os.path.normpath(os.path.join(HERE, "..", ".."))
DOCKER = os.path.join(SRC, "docker")
failures = []


def check(cond, msg):
    if not cond:
        failures.append(msg)


def instructions(path):
    """(instruction, arguments) of a Dockerfile, continuation lines joined."""
    out, cur = [], ""
    with open(path) as f:
        for line in f:
            line = line.rstrip("\n")
            if not cur and (not line.strip() or line.lstrip().startswith("#")):
                continue
            if line.endswith("\\"):
                cur += line[:-1] + " "
                continue
            cur += line
            word, _, rest = cur.strip().partition(" ")
            out.append((word.upper(), rest.strip()))
            cur = ""
    return out


def stages(instrs):
    """Each stage's instructions, in order."""
    out = []
    for ins in instrs:
        if ins[0] == "FROM":
            out.append([])
        out[-1].append(ins)
    return out


def check_dockerfile():
    st = stages(instructions(os.path.join(DOCKER, "Dockerfile")))
    check(len(st) == 2, "two stages (build, runtime), found %d" % len(st))
    build_out = None
    for i, stage in enumerate(st):
        copied, installed = [], set()
        for word, args in stage:
            if word == "COPY" and not args.startswith("--from"):
                for s in args.split()[:-1]:
                    check(os.path.exists(os.path.join(SRC, s)), "COPY source %s is missing" % s)
                    copied.append(s.rstrip("/"))
            if word == "RUN":
                for script in re.findall(r"(?:^|\s)((?:scripts|packaging)/\S+)", args):
                    check(any(script == c or script.startswith(c + "/") for c in copied),
                          "RUN calls %s before a COPY brings it into stage %d" % (script, i))
                m = re.search(r"apt-get install ([^&]*)", args)
                if m:
                    installed |= {w for w in m.group(1).split() if not w.startswith("-")}
                m = re.search(r"package\.sh .*--out (\S+)", args)
                if m:
                    build_out = m.group(1)
            if word == "HEALTHCHECK":
                prog = args.split(" CMD ", 1)[1].split()[0]
                check(prog in installed, "HEALTHCHECK runs %s, which the stage does not "
                      "install (it installs %s)" % (prog, sorted(installed)))
        if i == len(st) - 1:
            words = {w: a for w, a in stage}
            check(words.get("USER", "root").split(":")[0] not in ("root", "0"),
                  "the runtime stage runs as root")
            check("/var/lib/ei-relay" in words.get("VOLUME", ""), "no volume for the database")
            check(set(words.get("EXPOSE", "").split()) == {"4920", "4921"}, "EXPOSE 4920 4921")
            check("HEALTHCHECK" in words, "no HEALTHCHECK")
            froms = [a for w, a in stage if w == "COPY" and a.startswith("--from=build")]
            check(build_out is not None and any(build_out in a for a in froms),
                  "the runtime stage does not copy the build stage's %s" % build_out)
            check(any(re.search(r"ei-relay_\*\.deb", p) for p in installed),
                  "the runtime stage does not apt-get install the .deb")


def check_compose():
    path = os.path.join(DOCKER, "compose.yaml")
    with open(path) as f:
        text = f.read()
    for rel in re.findall(r"^\s*-\s*(\.{1,2}/[^:\s]+):", text, re.M):
        check(os.path.exists(os.path.join(DOCKER, rel)), "compose mounts %s, missing" % rel)
    ctx = re.search(r"^\s*context:\s*(\S+)", text, re.M)
    dockerfile = re.search(r"^\s*dockerfile:\s*(\S+)", text, re.M)
    check(ctx and dockerfile and os.path.exists(os.path.join(DOCKER, ctx.group(1),
                                                             dockerfile.group(1))),
          "compose's build context and Dockerfile")
    for cmd in (["docker", "compose"], ["docker-compose"]):
        if not shutil.which(cmd[0]) or subprocess.run(cmd + ["version"],
                                                        capture_output=True).returncode != 0:
            continue  # the docker CLI without its compose plugin, or no client at all
        r = subprocess.run(cmd + ["-f", path, "config", "-q"], capture_output=True, text=True)
        check(r.returncode == 0, "%s config: %s" % (" ".join(cmd), r.stderr.strip()))
        print("%s config: %s" % (" ".join(cmd), "ok" if r.returncode == 0 else "FAILED"))
        return
    print("no compose client here: compose.yaml checked by its file references only")


def main():
    check_dockerfile()
    check_compose()
    for f in failures:
        print("FAIL: " + f)
    print("PASS" if not failures else "%d failures" % len(failures))
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
