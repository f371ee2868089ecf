"""The startup-hook table: the small reader agrees with importlib.metadata, and the plan is ordered,
shadowed, switched and trusted as docs/startup-hooks.md says."""

import importlib.metadata as md
import os
import time
import shutil
import sys
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import _epfinder_boot as boot
from epfinder import _scan, _startup_table
from helpers import dist_info, write_tree

GROUP = "[epfinder.startup]\n"


# --- the reader against importlib.metadata ---------------------------------------------------------


def plain_hooks(path):
    """What entry_points(group="epfinder.startup") would give from this one directory."""
    found, seen = [], set()
    for dist in md.distributions(path=[str(path)]):
        try:
            name = dist._normalized_name
        except TypeError:
            continue  # no usable name: importlib.metadata cannot deduplicate it either
        if name in seen:
            continue
        seen.add(name)
        try:
            eps = list(dist.entry_points)
        except (ValueError, TypeError, UnicodeDecodeError):
            continue  # entry_points() would raise: such a distribution registers no hooks
        found += [(name, ep.name, ep.value) for ep in eps if ep.group == "epfinder.startup"]
    return found


def ours(path):
    entry, _settled = _startup_table.scan(str(path))
    return [tuple(hook[:3]) for hook in entry[boot.HOOKS]], entry


@given(st.text(alphabet=st.sampled_from(list("aAbB.-_ é0")), max_size=12))
def test_normalize_is_importlib_metadatas(name):
    assert boot.normalize(name) == _scan.normalize(name)


@pytest.mark.parametrize("name, priority, label", [
    ("100-gevent", 100, "gevent"),
    ("0-first", 0, "first"),
    ("007-bond", 7, "bond"),
    ("999-last", 999, "last"),
    ("1000-big", None, "1000-big"),
    ("telemetry", None, "telemetry"),
    ("100-", None, "100-"),
    ("-x", None, "-x"),
    ("10a-x", None, "10a-x"),
    ("١٢-arabic-digits", None, "١٢-arabic-digits"),
    ("50-two-dashes", 50, "two-dashes"),
])
def test_priority_comes_from_an_nnn_prefix(name, priority, label):
    assert boot.parse_hook_name(name) == (priority, label)


LINES = st.sampled_from([
    "[epfinder.startup]", "[console_scripts]", "[[epfinder.startup]]", "[ epfinder.startup ]",
    "100-a = mod:a", "b=mod:b", " c = mod.sub:c [extra] ", "d = mod", "junk", "# comment", "",
    "200-e = =odd", "f=", "  [epfinder.startup]  ",
])
FILES = st.one_of(
    st.lists(LINES, max_size=8).map(lambda lines: "\n".join(lines)),
    st.just(b"[epfinder.startup]\nx = \xff:run\n"),
    st.none(),
)
ENTRIES = st.lists(
    st.tuples(st.sampled_from(["pkg-1.0.dist-info", "Pkg-2.0.dist-info", "pkg.egg-info", "other-1.dist-info",
                               "OTHER-1.0.DIST-INFO", "-1.0.dist-info", "third_x-1.dist-info"]), FILES),
    max_size=5, unique_by=lambda e: e[0],
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ENTRIES)
@example([("pkg-1.0.dist-info", "[console_scripts]\njunk\n" + GROUP + "a = m:a\n")])
@example([("pkg-1.0.dist-info", None), ("Pkg-2.0.dist-info", GROUP + "a = m:a\n")])
def test_the_small_reader_finds_what_importlib_metadata_finds(entries):
    with tempfile.TemporaryDirectory() as tmp:
        files = {}
        for entry, text in entries:
            name = entry.split("-")[0].split(".")[0] or "Nameless"
            files.update(dist_info(name, "1.0", entry_points=text, dirname=entry))
        write_tree(tmp, files)
        hooks, _entry = ours(tmp)
        assert hooks == plain_hooks(tmp)


def test_problems_are_reported_only_for_files_that_declare_hooks(tmp_path):
    write_tree(tmp_path, {
        **dist_info("bad", "1", entry_points=GROUP + "a = m:a\nno equals sign\n"),
        **dist_info("latin", "1", entry_points=b"[epfinder.startup]\na = m:\xe9\n"),
        **dist_info("quiet", "1", entry_points="[console_scripts]\nnot a pair\n"),
    })
    _hooks, entry = ours(tmp_path)
    assert entry[boot.HOOKS] == []
    assert sorted(entry[boot.PROBLEMS]) == [
        ["bad", "bad-1.dist-info", "entry_points.txt line 3 has no '='"],
        ["latin", "latin-1.dist-info", "entry_points.txt is not UTF-8"],
    ]


def test_names_and_versions_come_from_the_metadata(tmp_path):
    write_tree(tmp_path, dist_info("My.Pkg", "2.0rc1", entry_points=GROUP + "x = m:x\n",
                                   dirname="my_pkg-2.0rc1.dist-info"))
    _hooks, entry = ours(tmp_path)
    assert entry[boot.HOOKS] == [["my_pkg", "x", "m:x", "My.Pkg", "2.0rc1"]]


# --- the plan: shadowing, order and settings -------------------------------------------------------


@pytest.fixture
def env(tmp_path, monkeypatch):
    """Three site directories and an enabled environment whose table lives in the first."""
    dirs = [tmp_path / name for name in ("venv-site", "user-site", "base-site")]
    for d in dirs:
        d.mkdir()
    (dirs[0] / ".epfinder-cache").mkdir()
    monkeypatch.setattr(boot, "startup_site_dirs", lambda: [str(d) for d in dirs])
    monkeypatch.setattr(boot, "startup_table_file",
                        lambda: str(dirs[0] / ".epfinder-cache" / boot.STARTUP_TABLE))
    return dirs


def plan(config=None, skip=""):
    hooks, problems = boot.startup_plan(config or {}, skip)
    assert all(tuple(h) == boot.HOOK_KEYS for h in hooks), "every planned hook has the keys HOOK_KEYS declares"
    return [(h["id"], h["priority"], h["priority_from"], h["enabled"]) for h in hooks], problems


def test_the_first_distribution_of_a_name_on_sys_path_wins(env):
    venv_site, user_site, base_site = env
    write_tree(venv_site, dist_info("a", "2", entry_points=None))               # shadows a in base
    write_tree(user_site, dist_info("b", "1", entry_points=GROUP + "b = b:b\n"))
    write_tree(base_site, {**dist_info("a", "1", entry_points=GROUP + "a = a:a\n"),
                           **dist_info("B", "0.1", entry_points=GROUP + "old = b:old\n"),
                           **dist_info("c", "1", entry_points=GROUP + "010-c = c:c\n")})
    assert plan()[0] == [("c:c", 10, "name", True), ("b:b", 500, "default", True)]


def test_order_never_depends_on_sys_path_or_listing_order(env, monkeypatch):
    venv_site, user_site, base_site = env
    write_tree(venv_site, {**dist_info("zeta", "1", entry_points=GROUP + "x = z:x\n100-y = z:y\n"),
                           **dist_info("alpha", "1", entry_points=GROUP + "x = a:x\n")})
    write_tree(base_site, dist_info("mid", "1", entry_points=GROUP + "100-a = m:a\nx = m:x\n"))
    expected = ["mid:a", "zeta:y", "alpha:x", "mid:x", "zeta:x"]
    assert [h[0] for h in plan()[0]] == expected
    monkeypatch.setattr(boot, "startup_site_dirs", lambda: [str(d) for d in reversed(env)])
    assert [h[0] for h in plan()[0]] == expected


def test_settings_disable_skip_and_override_priority(env):
    write_tree(env[0], {**dist_info("mypkg", "1", entry_points=GROUP + "100-gevent = m:g\ntelemetry = m:t\n"),
                        **dist_info("other", "1", entry_points=GROUP + "one = o:one\n200-two = o:two\n")})
    config = {"startup.disable.mypkg:telemetry": "1", "startup.priority.other:one": "5",
              "startup.priority.mypkg:gevent": "bogus"}
    assert plan(config)[0] == [
        ("other:one", 5, "config", True), ("mypkg:gevent", 100, "name", True),
        ("other:two", 200, "name", True), ("mypkg:telemetry", 500, "default", False)]
    assert [(h[0], h[3]) for h in plan({}, skip="MyPkg:gevent, other:*")[0]] == [
        ("mypkg:gevent", False), ("other:two", False), ("mypkg:telemetry", True), ("other:one", False)]
    assert [h[3] for h in plan({"startup.disable.*": "1"})[0]] == [False] * 4


def test_the_table_is_written_once_past_the_racy_tick_and_read_back(env, monkeypatch):
    write_tree(env[1], dist_info("pkg", "1", entry_points=GROUP + "x = p:x\n"))
    changing = env[1].stat().st_ino
    real = _startup_table.older_than
    # As if env[1] had changed within the scan's own timestamp tick.
    monkeypatch.setattr(_startup_table, "older_than", lambda ref, entry: entry[boot.SIGNATURE][1] != changing and real(ref, entry))
    first = plan()
    table = Path(boot.startup_table_file())
    assert first[0] == [("pkg:x", 500, "default", True)]
    assert set(boot.read_startup_table(str(table), os.getuid())) == {str(env[0]), str(env[2])}, \
        "a racy directory is scanned but not written down"
    monkeypatch.setattr(_startup_table, "older_than", real)
    time.sleep(0.01)
    assert plan() == first
    assert set(boot.read_startup_table(str(table), os.getuid())) == {str(d) for d in env}
    # Read from the table now: a rescan would find this edit inside a sealed *.dist-info (one
    # with RECORD), which an installer never makes.
    (env[1] / "pkg-1.dist-info" / "entry_points.txt").write_text(GROUP + "y = p:y\n")
    assert plan() == first
    # Any change to the directory itself is seen at once.
    write_tree(env[1], dist_info("new", "1", entry_points=GROUP + "001-n = n:n\n"))
    assert [h[0] for h in plan()[0]] == ["new:n", "pkg:y"]


@pytest.mark.parametrize("damage", [
    b"", b"\x00\xff garbage", b"epfinder-startup\t1\n", b"epfinder-startup\t2\nend\n",
    b"epfinder-startup\t1\ndir\t/x\t1\t2\t3\nend\n", b"epfinder-startup\t1\nhook\ta\tb\tc\td\te\nend\n",
    b"epfinder-startup\t1\ndir\t/x\ta\tb\tc\td\nend\n", "world-writable", "directory",
])
def test_a_damaged_table_is_ignored_and_rewritten(env, damage):
    write_tree(env[0], dist_info("pkg", "1", entry_points=GROUP + "x = p:x\n"))
    expected = plan()
    table = Path(boot.startup_table_file())
    good = table.read_bytes()
    if damage == "world-writable":
        table.chmod(0o666)
        assert boot.read_startup_table(str(table), os.getuid()) is None
    elif damage == "directory":
        table.unlink()
        table.mkdir()
    else:
        table.write_bytes(damage)
    assert plan() == expected
    if damage != "directory":
        assert table.read_bytes() == good, "rewritten by the start that found it damaged"


def test_a_world_writable_site_directory_is_always_rescanned(env):
    write_tree(env[0], dist_info("pkg", "1", entry_points=GROUP + "x = p:x\n"))
    env[2].chmod(0o777)
    try:
        assert plan()[0] == [("pkg:x", 500, "default", True)]
        assert str(env[2]) not in boot.read_startup_table(boot.startup_table_file(), os.getuid())
    finally:
        env[2].chmod(0o755)


def test_fields_a_line_cannot_hold_leave_that_directory_to_rescans(env):
    write_tree(env[0], dist_info("pkg", "1", entry_points=GROUP + "tab\there = p:x\n"))
    write_tree(env[1], dist_info("ok", "1", entry_points=GROUP + "y = o:y\n"))
    assert [h[0] for h in plan()[0]] == ["ok:y", "pkg:tab\there"]
    written = boot.read_startup_table(boot.startup_table_file(), os.getuid())
    assert str(env[0]) not in written and str(env[1]) in written
    assert [h[0] for h in plan()[0]] == ["ok:y", "pkg:tab\there"]


# --- when the hooks run -------------------------------------------------------------------------------


@pytest.mark.parametrize("user_site, step", [(False, "execsitecustomize"), (True, "execusercustomize")])
def test_hooks_run_after_the_last_customize_step_of_site_main(monkeypatch, user_site, step):
    import types

    calls = []
    site = types.SimpleNamespace(
        ENABLE_USER_SITE=user_site,
        execsitecustomize=lambda: calls.append("sitecustomize"),
        execusercustomize=lambda: calls.append("usercustomize"),
    )
    original = getattr(site, step)
    monkeypatch.setitem(sys.modules, "site", site)
    monkeypatch.setattr(boot, "run_startup", lambda config: calls.append(("hooks", config)))
    boot.schedule_startup({"k": "v"})
    assert calls == []
    site.execsitecustomize()
    if user_site:
        site.execusercustomize()
    assert calls[-2:] == [step[4:], ("hooks", {"k": "v"})]
    assert getattr(site, step) is original, "site is left as it was"


def test_without_a_customize_step_the_hooks_run_at_once(monkeypatch):
    import types

    calls = []
    monkeypatch.setitem(sys.modules, "site", types.SimpleNamespace(ENABLE_USER_SITE=False))
    monkeypatch.setattr(boot, "run_startup", lambda config: calls.append(config))
    boot.schedule_startup({})
    assert calls == [{}]


def test_entries_of_site_directories_not_in_this_start_are_kept(env, monkeypatch):
    for d in env:
        write_tree(d, dist_info(d.name.replace("-", ""), "1", entry_points=GROUP + "x = m:x\n"))
    assert len(plan()[0]) == 3
    table = boot.startup_table_file()
    monkeypatch.setattr(boot, "startup_site_dirs", lambda: [str(env[0]), str(env[2])])  # python -s
    write_tree(env[0], dist_info("new", "1"))
    assert [h[0] for h in plan()[0]] == ["basesite:x", "venvsite:x"]
    assert set(boot.read_startup_table(table, os.getuid())) == {str(d) for d in env}
    shutil.rmtree(env[1])
    write_tree(env[0], dist_info("newer", "1"))
    plan()
    assert set(boot.read_startup_table(table, os.getuid())) == {str(env[0]), str(env[2])}


@pytest.mark.parametrize("text", ["", "a", "a\n", "\n", "\n\n", "a\nb", "a\n\nb\n", "names\t" + "x\t" * 5000 + "\nend\n"])
def test_the_table_reader_splits_lines_as_str_split_does(text):
    assert boot._lines(text) == text.split("\n")
