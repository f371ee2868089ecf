"""python -m epfinder as a function over argv: exit statuses, one-line errors, what it writes."""

import json
import os
import sys
import time

import pytest

from epfinder import _cache, _cli
from helpers import dist_info, write_tree


@pytest.fixture
def env(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    site = write_tree(tmp_path / "site", {
        **dist_info("alpha", "1.0", "[console_scripts]\nalpha = alpha:main\n"),
        **dist_info("beta", "2.0"),
    })
    monkeypatch.setattr(sys, "path", [str(site), "", "relative", str(tmp_path / "missing")])
    return site


@pytest.mark.parametrize(
    "argv, status, message",
    [
        ([], 2, "a command is required"),
        (["bogus"], 2, "invalid choice: 'bogus'"),
        (["status", "--bogus"], 2, "unrecognized arguments: --bogus"),
        (["refresh", "/does/not/exist"], 2, "not a directory: /does/not/exist"),
        (["install", "--mode", "sideways"], 2, "invalid choice: 'sideways'"),
        (["install", "--user", "extra"], 2, "unrecognized arguments: extra"),
        (["startup"], 2, "startup needs an action (list, disable, enable, priority)"),
        (["startup", "bogus"], 2, "invalid choice: 'bogus'"),
        (["startup", "list", "--bogus"], 2, "unrecognized arguments: --bogus"),
        (["startup", "disable"], 2, "the following arguments are required: ID"),
        (["startup", "disable", "nocolon"], 2, "not a hook ID: 'nocolon'"),
        (["startup", "enable", ":label"], 2, "not a hook ID: ':label'"),
        (["startup", "priority", "a:b"], 2, "the following arguments are required: N"),
        (["startup", "priority", "a:b", "high"], 2, "priority must be 0 to 999 or 'default', not 'high'"),
        (["startup", "priority", "a:b", "1000"], 2, "priority must be 0 to 999 or 'default', not '1000'"),
    ],
)
def test_usage_errors_are_one_line(env, capsys, argv, status, message):
    assert _cli.main(argv) == status
    out, err = capsys.readouterr()
    assert out == ""
    assert err.count("\n") == 1 and err.startswith("epfinder: error: ") and message in err


def test_refresh_a_directory(env, capsys):
    assert _cli.main(["refresh", str(env)]) == 0
    out = capsys.readouterr().out
    assert f"{env}: 2 distribution(s) -> {_cache.in_directory_file(str(env))}" in out
    assert os.path.exists(_cache.in_directory_file(str(env)))


def test_status_reports_every_entry(env, capsys):
    _cli.main(["refresh", str(env)])
    capsys.readouterr()
    assert _cli.main(["status", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    states = {e["path"]: e for e in report["sys.path"]}
    assert states[str(env)]["state"] == "fresh"
    assert states[str(env)]["distributions"] == 2
    assert states[str(env)]["entry_points"] == 1
    assert states[""]["state"].startswith("plain")
    assert states["relative"]["state"].startswith("plain")
    assert states[sys.path[3]]["state"] == "plain (does not exist)"
    assert report["environment"]["mode"] in ("off", "auto")

    write_tree(env, dist_info("gamma", "1.0"))
    assert _cli.main(["status"]) == 0
    assert f"{env}: racy: changed in the last seconds" in capsys.readouterr().out
    past = time.time() - 60
    os.utime(env, (past, past))  # ctime still moves, but both are now settled
    ctime = os.stat(env).st_ctime
    if time.time() - ctime < _cache.WALL_CLOCK_MARGIN_NS / 1e9:
        time.sleep(_cache.WALL_CLOCK_MARGIN_NS / 1e9 - (time.time() - ctime) + 0.1)
    assert _cli.main(["status"]) == 0
    assert f"{env}: stale: will be rebuilt" in capsys.readouterr().out


def test_verify_finds_a_cache_that_differs_from_a_scan(env, capsys):
    _cli.main(["refresh", str(env)])
    assert _cli.main(["verify"]) == 0
    assert "0 differ" in capsys.readouterr().out
    time.sleep(0.01)
    # An edit inside a dist-info leaves the directory's signature as it was: auto trusts it.
    (env / "beta-2.0.dist-info" / "METADATA").write_text("Name: beta\nVersion: 2.1\n")
    assert _cli.main(["verify"]) == 1
    out = capsys.readouterr().out
    assert "the cache differs from a fresh scan" in out and "'2.1'" in out
    _cli.main(["refresh", str(env)])
    assert _cli.main(["verify"]) == 0


def test_status_and_verify_report_a_corrupt_line_in_one_line(env, capsys):
    _cli.main(["refresh", str(env)])
    file = _cache.in_directory_file(str(env))
    data = open(file, "rb").read()
    # Damage the last line (a group) only: the header still checks out.
    open(file, "wb").write(data[:-10] + b"XXXXXXXXX\n")
    capsys.readouterr()
    assert _cli.main(["verify"]) == 0
    out = capsys.readouterr().out
    assert "corrupt (" in out and "the next query rebuilds it" in out
    assert _cli.main(["status"]) == 0
    out = capsys.readouterr().out
    assert f"{env}: corrupt (checksum mismatch in group 'console_scripts'): will be rebuilt" in out


def test_verify_in_only_mode_counts_stale_caches(env, capsys, monkeypatch):
    _cli.main(["refresh", str(env)])
    monkeypatch.setenv("EPFINDER_MODE", "only")
    write_tree(env, dist_info("gamma", "1.0"))
    capsys.readouterr()
    assert _cli.main(["verify"]) == 1
    assert "stale (used as it is in this mode)" in capsys.readouterr().out


def test_startup_settings_are_written_to_the_environment_config(tmp_path, monkeypatch, capsys):
    import _epfinder_boot as boot

    site = write_tree(tmp_path / "site", {
        **dist_info("My.Pkg", "1.0", "[epfinder.startup]\n100-gevent = m:g\nother = m:o\n"),
        ".epfinder-cache/config": "enabled = 1\nmode = auto\n",
    })
    monkeypatch.setattr(_cli, "_package_site", lambda: str(site))
    monkeypatch.setattr(boot, "startup_site_dirs", lambda: [str(site)])
    monkeypatch.setattr(boot, "startup_table_file", lambda: str(site / ".epfinder-cache" / boot.STARTUP_TABLE))
    assert _cli.main(["startup", "disable", "my-pkg:gevent"]) == 0
    assert _cli.main(["startup", "priority", "My_Pkg:other", "7"]) == 0
    assert _cli.main(["startup", "disable", "nobody:x"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out == ["epfinder: disabled my_pkg:gevent", "epfinder: my_pkg:other runs at priority 7",
                   "epfinder: disabled nobody:x (no such hook is installed now)"]
    assert boot.read_config(str(site)) == {
        "enabled": "1", "mode": "auto", "startup.disable.my_pkg:gevent": "1",
        "startup.priority.my_pkg:other": "7", "startup.disable.nobody:x": "1"}
    monkeypatch.delenv("EPFINDER_STARTUP", raising=False)
    monkeypatch.delenv("EPFINDER_STARTUP_SKIP", raising=False)
    assert _cli.main(["startup", "list", "--json"]) == 0
    hooks = json.loads(capsys.readouterr().out)["hooks"]
    assert [(h["id"], h["priority"], h["priority_from"], h["state"]) for h in hooks] == [
        ("my_pkg:other", 7, "config", "enabled"),
        ("my_pkg:gevent", 100, "name", "disabled (python -m epfinder startup enable ID)")]
    assert _cli.main(["startup", "enable", "my_pkg:gevent"]) == 0
    assert _cli.main(["startup", "priority", "my_pkg:other", "default"]) == 0
    assert "startup.disable.my_pkg:gevent" not in boot.read_config(str(site))
    assert "startup.priority.my_pkg:other" not in boot.read_config(str(site))
