#!/usr/bin/env python3
"""build_dist.py - CTest's fixture test package.dist (FIXTURES_SETUP ei_dist): builds this run's
release once, scripts/package.sh for the host's architecture with the Greengrass components,
into <build>/install/dist (its build trees in <build>/install/pkg), for the two tests that
install it: install.clean_root (tests/install/test_install.py) and greengrass.fake_nucleus
(tests/greengrass/test_fake_nucleus.py). CTest runs it before either of them (also for
`ctest -R` of one) and hands them EI_DIST_PREBUILT=1; run by hand, each builds its own.

Root only, like both tests (skipped otherwise, exit 77: they skip too).
Env: EI_TEST_SOURCE_DIR (the checkout), EI_INSTALL_DIR (the work directory of both tests).
"""
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import chroot  # noqa: E402

SRC = os.environ.get("EI_TEST_SOURCE_DIR") or os.path.normpath(os.path.join(HERE, "..", ".."))
WORK = os.environ.get("EI_INSTALL_DIR") or os.path.join(SRC, "build", "install")


def main():
    if os.geteuid() != 0:
        print("SKIP: the tests that install the package need root")
        return 77
    os.makedirs(WORK, exist_ok=True)
    t0 = time.monotonic()
    out, arch = chroot.build_dist(SRC, WORK, recipes=True)
    deb = os.path.join(out, "ei-relay_%s_%s.deb" % (chroot.project_version(SRC), arch))
    recipes = os.path.join(out, "greengrass", "recipes")
    if not os.path.isfile(deb) or not os.path.isdir(recipes) or not os.listdir(recipes):
        print("FAIL: scripts/package.sh made no %s or no components in %s" % (deb, recipes))
        return 1
    print("package and components built in %.1f s: %s" % (time.monotonic() - t0, out))
    print("PASS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
