"""With the importlib_metadata backport imported, before or after epfinder is enabled, both the
backport's callers and the stdlib's get exactly what a plain scan with the same imports gives.

The trees include a zip with a *.dist-info inside, an *.egg directory and an *.egg zip; the last
test checks that the backport is served from the caches rather than scanning.
"""

import subprocess
import sys

import pytest

from helpers import EPS, assert_same_as_plain, dist_info, opt_in, write_tree, zip_and_egg_entries

pytestmark = pytest.mark.slow

# One of each major line that supports Python 3.10 and later; 9.1 and later need 3.11.
# 8.7 and 9.0 check entry-point values when an EntryPoint is made.
VERSIONS = ["6.11.0", "8.7.0", "9.0.0", *(["10.2.0"] if sys.version_info >= (3, 11) else [])]


@pytest.fixture(scope="module", params=VERSIONS)
def backport(request, tmp_path_factory):
    target = tmp_path_factory.mktemp(f"importlib_metadata-{request.param}")
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check",
         "--target", str(target), f"importlib_metadata=={request.param}"],
        check=True, timeout=600, capture_output=True,
    )
    return target


@pytest.mark.parametrize("when", ["before", "after"])
@pytest.mark.parametrize("library", ["backport", "stdlib"])
def test_same_answers_with_the_backport(tmp_path, backport, when, library):
    first = write_tree(tmp_path / "first", {
        **dist_info("alpha", "1.0", EPS),
        **dist_info("Dup", "1.0", "[g]\nx = first:x\n"),
        **dist_info("badeps", "1.0", "[g]\nno equals sign\n"),
        **dist_info("badvalue", "1.0", "[other]\nbad = not a valid value!\n"),
        "legacy-1.0-py3.11.egg-info": "Metadata-Version: 1.1\nName: legacy\nVersion: 1.0\n",
    })
    second = write_tree(tmp_path / "second", {
        **dist_info("dup", "2.0", "[g]\nx = second:x\n"),
        **dist_info("beta", "1.0", "[console_scripts]\nbeta = beta:main\n"),
    })
    opt_in(first, second)
    entries = zip_and_egg_entries(tmp_path / "entries")
    assert_same_as_plain(
        tmp_path, [first, *entries, second],
        names=["alpha", "dup", "beta", "badeps", "legacy", "missing", "zipped", "thing", "zegg"],
        backport=when, library=library, append=[backport],
    )


SERVED = """
import json, sys
sys.path[:0] = {paths!r}
sys.path.append({root!r})
if {before!r}:
    import importlib_metadata
import epfinder
epfinder.enable("auto")
import importlib_metadata
import importlib.metadata as stdlib
scans = []
original = importlib_metadata.FastPath.search
def counting(self, prepared):
    scans.append(self.root)
    return original(self, prepared)
importlib_metadata.FastPath.search = counting
site = {paths!r}[0]
def kind(d):
    # A served distribution holds a cache record, and names the class it stands for.
    return ("served " if "_epfinder_record" in vars(d) else "plain ") + type(d).__module__ + "." + type(d).__qualname__
out = {{
    "backport types": sorted({{kind(d) for d in importlib_metadata.distributions(path=[site])}}),
    "stdlib sees": sorted({{kind(d) for d in stdlib.distributions(path=[site])}}),
    # (epfinder's own directory is on sys.path too: a venv's site-packages when installed)
    "backport eps": sorted(ep.name for ep in importlib_metadata.entry_points(group="console_scripts")
                           if ep.name in ("alpha", "beta")),
    "stdlib eps": sorted(ep.name for ep in stdlib.entry_points(group="console_scripts")
                         if ep.name in ("alpha", "beta")),
    "version": importlib_metadata.version("alpha"),
    "distribution": kind(importlib_metadata.distribution("alpha")),
}}
out["scanned"] = sorted(set(p for p in scans if p == site))
epfinder.disable()
out["after disable"] = sorted({{kind(d) for d in importlib_metadata.distributions(path=[site])}})
print(json.dumps(out))
"""


@pytest.mark.parametrize("before", [True, False])
def test_the_backport_is_served_from_the_caches(tmp_path, backport, before):
    import json

    from helpers import EPFINDER_ROOT, child_env

    site = write_tree(tmp_path / "site", {
        **dist_info("alpha", "1.0", "[console_scripts]\nalpha = alpha:main\n"),
        **dist_info("beta", "2.0", "[console_scripts]\nbeta = beta:main\n"),
    })
    opt_in(site)
    code = SERVED.format(paths=[str(site), str(backport)], root=EPFINDER_ROOT, before=before)
    for _ in range(2):  # the first run builds the cache
        proc = subprocess.run([sys.executable, "-S", "-c", code], capture_output=True, text=True,
                              env=child_env(tmp_path), timeout=120)
        assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out == {
        "backport types": ["served importlib_metadata.PathDistribution"],
        "stdlib sees": ["served importlib_metadata.PathDistribution"],
        "backport eps": ["alpha", "beta"],
        "stdlib eps": ["alpha", "beta"],
        "version": "1.0",
        "distribution": "served importlib_metadata.PathDistribution",
        "scanned": [],
        "after disable": ["plain importlib_metadata.PathDistribution"],
    }
