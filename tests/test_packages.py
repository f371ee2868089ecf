"""packages_distributions() from the side cache of top-level names: same answers, fewer reads.

Side files are written as soon as their directory's cache is.
"""

import json
import subprocess
import sys

import pytest

from helpers import EPFINDER_ROOT, assert_same_as_plain, child_env, dist_info, opt_in, unpack_corpus, write_tree

pytestmark = pytest.mark.slow

ODD = {
    # no top_level.txt: names inferred from RECORD (3.11+), nothing on 3.10
    **dist_info("inferred", "1.0", extra={"RECORD": "inferred_pkg/__init__.py,,\nsolo.py,,\n"
                                                    "inferred-1.0.dist-info/METADATA,,\n../../bin/tool,,\n"}),
    # declared, with blank lines and two names
    **dist_info("declared", "1.0", extra={"top_level.txt": "\nalpha\n\nbeta\n"}),
    # two distributions declaring the same package
    **dist_info("Twin", "1.0", extra={"top_level.txt": "shared\n"}),
    **dist_info("twin-fork", "2.0", extra={"top_level.txt": "shared\n"}),
    # metadata without a Name: the value appended is what metadata['Name'] gives
    **dist_info("nameless", "1.0", metadata="Metadata-Version: 2.1\nVersion: 1.0\n",
                extra={"top_level.txt": "nameless_pkg\n"}),
    # an egg-info file
    "legacy-1.0-py3.11.egg-info": "Metadata-Version: 1.1\nName: legacy\nVersion: 1.0\n",
}

COUNT = """
import json, sys, pathlib
sys.path[:0] = [{site!r}]
sys.path.append({root!r})
import epfinder
epfinder.enable("auto")
import importlib.metadata as md
reads = []
original = pathlib.Path.read_text
def counting(self, *args, **kwargs):
    if self.name in ("RECORD", "top_level.txt"):
        reads.append(self.name)
    return original(self, *args, **kwargs)
pathlib.Path.read_text = counting
try:
    answer = sorted(md.packages_distributions().items())
except Exception as exc:  # 3.15: KeyError for the nameless distribution, where 3.14 gave None
    answer = ["raise", type(exc).__name__, str(exc)]
print(json.dumps([answer, len(reads)]))
"""


def count_reads(tmp_path, site):
    proc = subprocess.run([sys.executable, "-S", "-c", COUNT.format(site=str(site), root=EPFINDER_ROOT)],
                          capture_output=True, text=True, env=child_env(tmp_path), timeout=300)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_side_file_answers_match_plain_for_the_corpus(tmp_path):
    site = unpack_corpus(tmp_path / "corpus")
    write_tree(site, ODD)
    opt_in(site)
    assert_same_as_plain(tmp_path, [site], names=["inferred", "twin"])
    assert list((site / ".epfinder-cache").glob("top-level-*.json")), "the side file was written"
    assert_same_as_plain(tmp_path, [site], names=["inferred"])  # now served from it


def test_the_side_file_spares_every_record_read_and_follows_changes(tmp_path):
    site = write_tree(tmp_path / "site", ODD)
    opt_in(site)
    first, reads = count_reads(tmp_path, site)
    assert reads > 0
    second, reads = count_reads(tmp_path, site)
    assert (second, reads) == (first, 0)

    write_tree(site, dist_info("newcomer", "1.0", extra={"top_level.txt": "newcomer_pkg\n"}))
    third, reads = count_reads(tmp_path, site)
    assert reads > 0
    if first[0] == "raise":  # 3.15: metadata['Name'] of the nameless one raises KeyError
        assert third == first
    else:
        assert ["newcomer_pkg", ["newcomer"]] in third
    count_reads(tmp_path, site)
    assert count_reads(tmp_path, site) == [third, 0]


def test_uninstall_removes_side_files(tmp_path):
    from epfinder import _cache

    site = write_tree(tmp_path / "site", ODD)
    opt_in(site)
    count_reads(tmp_path, site)
    removed = _cache.discard(str(site))
    assert any("top-level-" in f for f in removed)
    assert list((site / ".epfinder-cache").iterdir()) == []
