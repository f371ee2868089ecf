"""epfinder.entry_points() and epfinder.version(): the answers of importlib.metadata, without it.

Each test runs one child with epfinder's application API and one with importlib.metadata on the
same sys.path, and compares every field a caller can read.
"""

import json
import subprocess
import sys

import pytest

import epfinder
from helpers import EPFINDER_ROOT, EPS, child_env, dist_info, opt_in, unpack_corpus, write_tree, zip_and_egg_entries

ASK = """
import json, sys
sys.path[:0] = {paths!r}
sys.path.append({root!r})
LIB = {lib!r}
if LIB == "epfinder":
    import epfinder as api
    def eps(**params):
        return api.entry_points(**params)
else:
    import importlib.metadata as api
    def eps(**params):
        result = api.entry_points(**params)
        if isinstance(result, dict):  # 3.10 and 3.11 without params: SelectableGroups
            return [ep for group in result.values() for ep in group]
        return result
def describe(ep):
    return [ep.name, ep.value, ep.group, ep.module, ep.attr, list(ep.extras), ep.dist.name, ep.dist.version]
def record(fn):
    try:
        return ["ok", fn()]
    except Exception as exc:
        return ["raise", type(exc).__name__, str(exc)]
out = {{"all": record(lambda: [describe(e) for e in eps()])}}
for group in {groups!r}:
    out["group " + group] = record(lambda: [describe(e) for e in eps(group=group)])
for name in {names!r}:
    out["name " + name] = record(lambda: [describe(e) for e in eps(name=name)])
    out["version " + name] = record(lambda: api.version(name))
heavy = sorted(m for m in ("importlib.metadata", "email", "zipfile") if m in sys.modules)
print(json.dumps([out, heavy]))
"""


def ask(tmp_path, paths, lib, groups, names, cwd=None):
    code = ASK.format(paths=[str(p) for p in paths], root=EPFINDER_ROOT, lib=lib,
                      groups=list(groups), names=list(names))
    proc = subprocess.run([sys.executable, "-S", "-c", code], capture_output=True, text=True,
                          env=child_env(tmp_path), cwd=cwd or tmp_path, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def assert_same(tmp_path, paths, groups, names, cwd=None, expect_light=True):
    expected, _ = ask(tmp_path, paths, "importlib", groups, names, cwd)
    for attempt in ("cold", "warm"):
        answers, heavy = ask(tmp_path, paths, "epfinder", groups, names, cwd)
        assert answers == expected, attempt
    if expect_light:
        assert heavy == [], "fresh caches: nothing of importlib.metadata, email or zipfile"
    return expected, heavy


def test_same_entry_points_and_versions(tmp_path):
    first = write_tree(tmp_path / "first", {
        **dist_info("alpha", "1.0", EPS),
        **dist_info("Dup", "1.0", "[g]\nx = first:x\n"),
        "legacy-1.0-py3.11.egg-info": "Metadata-Version: 1.1\nName: legacy\nVersion: 1.0\n",
    })
    second = write_tree(tmp_path / "second", {
        **dist_info("dup", "2.0", "[g]\nx = second:x\ny = second.mod:Y.z [extra1, extra2]\n"),
        **dist_info("beta", "1.0", "[console_scripts]\nbeta = beta:main\n"),
    })
    opt_in(first, second)
    expected, _ = assert_same(tmp_path, [first, second], ["console_scripts", "g", "alpha.plugins", "none"],
                              ["alpha", "Dup", "dup", "beta", "legacy"])
    assert expected["version dup"] == ["ok", "1.0"], "the first of a name on sys.path"
    # A name nobody installed raises importlib.metadata's own PackageNotFoundError, which callers catch.
    expected, _ = assert_same(tmp_path, [first, second], [], ["missing", "x"], expect_light=False)
    assert expected["version missing"][:2] == ["raise", "PackageNotFoundError"]


def test_the_real_corpus(tmp_path):
    site = unpack_corpus(tmp_path / "corpus")
    opt_in(site)
    assert_same(tmp_path, [site], ["console_scripts", "pytest11", "flake8.extension", "sphinx.builders"],
                ["pytest", "Sphinx", "pluggy", "Django", "build"])


def test_what_the_caches_cannot_answer_comes_from_importlib_metadata(tmp_path):
    # A *.dist-info in the current directory, a zip and an egg on sys.path, and a distribution
    # whose entry points only the plain code can read.
    site = write_tree(tmp_path / "site", {
        **dist_info("alpha", "1.0", EPS),
        **dist_info("odd", "1.0", "[g]\nno equals sign\n"),
    })
    opt_in(site)
    here = write_tree(tmp_path / "here", dist_info("local", "1.0", "[g]\nl = local:l\n"))
    entries = zip_and_egg_entries(tmp_path / "entries")
    for paths, cwd in (([site], here), ([*entries, site], None)):
        expected, heavy = assert_same(tmp_path, [""] + [str(p) for p in paths], ["console_scripts"],
                                      ["alpha", "local", "zipped", "thing"], cwd=cwd, expect_light=False)
        assert "importlib.metadata" in heavy
    expected, _ = assert_same(tmp_path, [site], ["g"], ["odd"], expect_light=False)
    assert expected["group g"][0] == "raise", "a malformed file raises as importlib.metadata does"


def test_load_and_repr(tmp_path):
    site = write_tree(tmp_path / "site", {
        **dist_info("plug", "1.0", "[g]\nfn = plugmod:outer.inner\nmod = plugmod\n"),
        "plugmod.py": "class outer:\n    inner = 42\n",
    })
    opt_in(site)
    code = (f"import sys; sys.path[:0] = [{str(site)!r}]; sys.path.append({EPFINDER_ROOT!r})\n"
            "import epfinder\n"
            "fn, mod = epfinder.entry_points(group='g')\n"
            "print(fn.load(), mod.load().__name__, repr(fn), fn.dist, fn == fn, len({fn, mod}))\n")
    out = subprocess.run([sys.executable, "-S", "-c", code], capture_output=True, text=True,
                         env=child_env(tmp_path), timeout=60)
    assert out.stdout.split("\n")[0] == ("42 plugmod EntryPoint(name='fn', value='plugmod:outer.inner', group='g') "
                                         "<Distribution plug==1.0> True 2")


@pytest.mark.parametrize("attr", ["__version__"])
def test_version_attribute_does_not_import_importlib_metadata(attr):
    import epfinder

    assert isinstance(getattr(epfinder, attr), str)


@pytest.mark.parametrize("name", ["", None, 3])
def test_version_of_a_bad_name_raises_as_importlib_metadata_does(name):
    import importlib.metadata as md

    def outcome(fn):
        try:
            return ["ok", fn(name)]
        except Exception as exc:
            return [type(exc).__name__, str(exc)]

    assert outcome(epfinder.version) == outcome(md.version)
