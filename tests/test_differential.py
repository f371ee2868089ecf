"""With epfinder on, importlib.metadata answers exactly as a plain scan does.

Each test builds directories in tmp_path, runs the probe in child interpreters with epfinder off
and on (a cold start that builds caches, then a start that reads them), and compares everything:
results, order, duplicates, exceptions and warnings.
"""

import os

import pytest

from epfinder import _cache
from helpers import EPS, assert_same_as_plain, dist_info, opt_in, unpack_corpus, write_tree, zip_and_egg_entries


def test_simple_tree(tmp_path):
    site = write_tree(tmp_path / "site", {
        **dist_info("alpha", "1.0", EPS),
        **dist_info("beta", "2.0", "[console_scripts]\nbeta = beta:main\n"),
        **dist_info("gamma", "0.1"),
    })
    opt_in(site)
    assert_same_as_plain(tmp_path, [site], names=["alpha", "Beta", "gamma", "missing"])


def test_an_invalid_entry_point_value_in_another_group(tmp_path):
    # CPython 3.15 (and importlib_metadata 8.7+) refuse to create such an EntryPoint: their
    # entry_points(group="console_scripts") raises ValueError for it, whatever group it is in.
    site = write_tree(tmp_path / "site", {
        **dist_info("alpha", "1.0", EPS),
        **dist_info("badvalue", "1.0", "[other]\nbad = not a valid value!\n"),
    })
    opt_in(site)
    assert_same_as_plain(tmp_path, [site], names=["alpha", "badvalue"])
    assert os.path.exists(_cache.in_directory_file(str(site)))


def test_names_case_and_separators(tmp_path):
    site = write_tree(tmp_path / "site", {
        **dist_info("Zope.Interface", "5.0", "[g]\nz = zope.interface:x\n"),
        **dist_info("my_pkg", "1.0", "[g]\na = my_pkg:a\n", dirname="My_Pkg-1.0.dist-info"),
        **dist_info("dash-name", "3.0", "[g]\nd = dash:d\n"),
        **dist_info("Upper", "1.0", "[g]\nu = up:u\n", dirname="UPPER-1.0.DIST-INFO"),
        **dist_info("mixed", "1.0", dirname="Mixed.Case__Name-1.0.dist-info"),
        # 3.15 lowers before it replaces separators, the backport and 3.14 after: 'σ_ς' or 'σ_σ'
        **dist_info("Σ.Σ", "1.0", "[g]\ns = sigma:s\n", dirname="Σ.Σ-1.0.dist-info"),
        **dist_info("σ_σ", "2.0", "[g]\ns = other:s\n"),
        **dist_info("noversion", "1", dirname="noversion.dist-info"),
    })
    opt_in(site)
    assert_same_as_plain(
        tmp_path, [site],
        names=["zope.interface", "ZOPE-INTERFACE", "zope_interface", "my-pkg", "MY.PKG", "dash_name",
               "upper", "mixed-case-name", "noversion", "Σ.Σ", "σ_ς", "σ_σ"],
    )


def test_duplicates_in_one_directory_and_across_directories(tmp_path):
    first = write_tree(tmp_path / "first", {
        **dist_info("dup", "1.0", "[g]\nx = first:x\n"),
        **dist_info("Dup", "0.9", "[g]\nx = first_old:x\n", dirname="Dup-0.9.dist-info"),
        **dist_info("only-first", "1.0", "[g]\nf = f:f\n"),
    })
    second = write_tree(tmp_path / "second", {
        **dist_info("dup", "2.0", "[g]\nx = second:x\ny = second:y\n"),
        **dist_info("only_second", "1.0", "[g]\ns = s:s\n"),
        **dist_info("only-first", "0.5", "[g]\nf = shadowed:f\n"),
    })
    opt_in(first, second)
    assert_same_as_plain(tmp_path, [first, second], names=["dup", "only-first", "only-second"])
    assert_same_as_plain(tmp_path, [second, first], names=["dup", "only-first", "only-second"])


def test_egg_info_directories_and_files(tmp_path):
    site = write_tree(tmp_path / "site", {
        "legacy-1.0-py3.11.egg-info/PKG-INFO": "Metadata-Version: 1.1\nName: legacy\nVersion: 1.0\n",
        "legacy-1.0-py3.11.egg-info/entry_points.txt": "[g]\nl = legacy:l\n",
        "legacy-1.0-py3.11.egg-info/requires.txt": "six\n\n[extra]\nmore\n",
        "legacy-1.0-py3.11.egg-info/SOURCES.txt": "legacy/__init__.py\n",
        "flat-2.0-py3.11.egg-info": "Metadata-Version: 1.1\nName: flat\nVersion: 2.0\n",
        **dist_info("modern", "1.0", "[g]\nm = modern:m\n"),
    })
    opt_in(site)
    assert_same_as_plain(tmp_path, [site], names=["legacy", "flat", "modern"])


def test_broken_metadata(tmp_path):
    site = write_tree(tmp_path / "site", {
        "nometa-1.0.dist-info/RECORD": "",
        "nometa-1.0.dist-info/entry_points.txt": "[g]\nn = nometa:n\n",
        **dist_info("emptyeps", "1.0", ""),
        **dist_info("commentseps", "1.0", "# only a comment\n\n"),
        **dist_info("badeps", "1.0", "[g]\nthis line has no equals sign\n"),
        **dist_info("noheader", "1.0", "orphan = before:section\n[g]\nok = ok:ok\n"),
        **dist_info("latin", "1.0", metadata=None),
        "latin-1.0.dist-info/entry_points.txt": "[g]\nl = latin:l\n".encode() + b"# \xff\n",
        **dist_info("folded", "1.0", metadata="Metadata-Version: 2.1\nName: folded\nVersion: 1.0\n"
                    "  continued\nSummary: x\n\nbody\n"),
        **dist_info("emptymeta", "1.0", metadata=""),
        "epsdir-1.0.dist-info/METADATA": "Name: epsdir\nVersion: 1.0\n",
        "epsdir-1.0.dist-info/entry_points.txt/inner": "x",
        **dist_info("spaces", "1.0", metadata="Metadata-Version: 2.1\nName:   spaces  \nVersion:\t1.0 \n"),
        **dist_info("fromline", "1.0", metadata="From someone\nName: fromline\nVersion: 1.0\n"),
        **dist_info("nover", "1.0", metadata="Metadata-Version: 2.1\nName: nover\n\nbody\n"),
        "-1.0.dist-info/METADATA": "Name: emptystem\nVersion: 1.0\n",
        "badstem-1.0.dist-info/METADATA": b"Name: badstem\nVersion: 1.0\n\n\xff\xfe",
    })
    opt_in(site)
    assert_same_as_plain(
        tmp_path, [site],
        names=["nometa", "emptyeps", "badeps", "noheader", "latin", "folded", "emptymeta", "epsdir",
               "spaces", "fromline", "nover", "emptystem", "badstem"],
    )


def test_unreadable_and_missing_paths(tmp_path):
    site = write_tree(tmp_path / "site", dist_info("alpha", "1.0", EPS))
    locked = write_tree(tmp_path / "locked", dist_info("hidden", "1.0", "[g]\nh = h:h\n"))
    opt_in(site)
    os.chmod(locked, 0)
    try:
        assert_same_as_plain(
            tmp_path, [tmp_path / "does-not-exist", site, locked, "", "relative/dir",
                       tmp_path / "site" / "alpha-1.0.dist-info" / "METADATA"],
            names=["alpha", "hidden"],
        )
    finally:
        os.chmod(locked, 0o755)


def test_current_directory_on_sys_path(tmp_path):
    cwd = write_tree(tmp_path / "work", dist_info("here", "1.0", "[g]\nh = here:h\n"))
    site = write_tree(tmp_path / "site", dist_info("here", "0.1", "[g]\nh = site:h\n"))
    opt_in(site)
    assert_same_as_plain(tmp_path, ["", site], names=["here"], cwd=cwd)


@pytest.mark.parametrize("mode", ["auto", "strict", "trust"])
def test_real_corpus(tmp_path, mode):
    site = unpack_corpus(tmp_path)
    opt_in(site)
    assert_same_as_plain(
        tmp_path, [site], names=["pytest", "Django", "jupyter-core", "zope.interface", "nope"],
        modes=(mode,),
    )


def test_same_directory_twice_and_through_a_symlink(tmp_path):
    site = write_tree(tmp_path / "site", {
        **dist_info("alpha", "1.0", EPS),
        **dist_info("beta", "2.0", "[console_scripts]\nbeta = beta:main\n"),
    })
    opt_in(site)
    os.symlink(site, tmp_path / "link")
    assert_same_as_plain(tmp_path, [site, tmp_path / "link", site], names=["alpha", "beta"])


@pytest.mark.parametrize("mode", ["auto", "strict", "trust", "only"])
def test_zip_and_egg_path_entries(tmp_path, mode):
    site = write_tree(tmp_path / "site", {
        **dist_info("alpha", "1.0", EPS),
        **dist_info("thing", "0.5", "[console_scripts]\nthing = old_thing:main\n"),  # shadowed by the egg
    })
    opt_in(site)
    entries = zip_and_egg_entries(tmp_path / "entries")
    paths = [*entries, site]
    if mode == "only":
        from helpers import probe

        probe(tmp_path, paths, "auto")  # "only" never scans: build the site's cache first
    assert_same_as_plain(tmp_path, paths, names=["zipped", "thing", "zegg", "alpha"], modes=(mode,))
