# paths.py - where the black-box tests find things, all inside this checkout: the repository
# root, the ei-relay binary under test and the fixtures (tests/fixtures, see its README).
# Environment (set by tests/CMakeLists.txt; each falls back to this checkout):
#   EI_TEST_SOURCE_DIR  repository root
#   EI_RELAY_BIN        path of the built binary (else build/ei-relay or build-bb/ei-relay)
#   EI_FIXTURES         fixtures directory (else <root>/tests/fixtures)
import os

HERE = os.path.dirname(os.path.abspath(__file__))


def source_dir():
    return os.environ.get("EI_TEST_SOURCE_DIR") or \
        os.path.abspath(os.path.join(HERE, "..", "..", ".."))


def relay_bin():
    b = os.environ.get("EI_RELAY_BIN")
    if not b:
        src = source_dir()
        for cand in ("build/ei-relay", "build-bb/ei-relay"):
            p = os.path.join(src, cand)
            if os.path.exists(p):
                return p
        raise RuntimeError("EI_RELAY_BIN is not set")
    return b


def fixtures_dir():
    return os.environ.get("EI_FIXTURES") or os.path.join(source_dir(), "tests", "fixtures")


def fixture_path(*parts):
    """A file of tests/fixtures: fixture_path("serial", "sdk-timing.txt")."""
    return os.path.join(fixtures_dir(), *parts)
