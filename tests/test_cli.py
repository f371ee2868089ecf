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
