#!/usr/bin/env python3
# test_build_recipes.py - recipes/build.sh on stand-in packages (files named as scripts/package.sh
# names them): the layout greengrass-cli, ggl-cli and the bucket take, the recipes stamped with
# another version and a bucket (and still passing the recipe check), and its refusals (no
# package, packages of two versions, a bad bucket name); the three components that are ei-relay
# each carry the packages. Python 3 + PyYAML.
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "check"))
import check_recipes as C  # noqa: E402
import checklib  # noqa: E402
import nucleus as N  # noqa: E402

ROOT = os.path.realpath(os.path.join(HERE, "..", ".."))
BUILD = os.path.join(ROOT, "recipes", "build.sh")
T = checklib.SelfTest()
# The components that are ei-relay (each carries its packages under its own name).
PACKAGE_CARRIERS = ["EdgeImpulseInferenceRelay", "EdgeImpulseLinuxRunnerServiceComponent",
                    "EdgeImpulseSerialRunnerServiceComponent"]


def dist_with(d, version, arches):
    os.makedirs(d)
    for a in arches:
        with open(os.path.join(d, "ei-relay_%s_%s.deb" % (version, a)), "wb") as f:
            f.write(b"stand-in package %s %s\n" % (version.encode(), a.encode()))
    return d


def build(d, *extra):
    p = subprocess.run(["bash", BUILD, d] + list(extra), stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, text=True)
    return p.returncode, p.stdout


def main():
    base = tempfile.mkdtemp(prefix="ei-build-recipes-")
    try:
        names = sorted(f[:-len("-0.1.0.yaml")] for f in os.listdir(os.path.join(ROOT, "recipes"))
                       if f.endswith(".yaml"))
        # Another version than the recipes' and a bucket: everything follows.
        d = dist_with(os.path.join(base, "d1"), "0.7.3", N.DEB_ARCH.values())
        rc, out = build(d, "--bucket", "fleet-artifacts")
        T.expect(rc == 0, "build.sh succeeds (%s)" % out.strip()[-400:])
        out_dir = os.path.join(d, "greengrass", "recipes")
        T.expect(sorted(os.listdir(out_dir)) == ["%s-0.7.3.yaml" % n for n in names],
                 "one stamped recipe per component, named Name-0.7.3.yaml")
        found = C.scan(out_dir, C.argparse.Namespace(project_version="0.7.3", settings=None))
        T.expect(found == [], "the stamped recipes pass the recipe check (%s)" % found)
        for n in names:
            text, doc = N.load(os.path.join(out_dir, "%s-0.7.3.yaml" % n))
            T.expect("0.1.0" not in text, "%s: no 0.1.0 left" % n)
            for m in doc["Manifests"]:
                for a in m.get("Artifacts") or []:
                    uri = a["Uri"]
                    T.expect(uri.startswith("s3://fleet-artifacts/artifacts/%s/0.7.3/" % n),
                             "%s: %s in the bucket under artifacts/Name/0.7.3/" % (n, uri))
                    local = os.path.join(d, "greengrass", "artifacts", n, "0.7.3",
                                         uri.rsplit("/", 1)[1])
                    T.expect(os.path.isfile(local), "%s: artifact laid out at %s" % (n, local))
        carriers = sorted(n for n in os.listdir(os.path.join(d, "greengrass", "artifacts"))
                          if sorted(os.listdir(os.path.join(d, "greengrass", "artifacts", n,
                                                            "0.7.3"))) ==
                          ["ei-relay_0.7.3_%s.deb" % a for a in sorted(N.DEB_ARCH.values())])
        T.expect(carriers == PACKAGE_CARRIERS, "the components running ei-relay carry its three "
                 "packages (%s)" % carriers)
        # Only the host's package: still written, the others named as missing.
        d = dist_with(os.path.join(base, "d2"), "0.1.0", ["amd64"])
        rc, out = build(d)
        T.expect(rc == 0 and "ei-relay_0.1.0_armhf.deb" in out,
                 "one architecture: built, the missing packages named (%s)" % out.strip()[-300:])
        text, _ = N.load(os.path.join(d, "greengrass", "recipes",
                                      "EdgeImpulseInferenceRelay-0.1.0.yaml"))
        T.expect("s3://YOUR-BUCKET/" in text, "without --bucket the placeholder stays")
        # Refusals.
        rc, out = build(dist_with(os.path.join(base, "d3"), "0.1.0", []))
        T.expect(rc != 0 and "no ei-relay_" in out, "no package: refused (%s)" % out.strip())
        d = dist_with(os.path.join(base, "d4"), "0.1.0", ["amd64"])
        dist_with(os.path.join(base, "d4x"), "0.2.0", ["arm64"])
        shutil.copy(os.path.join(base, "d4x", "ei-relay_0.2.0_arm64.deb"), d)
        rc, out = build(d)
        T.expect(rc != 0 and "two versions" in out, "two versions: refused (%s)" % out.strip())
        rc, out = build(dist_with(os.path.join(base, "d5"), "0.1.0", ["amd64"]), "--bucket",
                        "Bad_Bucket")
        T.expect(rc != 0 and "bucket" in out, "a bad bucket name: refused (%s)" % out.strip())
    finally:
        shutil.rmtree(base, ignore_errors=True)
    return T.finish()


if __name__ == "__main__":
    sys.exit(main())
