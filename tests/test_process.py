"""What epfinder does to a process: importing it is cheap, enabling it puts the fast paths in
place on every supported Python, and disabling it leaves the process as it was."""

import json
import subprocess
import sys
import time

import pytest

from epfinder import _cache
from helpers import EPFINDER_ROOT, dist_info, write_tree


def child(code, *args):
    proc = subprocess.run(
        [sys.executable, "-S", "-c", f"import sys; sys.path.append({EPFINDER_ROOT!r})\n" + code, *args],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


HEAVY = ["importlib.metadata", "json", "re", "email", "zipfile", "pathlib", "threading"]


@pytest.mark.parametrize("statement", ["import epfinder", "import epfinder; epfinder.enable()"])
def test_import_and_enable_stay_cheap(statement):
    loaded = child(
        f"before = set(sys.modules)\n{statement}\n"
        "loaded = sorted(set(sys.modules) - before)\n"
        "import json as _j; print(_j.dumps(loaded))"
    )
    assert not [m for m in loaded if m in HEAVY], loaded


def test_enable_puts_the_fast_paths_in_place():
    state = child(
        "import epfinder; epfinder.enable()\n"
        "import importlib.metadata as md, importlib.machinery as m, json\n"
        "import _epfinder_boot as _boot\n"
        "print(json.dumps([m.PathFinder.find_distributions is _boot.find_distributions,"
        " hasattr(md.entry_points, '__wrapped__')]))"
    )
    assert state == [True, True], "served path finder, and entry_points() answered from the index"


def test_enable_after_importlib_metadata_was_imported():
    state = child(
        "import importlib.metadata as md, json\n"
        "import epfinder; epfinder.enable()\n"
        "print(json.dumps(hasattr(md.entry_points, '__wrapped__')))"
    )
    assert state is True


def test_disable_leaves_the_process_as_it_was():
    state = child(
        "import importlib.machinery as m, importlib.metadata as md, json\n"
        "before = (m.PathFinder.__dict__['find_distributions'], list(sys.meta_path), md.entry_points)\n"
        "import epfinder\n"
        "epfinder.enable(); epfinder.enable('strict'); epfinder.disable()\n"
        "after = (m.PathFinder.__dict__['find_distributions'], list(sys.meta_path), md.entry_points)\n"
        "print(json.dumps([before[0] is after[0], before[1] == after[1], before[2] is after[2],"
        " epfinder.current_mode()]))"
    )
    assert state == [True, True, True, None]


def test_exit_handlers_get_the_same_answers_and_epfinder_is_out_before_teardown(tmp_path):
    # epfinder takes itself out in an exit handler (the teardown of a process whose PathFinder
    # holds its functions costs millions of instructions more). Handlers the program registered
    # after enable() run before that one and are served; those registered before run after it
    # and get plain answers: the same answers either way, and nothing printed.
    write_tree(tmp_path, {**dist_info("alpha", "1.0", "[console_scripts]\nalpha = alpha:main\n"),
                          **dist_info("beta", "2.0", "[console_scripts]\nbeta = beta:main\n")})
    proc = subprocess.run([sys.executable, "-S", "-c", f"import sys; sys.path += [{EPFINDER_ROOT!r}, {str(tmp_path)!r}]\n" + (
        "import atexit, json, importlib.metadata as md, importlib.machinery as m\n"
        "import _epfinder_boot as boot\n"
        "def state(when):\n"
        "    print(json.dumps([when, boot.mode, m.PathFinder.find_distributions is boot.find_distributions,"
        " sorted((d.metadata['Name'], d.version) for d in md.distributions()),"
        " sorted(e.value for e in md.entry_points(group='console_scripts'))]))\n"
        "atexit.register(state, 'registered before enable()')\n"
        "import epfinder; epfinder.enable()\n"
        "atexit.register(state, 'registered after enable()')\n"
        "state('running')\n"
    )], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [line[:3] for line in lines] == [
        ["running", "auto", True], ["registered after enable()", "auto", True],
        ["registered before enable()", None, False]]
    assert lines[0][3:] == lines[1][3:] == lines[2][3:]
    assert ["alpha", "1.0"] in lines[0][3] and {"alpha:main", "beta:main"} <= set(lines[0][4])


@pytest.mark.parametrize("mode", ["bogus", "", "AUTO"])
def test_unknown_mode_is_a_clear_error(mode):
    import epfinder
    from epfinder import EpfinderError

    with pytest.raises(EpfinderError, match="unknown epfinder mode") as info:
        epfinder.enable(mode or "none")
    assert isinstance(info.value, ValueError)
    assert epfinder.current_mode() is None


# --- what a caller sees: exceptions, reprs, descriptors ---------------------------------------------

SEEN = """
import importlib.metadata as md, json, os, re, sys, tempfile
root = tempfile.mkdtemp()
site = os.path.join(root, "site")
os.makedirs(os.path.join(site, ".epfinder-cache"))
for name, eps in (("good", "[g]\\nx = good:x\\n"), ("broken", "[g]\\nno equals sign\\n")):
    os.makedirs(os.path.join(site, f"{name}-1.0.dist-info"))
    with open(os.path.join(site, f"{name}-1.0.dist-info", "METADATA"), "w") as f:
        f.write(f"Metadata-Version: 2.1\\nName: {name}\\nVersion: 1.0\\n")
    with open(os.path.join(site, f"{name}-1.0.dist-info", "entry_points.txt"), "w") as f:
        f.write(eps)
sys.path.insert(0, site)
if sys.argv[1] == "on":
    import epfinder
    epfinder.enable("auto")
fds = sorted(os.listdir("/proc/self/fd"))
out = {}
for attempt in ("cold", "warm"):
    try:
        md.entry_points(group="g")
        out[attempt] = "no exception"
    except Exception as exc:
        out[attempt] = [type(exc).__name__, exc.__context__ is None, exc.__cause__ is None,
                        exc.__suppress_context__]
dist = md.distribution("good")
out["repr"] = re.sub(r"0x[0-9a-f]+", "ADDR", repr(dist))
out["type"] = [type(dist).__module__, type(dist).__qualname__, type(dist).__name__]
out["descriptors"] = sorted(os.listdir("/proc/self/fd")) == fds
print(json.dumps(out))
"""


def test_a_caller_sees_what_it_sees_without_epfinder():
    # The plain exception, nothing chained to it; the plain class name and repr; no descriptor
    # left open by a query.
    on, off = child(SEEN, "on"), child(SEEN, "off")
    assert on == off
    assert on["repr"].startswith("<importlib.metadata.PathDistribution object at ADDR>")
    assert on["descriptors"] is True


VERSION = """
import importlib.metadata as md, json, os, sys, tempfile
site = tempfile.mkdtemp()
os.makedirs(os.path.join(site, "good-1.0.dist-info"))
with open(os.path.join(site, "good-1.0.dist-info", "METADATA"), "w") as f:
    f.write("Metadata-Version: 2.1\\nName: good\\nVersion: 1.0\\n")
sys.path.insert(0, site)
import epfinder
epfinder.enable("auto")
answers = [md.version("good"), md.distribution("good").version]
print(json.dumps([answers, "email.feedparser" in sys.modules]))
"""


def test_version_and_distribution_parse_no_metadata_file():
    # CPython 3.15's Distribution.from_name reads `metadata` to prefer distributions that have
    # one (_prefer_valid); a cached distribution whose name is known needs no such read.
    answers, parsed = child(VERSION)
    assert answers == ["1.0", "1.0"]
    assert parsed is False


QUERIES = {
    "importlib.metadata": (
        "import epfinder; epfinder.enable()\n"
        "import importlib.metadata as md\n"
        "before = set(sys.modules)\n"
        "answers = [md.version('beta'), sorted(e.name for e in md.entry_points(group='console_scripts'))]\n",
        ["epfinder._cache"]),  # `import epfinder` above loaded the package
    "the application API": (
        "before = set(sys.modules)\n"
        "import epfinder\n"
        "answers = [epfinder.version('beta'), sorted(e.name for e in epfinder.entry_points(group='console_scripts'))]\n",
        # (no .pth under -S: the start-up module is loaded here, where it is already in an enabled venv)
        ["_epfinder_boot", "epfinder", "epfinder._app", "epfinder._cache", "epfinder._startup_entries"]),
}


@pytest.mark.parametrize("library", QUERIES)
def test_a_query_with_fresh_caches_loads_little(tmp_path, library):
    # What a metadata query costs a program is mostly what it loads: on slow storage each module
    # file is tens of round trips. With every cache fresh, importlib.metadata's first query loads
    # epfinder._cache and nothing else of epfinder; neither it nor the application API loads json,
    # the scanner or __future__ (1.4 M instructions for `from __future__ import annotations`).
    write_tree(tmp_path, {**dist_info("alpha", "1.0", "[console_scripts]\nalpha = alpha:main\n"),
                          **dist_info("beta", "2.0", "[console_scripts]\nbeta = beta:main\n")})
    # Settled (the racy rule of a per-user cache: everything older than its margin), so that the
    # first query writes the cache of this folder.
    time.sleep(_cache.WALL_CLOCK_MARGIN_NS / 1e9 + 0.5)
    query, expected = QUERIES[library]
    code = (
        f"sys.path.append({str(tmp_path)!r})\n" + query +
        "loaded = sorted(set(sys.modules) - before)\n"
        "import json as _j; print(_j.dumps([answers, loaded]))\n"
    )
    first_answers, first_loaded = child(code)  # writes every cache
    assert "epfinder._scan" in first_loaded
    answers, loaded = child(code)
    assert answers == first_answers and answers[0] == "2.0" and {"alpha", "beta"} <= set(answers[1])
    assert [m for m in loaded if m.partition(".")[0] in ("epfinder", "_epfinder_boot")] == expected, loaded
    assert not {"json", "re", "__future__", "operator", "email", "epfinder._scan"} & set(loaded), loaded
