"""python -m epfinder as a function over argv: exit statuses, one-line errors, states, the JSON schema.

The environment is a fake site directory that the tool takes for the one it is installed in; what
a real interpreter then does is checked against what `status` says in test_cli_venv.py.
"""

import json
import os
import re
import sys
import time
import types
from pathlib import Path

import pytest

# The fixture below replaces sys.path with a fake one, without the standard library: what the code
# under test imports lazily must be loaded before.
import difflib  # noqa: F401
import email.parser  # noqa: F401
import fnmatch  # noqa: F401
import importlib.metadata  # noqa: F401
import pprint  # noqa: F401
import subprocess  # noqa: F401

import _epfinder_boot as boot
from epfinder import _cache, _cli, _record, _report, _startup_costs
from helpers import dist_info, full_path, write_tree

DOCS = Path(__file__).resolve().parent.parent / "docs" / "cli.md"
HOOKS = "[epfinder.startup]\n100-first = hooky:first\nsecond = hooky:second\n"


@pytest.fixture
def world(tmp_path, monkeypatch):
    """A site directory epfinder is installed in (not enabled), and sys.path around it."""
    site = write_tree(tmp_path / "site", {
        **dist_info("alpha", "1.0", "[console_scripts]\nalpha = alpha:main\n"),
        **dist_info("beta", "2.0"),
        "_epfinder_boot.py": "# stands in for the real one\n",
    })
    other = write_tree(tmp_path / "other", dist_info("gamma", "3.0"))
    monkeypatch.setattr(_report, "package_site", lambda: str(site))
    monkeypatch.setattr(_report, "site_dirs", lambda: [str(site)])
    monkeypatch.setattr(boot, "startup_site_dirs", lambda: [str(site)])
    monkeypatch.setattr(boot, "startup_table_file", lambda: str(site / ".epfinder-cache" / boot.STARTUP_TABLE))
    monkeypatch.setattr(_cache, "_site_dirs", {os.path.normcase(str(site))})
    monkeypatch.setattr(_cache, "_installation", "this-installation")
    monkeypatch.setattr(sys, "path", [str(site), "", "relative", str(tmp_path / "missing"), str(other)])
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    for name in ("EPFINDER_MODE", "EPFINDER_STARTUP", "EPFINDER_STARTUP_SKIP", "EPFINDER_TRACE"):
        monkeypatch.delenv(name, raising=False)
    settle(site)
    settle(other)
    return types.SimpleNamespace(site=site, other=other, tmp=tmp_path, monkeypatch=monkeypatch)


def enable(world, mode=None, extra=""):
    """What `install` writes: the config, and the file through which site runs epfinder."""
    write_tree(world.site, {".epfinder-cache/config": "enabled = 1\n" + (f"mode = {mode}\n" if mode else "") + extra,
                            _record.entry_file()[0]: _record.entry_file()[1]})


def settle(path):
    """Make a directory's last change old, so that a scan of it may be written down."""
    past = time.time() - 60
    for root, dirs, files in os.walk(path):
        for name in dirs + files:
            os.utime(os.path.join(root, name), (past, past))
    os.utime(path, (past, past))


def run(argv, capsys):
    status = _cli.main(argv)
    out, err = capsys.readouterr()
    return status, out, err


def as_json(argv, capsys):
    status, out, err = run(argv + ["--json"], capsys)
    assert err == ""
    return status, json.loads(out)


# --- exit statuses and one-line errors --------------------------------------------------------------


@pytest.mark.parametrize(
    "argv, message",
    [
        ([], "a command is required"),
        (["bogus"], "invalid choice: 'bogus'"),
        (["status", "--bogus"], "unrecognized arguments: --bogus"),
        (["refresh", "/does/not/exist"], "not a directory: /does/not/exist"),
        (["install", "--mode", "sideways"], "invalid choice: 'sideways'"),
        (["install", "--mode", "off"], "invalid choice: 'off'"),
        (["install", "--user", "extra"], "unrecognized arguments: extra"),
        (["install", "--user"], "not in the user site; drop --user"),
        (["uninstall", "--user"], "not in the user site; drop --user"),
        (["startup"], "startup needs an action (list, disable, enable, priority)"),
        (["startup", "bogus"], "invalid choice: 'bogus'"),
        (["startup", "list", "--bogus"], "unrecognized arguments: --bogus"),
        (["startup", "disable"], "the following arguments are required: ID"),
        (["startup", "disable", "nocolon"], "not a hook ID: 'nocolon'"),
        (["startup", "enable", ":label"], "not a hook ID: ':label'"),
        (["startup", "priority", "a:b"], "the following arguments are required: N"),
        (["startup", "priority", "a:b", "high"], "priority must be 0 to 999 or 'default', not 'high'"),
        (["startup", "priority", "a:b", "1000"], "priority must be 0 to 999 or 'default', not '1000'"),
        (["startup", "priority", "a:b", "-1"], "priority must be 0 to 999 or 'default', not '-1'"),
        (["startup", "priority", "a:b", "\u00b2"], "priority must be 0 to 999 or 'default', not '\u00b2'"),
        (["startup", "priority", "a:b", "\u0663"], "priority must be 0 to 999 or 'default', not '\u0663'"),
        (["startup", "priority", "a:b", "\uff17"], "priority must be 0 to 999 or 'default', not '\uff17'"),
    ],
)
def test_usage_errors_exit_2_in_one_line(world, capsys, argv, message):
    status, out, err = run(argv, capsys)
    assert status == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("epfinder: error: ") and message in err, err


def _unwritable_everywhere(world):
    # Root ignores permission bits: a file where each folder would be refuses every write.
    (world.site / ".epfinder-cache").write_text("a file where the folder would be")
    (world.other / ".epfinder-cache").write_text("likewise")
    (world.tmp / "xdg-file").write_text("")
    world.monkeypatch.setenv("XDG_CACHE_HOME", str(world.tmp / "xdg-file"))
    settle(world.site)
    settle(world.other)


def _refuse_unlink(world):
    enable(world)
    real = os.unlink

    def refuse(path, *args, dir_fd=None, **kwargs):
        if full_path(path, dir_fd).startswith(str(world.site)):
            raise PermissionError(13, "Permission denied", str(path))
        return real(path, *args, dir_fd=dir_fd, **kwargs)

    world.monkeypatch.setattr(os, "unlink", refuse)


@pytest.mark.parametrize(
    "setup, argv, message",
    [
        ("not_installed", ["install"], "not installed: "),
        ("not_installed", ["uninstall"], "not installed: "),
        ("unwritable", ["install"], "cannot write "),
        ("unwritable", ["refresh"], "some caches could not be written"),
        ("unwritable", ["refresh", "{other}"], "some caches could not be written"),
        ("refuse_unlink", ["uninstall"], "cannot remove {site}/{entry_file}: Permission denied"),
        ("installed", ["startup", "disable", "a:b"], "epfinder is not enabled for "),
        ("installed", ["startup", "list", "--measure"], "epfinder is not enabled for "),
    ],
)
def test_failures_exit_1_in_one_line(world, capsys, setup, argv, message):
    if setup == "not_installed":
        (world.site / "_epfinder_boot.py").unlink()
    elif setup == "unwritable":
        _unwritable_everywhere(world)
    elif setup == "refuse_unlink":
        _refuse_unlink(world)
    argv = [a.format(other=world.other, site=world.site) for a in argv]
    status, out, err = run(argv, capsys)
    assert status == 1, (out, err)
    assert err.count("\n") == 1 and err.startswith("epfinder: error: "), err
    assert message.format(site=world.site, entry_file=_record.entry_file()[0]) in err, err
    assert "Traceback" not in out + err


def test_refresh_says_where_nothing_could_be_written(world, capsys):
    _unwritable_everywhere(world)
    status, out, err = run(["refresh", str(world.other)], capsys)
    assert status == 1
    assert f"{world.other}: 1 distribution(s), not written: neither " in out
    assert "1 directory could not be cached" in out


# --- status: what the next interpreter does ------------------------------------------------------------

ENTRIES = ("site", "''", "relative", "missing", "other")


@pytest.mark.parametrize(
    "case, env_state, mode, hooks_state, entry_states",
    [
        ("not_installed", "not_installed", "off", "not_enabled", ["not_served"] * 5),
        ("installed", "not_enabled", "off", "not_enabled", ["not_served"] * 5),
        ("installed+EPFINDER_MODE=strict", "not_enabled", "off", "not_enabled", ["not_served"] * 5),
        ("enabled", "enabled", "auto", "run", ["fresh", "plain", "plain", "absent", "missing"]),
        ("enabled+EPFINDER_MODE=off", "off", "off", "all_off", ["not_served"] * 5),
        ("enabled+EPFINDER_MODE=only", "enabled", "only", "run", ["fresh", "plain", "plain", "absent", "missing"]),
        ("enabled+EPFINDER_MODE=trust", "enabled", "trust", "run", ["fresh", "plain", "plain", "absent", "missing"]),
        ("enabled+EPFINDER_MODE=bogus", "invalid_mode", "off", "run", ["not_served"] * 5),
        ("enabled+config mode=sideways", "invalid_mode", "off", "run", ["not_served"] * 5),
        ("enabled+EPFINDER_STARTUP=0", "enabled", "auto", "all_off", ["fresh", "plain", "plain", "absent", "missing"]),
    ],
)
def test_status_in_each_state(world, capsys, case, env_state, mode, hooks_state, entry_states):
    write_tree(world.site, dist_info("hooky", "1.0", HOOKS))
    base, _, extra = case.partition("+")
    if base == "not_installed":
        (world.site / "_epfinder_boot.py").unlink()
    if base == "enabled":
        enable(world, "sideways" if extra == "config mode=sideways" else None)
        assert _cli.main(["refresh", str(world.site)]) == 0
    if extra.startswith("EPFINDER_"):
        world.monkeypatch.setenv(*extra.split("="))
    capsys.readouterr()
    status, report = as_json(["status"], capsys)
    assert status == 0
    env = report["environment"]
    assert (env["state"], env["mode"]) == (env_state, mode)
    assert report["startup_hooks"]["state"] == hooks_state
    assert report["startup_hooks"]["registered"] == 2
    assert [e["state"] for e in report["sys_path"]] == entry_states
    if env_state == "invalid_mode":
        assert "'bogus'" in env["message"] or "'sideways'" in env["message"]
        assert env["mode_setting"] in ("bogus", "sideways")
    if env_state == "invalid_mode":
        assert "the mode does not stop them; EPFINDER_STARTUP=0 does" in report["startup_hooks"]["message"]
    if env_state == "off":  # off means no startup hook either (docs/security.md, rule 7)
        assert report["startup_hooks"]["message"] == "2 registered; none runs while EPFINDER_MODE=off"
    if mode == "only":
        assert "contributes no distributions" in report["sys_path"][4]["message"]
    if "EPFINDER_MODE=strict" in case:
        assert "EPFINDER_MODE has no effect until then" in env["message"]

    status, out, err = run(["status"], capsys)
    assert status == 0 and err == ""
    lines = out.splitlines()
    assert lines[0] == f"epfinder: {env['message']}"
    assert lines[1].startswith("startup hooks: ")
    for entry in report["sys_path"]:
        assert f"      {entry['state']}" in out


@pytest.mark.parametrize(
    "mode, change, state, words",
    [
        ("auto", "add", "stale", "rescanned at the next query"),
        ("strict", "add", "stale", "rescanned at the next query"),
        ("trust", "add", "stale", "trust mode answers from the cache as it is"),
        ("only", "add", "stale", "only mode answers from the cache as it is"),
        ("auto", "edit", "fresh", "answered from its cache"),
        # a *.dist-info without RECORD may change inside: auto watches it (docs/cache-format.md)
        ("auto", "edit unsealed", "stale", "rescanned at the next query"),
        ("strict", "edit", "stale", "rescanned at the next query"),
        ("auto", "garbage", "corrupt", "its cache is damaged (checksum mismatch in group 'console_scripts')"),
        ("only", "garbage", "corrupt", "contributes no distributions"),
        ("auto", "world-writable", "untrusted", "writable by group or others, so it is ignored"),
        ("auto", "unreadable", "unreadable", "its cache cannot be read (Permission denied)"),
    ],
)
def test_status_of_a_cache(world, capsys, mode, change, state, words):
    enable(world, mode)
    if change == "edit unsealed":
        os.unlink(world.site / "beta-2.0.dist-info" / "RECORD")
    settle(world.site)
    assert _cli.main(["refresh", str(world.site)]) == 0
    file = _cache.in_directory_file(str(world.site))
    if change == "add":
        write_tree(world.site, dist_info("delta", "4.0"))
        settle(world.site)
    elif change in ("edit", "edit unsealed"):
        time.sleep(0.01)
        (world.site / "beta-2.0.dist-info" / "METADATA").write_text("Name: beta\nVersion: 2.1\n")
    elif change == "garbage":
        data = open(file, "rb").read()
        open(file, "wb").write(data[:-10] + b"XXXXXXXXX\n")  # the last line, a group; the header checks out
    elif change == "world-writable":
        os.chmod(file, 0o666)
    elif change == "unreadable":
        real = os.open

        def refuse(path, flags, *args, **kwargs):
            if str(path) == file:
                raise PermissionError(13, "Permission denied", str(path))
            return real(path, flags, *args, **kwargs)

        world.monkeypatch.setattr(os, "open", refuse)
    capsys.readouterr()
    _, report = as_json(["status"], capsys)
    entry = report["sys_path"][0]
    assert (entry["state"], entry["cache"]) == (state, file)
    assert words in entry["message"]


def test_a_directory_nobody_can_cache_is_unwritable(world, capsys):
    enable(world)
    (world.tmp / "xdg-file").write_text("")
    world.monkeypatch.setenv("XDG_CACHE_HOME", str(world.tmp / "xdg-file"))
    _, report = as_json(["status"], capsys)
    other = report["sys_path"][4]
    assert other["state"] == "unwritable" and other["message"].endswith("scanned at each query")


# --- JSON: one versioned schema, as docs/cli.md documents it ------------------------------------------


def documented():
    """{object name: (keys, states)} from the tables of docs/cli.md."""
    objects = {}
    name = None
    for line in DOCS.read_text(encoding="utf-8").splitlines():
        if line.startswith("### "):
            name = line[4:].strip()
            objects[name] = (set(), set())
        elif name and line.startswith("| `"):
            cell = line.split("|")[1].strip()
            objects[name][0 if line.count("|") >= 4 else 1].add(cell.strip("`"))
    top = {}
    for line in DOCS.read_text(encoding="utf-8").splitlines():
        match = re.match(r"\| `(status|startup list|verify)` \| (.*) \|$", line)
        if match:
            top[match[1]] = set(re.findall(r"(?:^|, )`([a-z_]+)`", match[2]))
    return objects, top


def check_schema(report, command):
    objects, top = documented()

    def keys_of(name, value):
        keys, states = objects[name]
        assert set(value) == keys, name
        if "state" in value:
            assert value["state"] in states, (name, value["state"])
            assert isinstance(value["message"], str) and value["message"]

    def snake(value):
        if isinstance(value, dict):
            for key, item in value.items():
                assert re.fullmatch(r"[a-z][a-z0-9_]*", key), key
                snake(item)
        elif isinstance(value, list):
            for item in value:
                snake(item)

    snake(report)
    assert set(report) == top[command]
    assert report["schema_version"] == _report.SCHEMA_VERSION == 1 and report["command"] == command
    keys_of("environment", report["environment"])
    if "startup_hooks" in report:
        keys_of("startup_hooks", report["startup_hooks"])
    for hook in report.get("hooks", []):
        keys_of("hook", hook)
    for entry in report["sys_path"] if "sys_path" in report else []:
        keys_of("verified entry" if command == "verify" else "entry", entry)


def test_the_documented_states_are_the_code_s():
    objects, _ = documented()
    assert objects["environment"][1] == set(_report.ENVIRONMENT_STATES)
    assert objects["entry"][1] == set(_report.ENTRY_STATES)
    assert objects["startup_hooks"][1] == set(_report.HOOKS_STATES)
    assert objects["hook"][1] == set(_report.HOOK_STATES)
    assert objects["verified entry"][1] == set(_report.VERIFY_STATES)


@pytest.mark.parametrize("case", ["not_installed", "installed", "enabled", "off", "only", "bogus"])
@pytest.mark.parametrize("argv", [["status"], ["startup", "list"], ["verify"]])
def test_json_follows_the_schema(world, capsys, case, argv):
    write_tree(world.site, dist_info("hooky", "1.0", HOOKS))
    if case == "not_installed":
        (world.site / "_epfinder_boot.py").unlink()
    elif case != "installed":
        enable(world)
        _cli.main(["refresh", str(world.site)])
        if case != "enabled":
            world.monkeypatch.setenv("EPFINDER_MODE", case)
    _startup_costs.record(str(world.site), [("hooky:first", 2_000_000, 500_000, "ok")])
    capsys.readouterr()
    status, report = as_json(argv, capsys)
    check_schema(report, " ".join(argv))
    if argv == ["verify"]:
        assert status == (1 if case == "only" else 0)  # only mode: 'other' has no cache


# --- verify ----------------------------------------------------------------------------------------------


def test_verify_finds_a_cache_that_differs_from_a_scan(world, capsys):
    enable(world)
    _cli.main(["refresh", str(world.site)])
    assert run(["verify"], capsys)[0] == 0
    time.sleep(0.01)
    # An edit inside a dist-info leaves the directory's signature as it was: auto trusts it.
    (world.site / "beta-2.0.dist-info" / "METADATA").write_text("Name: beta\nVersion: 2.1\n")
    status, out, _ = run(["verify"], capsys)
    assert status == 1
    assert "differs: the cache differs from a fresh scan" in out and "'2.1'" in out
    status, report = as_json(["verify"], capsys)
    (entry,) = [e for e in report["sys_path"] if e["state"] == "differs"]
    assert status == 1 and entry["problem"] and any("'2.1'" in line for line in entry["diff"])
    _cli.main(["refresh", str(world.site)])
    assert run(["verify"], capsys)[0] == 0


@pytest.mark.parametrize("mode, status", [("auto", 0), ("trust", 1), ("only", 1)])
def test_verify_counts_stale_caches_only_where_the_mode_uses_them(world, capsys, mode, status):
    enable(world, mode)
    _cli.main(["refresh", str(world.site), str(world.other)])
    write_tree(world.site, dist_info("delta", "4.0"))
    capsys.readouterr()
    got, out, _ = run(["verify"], capsys)
    assert got == status
    assert ("answers from it as it is" in out) == (status == 1)


# --- startup hooks -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "config, environ, states, words",
    [
        ("", {}, ["runs", "runs"], ["runs at each start"] * 2),
        ("startup.disable.hooky:first = 1\n", {}, ["disabled", "runs"],
         ["disabled (python -m epfinder startup enable hooky:first)", "runs at each start"]),
        ("startup.disable.hooky:* = 1\n", {}, ["disabled", "disabled"],
         ["disabled by the pattern 'hooky:*' (python -m epfinder startup enable 'hooky:*')"] * 2),
        ("", {"EPFINDER_STARTUP_SKIP": "other:x, Hooky:sec*"}, ["runs", "skipped"],
         ["runs at each start", "skipped by EPFINDER_STARTUP_SKIP (Hooky:sec*)"]),
        ("", {"EPFINDER_STARTUP": "off"}, ["all_off", "all_off"], ["does not run while EPFINDER_STARTUP=off"] * 2),
        (None, {}, ["not_enabled", "not_enabled"], ["does not run: epfinder is not enabled here"] * 2),
    ],
)
def test_startup_list_says_why_a_hook_does_not_run(world, capsys, config, environ, states, words):
    write_tree(world.site, dist_info("hooky", "1.0", HOOKS))
    if config is not None:
        enable(world, extra=config)
    for name, value in environ.items():
        world.monkeypatch.setenv(name, value)
    status, report = as_json(["startup", "list"], capsys)
    assert [h["state"] for h in report["hooks"]] == states
    assert [h["message"] for h in report["hooks"]] == words
    status, out, _ = run(["startup", "list"], capsys)
    assert all(w in out for w in words)


def test_enabling_a_hook_a_pattern_disables_names_the_pattern(world, capsys):
    write_tree(world.site, dist_info("hooky", "1.0", HOOKS))
    enable(world, extra="startup.disable.hooky:* = 1\n")
    status, out, _ = run(["startup", "enable", "hooky:first"], capsys)
    assert status == 0
    assert out == ("epfinder: hooky:first was not disabled; it is still disabled by the pattern 'hooky:*' "
                   "(python -m epfinder startup enable 'hooky:*')\n")
    status, out, _ = run(["startup", "enable", "hooky:*"], capsys)
    assert (status, out) == (0, "epfinder: enabled hooky:*\n")
    assert [h["state"] for h in as_json(["startup", "list"], capsys)[1]["hooks"]] == ["runs", "runs"]


def test_startup_settings_are_written_to_the_environment_config(world, capsys):
    write_tree(world.site, dist_info("My.Pkg", "1.0", "[epfinder.startup]\n100-gevent = m:g\nother = m:o\n"))
    enable(world, "auto")
    assert _cli.main(["startup", "disable", "my-pkg:gevent"]) == 0
    assert _cli.main(["startup", "priority", "My_Pkg:other", "7"]) == 0
    assert _cli.main(["startup", "disable", "nobody:x"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out == ["epfinder: disabled my_pkg:gevent", "epfinder: my_pkg:other runs at priority 7",
                   "epfinder: disabled nobody:x (no such hook is installed now)"]
    assert boot.read_config(str(world.site)) == {
        "enabled": "1", "mode": "auto", "startup.disable.my_pkg:gevent": "1",
        "startup.priority.my_pkg:other": "7", "startup.disable.nobody:x": "1"}
    _, report = as_json(["startup", "list"], capsys)
    assert [(h["id"], h["priority"], h["priority_source"], h["state"]) for h in report["hooks"]] == [
        ("my_pkg:other", 7, "config", "runs"), ("my_pkg:gevent", 100, "name", "disabled")]
    assert _cli.main(["startup", "enable", "my_pkg:gevent"]) == 0
    assert _cli.main(["startup", "priority", "my_pkg:other", "default"]) == 0
    assert "startup.disable.my_pkg:gevent" not in boot.read_config(str(world.site))
    assert "startup.priority.my_pkg:other" not in boot.read_config(str(world.site))


def test_a_priority_the_config_spells_in_other_digits_is_ignored_not_fatal(world):
    write_tree(world.site, dist_info("hooky", "1.0", HOOKS))
    enable(world, extra="startup.priority.hooky:second = \u00b2\nstartup.priority.hooky:first = \u0663\n")
    hooks, _ = boot.startup_plan(boot.read_config(str(world.site)))
    assert [(h["id"], h["priority"], h["priority_from"]) for h in hooks] == [
        ("hooky:first", 100, "name"), ("hooky:second", 500, "default")]


def test_the_last_measured_cost_of_each_hook_is_shown(world, capsys):
    write_tree(world.site, dist_info("hooky", "1.0", HOOKS))
    enable(world)
    status, out, _ = run(["status"], capsys)
    assert "their cost is not measured yet (python -m epfinder startup list --measure)" in out
    assert _startup_costs.record(str(world.site), [("hooky:first", 1_000_000, 500_000, "ok"),
                                                   ("hooky:second", 2_000_000, 498_000_000, "ok")])
    status, out, _ = run(["status"], capsys)
    assert ("startup hooks: 2 of 2 run at each start, 501.5 ms in all when last measured (just now); "
            "slowest hooky:second 500.0 ms") in out
    status, out, _ = run(["startup", "list"], capsys)
    assert "500.0 ms" in out and "1.5 ms" in out
    hooks = as_json(["startup", "list"], capsys)[1]["hooks"]
    assert [(h["last_import_ms"], h["last_call_ms"], h["last_outcome"]) for h in hooks] == [
        (1.0, 0.5, "ok"), (2.0, 498.0, "ok")]


def test_a_traced_start_records_what_each_hook_cost(world, monkeypatch):
    write_tree(world.site, {**dist_info("hooky", "1.0", HOOKS),
                            "hooky.py": "import time\ndef first():\n    time.sleep(0.05)\ndef second():\n    raise RuntimeError\n"})
    enable(world)
    import importlib

    importlib.invalidate_caches()  # the site directory is already first on the fake sys.path
    monkeypatch.setenv("EPFINDER_TRACE", "1")
    monkeypatch.setattr(boot, "_startup_ran", False)
    monkeypatch.setattr(boot, "site_dir", str(world.site))
    boot.run_startup(boot.read_config(str(world.site)))
    costs = _startup_costs.read(str(world.site))
    first, second = costs["hooks"]["hooky:first"], costs["hooks"]["hooky:second"]
    assert first["outcome"] == "ok" and first["call_ns"] >= 50_000_000
    assert second["outcome"] == "failed"
    sys.modules.pop("hooky", None)


# --- output into a pipe that closes early ----------------------------------------------------------------


@pytest.fixture
def closed_pipe(monkeypatch):
    read, write = os.pipe()
    os.close(read)
    stream = open(write, "w", buffering=1)
    monkeypatch.setattr(sys, "stdout", stream)
    yield stream
    stream.close()


@pytest.mark.parametrize("argv", [["status"], ["status", "--json"], ["startup", "list", "--json"], ["install"],
                                  ["uninstall"], ["verify"], ["--help"], ["--version"]])
def test_a_closed_pipe_is_no_error_and_the_work_is_done(world, capsys, closed_pipe, argv):
    write_tree(world.site, dist_info("hooky", "1.0", HOOKS))
    if argv == ["uninstall"]:
        enable(world)
    assert _cli.main(argv) == 0
    assert capsys.readouterr().err == ""
    table = world.site / ".epfinder-cache" / boot.STARTUP_TABLE
    if argv == ["install"]:
        assert table.exists() and boot.read_config(str(world.site))["enabled"] == "1"
    if argv == ["uninstall"]:
        assert not (world.site / ".epfinder-cache").exists()


# --- help ---------------------------------------------------------------------------------------------


def _actions(parser, name="epfinder"):
    import argparse

    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub_name, sub in action.choices.items():
                yield from _actions(sub, f"{name} {sub_name}")
        elif not isinstance(action, argparse._HelpAction):
            yield name, action


def test_every_option_and_argument_has_help():
    missing = [(name, action.dest) for name, action in _actions(_cli._parser()) if not action.help]
    assert missing == []


def test_version(world, capsys):
    status, out, err = run(["--version"], capsys)
    assert status == 0 and err == ""
    assert re.fullmatch(r"epfinder (\S+|\(not installed\)) \(distribution importlib-metadata-cache, "
                        r"running from .*\)\n", out), out


def test_help_exits_0(capsys):
    status, out, _ = run(["startup", "priority", "--help"], capsys)
    assert status == 0 and "0 to 999 (lower runs first), or 'default'" in out


# --- refresh and uninstall ------------------------------------------------------------------------------


def test_refresh_a_directory_says_it_now_keeps_its_cache_inside(world, capsys):
    status, out, _ = run(["refresh", str(world.other)], capsys)
    assert status == 0
    assert f"created {world.other}/.epfinder-cache/: {world.other} keeps its cache inside itself" in out
    assert f"{world.other}: 1 distribution(s) -> {_cache.in_directory_file(str(world.other))}" in out
    status, out, _ = run(["refresh", str(world.other)], capsys)
    assert "created" not in out


def test_refresh_when_not_enabled_says_so(world, capsys):
    status, out, _ = run(["refresh"], capsys)
    assert status == 0
    assert out.splitlines()[0].startswith(f"epfinder: note: installed in {world.site}, not enabled")


def test_refresh_reports_the_file_it_wrote_not_one_it_could_not(world, capsys):
    enable(world)
    _cli.main(["refresh", str(world.site)])
    write_tree(world.site, dist_info("delta", "4.0"))
    settle(world.site)
    real = os.open

    def refuse(path, flags, *args, dir_fd=None, **kwargs):  # as for a user who does not own site-packages
        if flags & os.O_CREAT and full_path(path, dir_fd).startswith(str(world.site)):
            raise PermissionError(13, "Permission denied", str(path))
        return real(path, flags, *args, dir_fd=dir_fd, **kwargs)

    def refuse_unlink(path, *args, dir_fd=None, **kwargs):
        if full_path(path, dir_fd).startswith(str(world.site)):
            raise PermissionError(13, "Permission denied", str(path))
        return real_unlink(path, *args, dir_fd=dir_fd, **kwargs)

    real_unlink = os.unlink
    world.monkeypatch.setattr(os, "open", refuse)
    world.monkeypatch.setattr(os, "unlink", refuse_unlink)
    capsys.readouterr()
    status, out, _ = run(["refresh", str(world.site)], capsys)
    assert status == 0
    assert f"{world.site}: 3 distribution(s) -> {_cache.per_user_file(str(world.site))}" in out
    assert f"note: queries read {_cache.in_directory_file(str(world.site))} first, which this user cannot" in out


def test_uninstall_removes_this_installation_s_caches_and_no_other_s(world, capsys):
    enable(world)
    shared = write_tree(world.tmp / "shared", dist_info("delta", "4.0"))
    sys.path.append(str(shared))
    assert _cli.main(["refresh", str(shared)]) == 0  # keeps its cache inside itself
    settle(world.other)
    assert _cli.main(["refresh"]) == 0  # 'other' gets a per-user cache
    mine = Path(_cache.user_cache_root())
    theirs = mine.parent / "another-installation"
    write_tree(theirs, {"other-00000000.jsonl": "theirs"})
    assert any(mine.iterdir()), capsys.readouterr().out
    capsys.readouterr()
    status, out, _ = run(["uninstall"], capsys)
    assert status == 0
    assert out.startswith(f"epfinder: switched off for {world.site}; removed ")
    assert not (world.site / ".epfinder-cache").exists() and not mine.exists()
    assert (theirs / "other-00000000.jsonl").exists()
    assert f"kept {shared}/.epfinder-cache/: outside this environment" in out
    assert (shared / ".epfinder-cache" / "v2.jsonl").exists()
    status, out, _ = run(["uninstall"], capsys)
    assert status == 0
    assert out.startswith(f"epfinder: was not enabled for {world.site}; removed 0 file(s) and folder(s)\n")


def test_install_lists_its_files_in_record_and_uninstall_takes_them_out(world, capsys):
    record = world.site / "importlib_metadata_cache-0.1.0.dist-info" / "RECORD"
    original = "_epfinder_boot.py,sha256=x,1\nepfinder/__init__.py,sha256=y,2\n"
    write_tree(world.site, {"importlib_metadata_cache-0.1.0.dist-info/METADATA": "Name: importlib-metadata-cache\n",
                            "importlib_metadata_cache-0.1.0.dist-info/RECORD": original})
    assert _cli.main(["install"]) == 0
    entry_file = _record.entry_file()[0]
    assert (world.site / entry_file).read_text() == _record.entry_file()[1]
    listed = record.read_text().splitlines()
    assert listed[:2] == original.splitlines()
    assert {".epfinder-cache/config,,", ".epfinder-cache/startup-v2.tsv,,", ".epfinder-cache/v2.jsonl,,",
            ".epfinder-cache/startup-costs.tsv,,", f"{entry_file},,"} <= set(listed)
    assert all(line.startswith(".epfinder-cache/") or line == f"{entry_file},," for line in listed[2:])
    on_disk = {f".epfinder-cache/{f}" for f in os.listdir(world.site / ".epfinder-cache")}
    assert on_disk <= {line[:-2] for line in listed}
    assert _record.record_file(str(world.site)) == str(record)
    assert _cli.main(["uninstall"]) == 0
    assert record.read_text() == original
    assert not (world.site / entry_file).exists()


def test_a_start_file_install_wrote_is_listed_in_record_too(world):
    # Python 3.18+ runs only .start files, so install writes one there; pip must remove it.
    record = world.site / "importlib_metadata_cache-0.1.0.dist-info" / "RECORD"
    write_tree(world.site, {"importlib_metadata_cache-0.1.0.dist-info/RECORD": "_epfinder_boot.py,,\n",
                            "epfinder.start": "_epfinder_boot:boot\n"})
    enable(world)
    assert _record.add(str(world.site))
    assert "epfinder.start,," in record.read_text().splitlines()
    assert _record.remove(str(world.site))
    assert record.read_text() == "_epfinder_boot.py,,\n"


# --- the name users install ------------------------------------------------------------------------------

ROOT = DOCS.parent.parent


@pytest.mark.parametrize("doc", ["README.md", *sorted(p.name for p in (ROOT / "docs").glob("*.md"))])
def test_the_docs_install_the_distribution_by_its_name(doc):
    # "epfinder" on the package index is an unrelated project; ours is importlib-metadata-cache.
    text = (ROOT / doc if doc == "README.md" else ROOT / "docs" / doc).read_text(encoding="utf-8")
    assert not re.search(r"(pip|uv pip) (install|uninstall)( -y)? epfinder\b", text)
    for command in re.findall(r"(?:pip|uv pip) (?:install|uninstall)(?: -y)? ([A-Za-z][\w.-]*)", text):
        assert command == "importlib-metadata-cache", command


def test_the_distribution_name():
    import epfinder

    assert 'name = "importlib-metadata-cache"' in (ROOT / "pyproject.toml").read_text()
    assert epfinder.DISTRIBUTION == "importlib-metadata-cache"


def test_not_installed_says_what_to_install(world, capsys):
    (world.site / "_epfinder_boot.py").unlink()
    status, _, err = run(["install"], capsys)
    assert status == 1 and "python -m pip install importlib-metadata-cache" in err
