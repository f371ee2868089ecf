"""The command line tool in real venvs: what `status` says is what the next interpreter does,
uninstalling by either route (epfinder first or not, pip or uv) leaves nothing that changes
behaviour later, a closed pipe, the tool's own sys.path entry, and another user's view.
"""

import importlib.util
import json
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from helpers import EPFINDER_ROOT, clean_env, dist_info, make_wheel, pip, run, write_tree

pytestmark = pytest.mark.slow

DIST = "importlib-metadata-cache"
PROBE = ("import sys; boot = sys.modules.get('_epfinder_boot'); "
         "print('mode', boot.mode if boot else None)")
HOOK = "[epfinder.startup]\nsay = hook_pkg:say\n"


def epfinder(python, *args, tmp_path, env=None, check=True, cwd=None):
    return run(python, "-m", "epfinder", *args, tmp_path=tmp_path, env=env, check=check, cwd=cwd)


def status(python, tmp_path, **env):
    out = epfinder(python, "status", "--json", tmp_path=tmp_path, env=clean_env(tmp_path, **env)).stdout
    return json.loads(out[out.index("{"):])  # after what a startup hook printed


def start(python, tmp_path, **env):
    """(mode in force, whether the hook ran, stderr) for one interpreter start."""
    proc = run(python, "-c", PROBE, tmp_path=tmp_path, env=clean_env(tmp_path, **env))
    lines = proc.stdout.splitlines()
    return lines[-1].split(" ", 1)[1], "hook ran" in lines, proc.stderr


def install_hook_package(python, tmp_path):
    wheels = tmp_path / "wheels"
    wheels.mkdir(exist_ok=True)
    wheel = make_wheel(wheels, "hook-pkg", "1.0", HOOK, modules={"hook_pkg.py": "def say():\n    print('hook ran')\n"})
    pip(python, "install", "--no-index", str(wheel), tmp_path=tmp_path)


# The states a user meets, what `status` must say in each, and what a start then does.
STATES = [
    # case, env, (environment state, mode, hooks state), (mode at start, hook runs)
    ("installed", {}, ("not_enabled", "off", "not_enabled"), ("None", False)),
    ("enabled", {}, ("enabled", "auto", "run"), ("auto", True)),
    ("off", {"EPFINDER_MODE": "off"}, ("off", "off", "all_off"), ("None", False)),  # off: no hooks either
    ("only", {"EPFINDER_MODE": "only"}, ("enabled", "only", "run"), ("only", True)),
    ("bogus", {"EPFINDER_MODE": "bogus"}, ("invalid_mode", "off", "run"), ("None", True)),
    ("hooks off", {"EPFINDER_STARTUP": "0"}, ("enabled", "auto", "all_off"), ("auto", False)),
    ("uninstalled", {}, ("not_enabled", "off", "not_enabled"), ("None", False)),
]


def test_status_says_what_the_next_interpreter_does(venv, tmp_path):
    python, site, _ = venv
    install_hook_package(python, tmp_path)
    # Run from a tree that no interpreter of this venv loads: not installed, as far as it knows.
    report = status(python, tmp_path, PYTHONPATH=EPFINDER_ROOT)
    assert report["environment"]["state"] == "not_installed"
    assert {e["state"] for e in report["sys_path"]} == {"not_served"}
    for case, env, expected, at_start in STATES:
        if case == "enabled":
            epfinder(python, "install", tmp_path=tmp_path)
        if case == "uninstalled":
            epfinder(python, "uninstall", tmp_path=tmp_path)
        report = status(python, tmp_path, **env)
        said = (report["environment"]["state"], report["environment"]["mode"], report["startup_hooks"]["state"])
        assert said == expected, case
        mode, hook_ran, stderr = start(python, tmp_path, **env)
        assert (mode, hook_ran) == at_start, case
        assert (stderr.count("\n") == 1) == (case == "bogus"), stderr
        served = {e["state"] for e in report["sys_path"]}
        assert ("not_served" in served) == (mode == "None"), case


def test_a_slow_hook_shows_in_status_and_startup_list(venv, tmp_path):
    python, _, _ = venv
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    slow = make_wheel(wheels, "slow-pkg", "1.0", "[epfinder.startup]\ninit = slow_pkg:init\n",
                      modules={"slow_pkg.py": "import time\ndef init():\n    time.sleep(0.3)\n"})
    pip(python, "install", "--no-index", str(slow), tmp_path=tmp_path)
    out = epfinder(python, "install", tmp_path=tmp_path).stdout
    assert "startup hooks: 1 of 1 run at each start, " in out
    assert float(out.split("slowest slow_pkg:init ")[1].split(" ms")[0]) >= 300, out
    report = json.loads(epfinder(python, "startup", "list", "--json", tmp_path=tmp_path).stdout)
    (hook,) = report["hooks"]
    assert hook["last_call_ms"] >= 300 and hook["last_outcome"] == "ok"
    assert report["startup_hooks"]["last_cost_ms"] >= 300
    listing = epfinder(python, "startup", "list", "--measure", tmp_path=tmp_path).stdout
    assert "last cost: measured just now" in listing or "s ago" in listing


def _installer(kind, python):
    if kind == "pip":
        return [python, "-m", "pip", "--disable-pip-version-check", "-q"], []
    if importlib.util.find_spec("uv") is None:
        pytest.skip("uv is not installed in the test environment (./run-tests installs it)")
    return [sys.executable, "-m", "uv", "-q", "pip"], ["--python", python]


@pytest.mark.parametrize("installer", ["pip", "uv"])
@pytest.mark.parametrize("route", ["installer only", "epfinder uninstall first", "refresh after uninstall"])
def test_uninstalling_leaves_nothing_that_changes_behaviour_later(venv, tmp_path, epfinder_wheel, installer, route):
    python, site, pristine = venv
    command, target = _installer(installer, python)
    epfinder(python, "install", tmp_path=tmp_path)
    # Everything epfinder may leave: caches, a packages_distributions() side file, hook costs.
    run(python, "-c", "import importlib.metadata as md; md.packages_distributions(); md.entry_points()",
        tmp_path=tmp_path)
    run(python, "-c", "pass", tmp_path=tmp_path, env=clean_env(tmp_path, EPFINDER_TRACE="1"))
    per_user = tmp_path / "xdg" / "epfinder"
    if route != "installer only":
        out = epfinder(python, "uninstall", tmp_path=tmp_path).stdout
        assert out.startswith(f"epfinder: switched off for {site}")
        assert not per_user.exists() or list(per_user.iterdir()) == []
    if route == "refresh after uninstall":
        out = epfinder(python, "refresh", tmp_path=tmp_path).stdout
        assert out.startswith(f"epfinder: note: installed in {site}, not enabled")
    subprocess.run([*command, "uninstall", *target, *(["-y"] if installer == "pip" else []), DIST],
                   check=True, capture_output=True, env=os.environ, timeout=300)
    assert set(os.listdir(site)) == pristine, "nothing left in site-packages"
    # A later install of the package does not switch epfinder back on by itself.
    subprocess.run([*command, "install", *target, "--no-index", "--no-deps", str(epfinder_wheel)],
                   check=True, capture_output=True, env=os.environ, timeout=300)
    assert start(python, tmp_path)[0] == "None"
    assert status(python, tmp_path)["environment"]["state"] == "not_enabled"


@pytest.mark.parametrize("argv", [["install"], ["status"], ["startup", "list", "--json"], ["verify"],
                                  ["uninstall"], ["--help"]])
def test_a_pipe_closed_early_is_no_error(venv, tmp_path, argv):
    # `epfinder status | head -1`, made certain: the reading end is closed before the tool writes.
    python, site, _ = venv
    if argv == ["uninstall"]:
        epfinder(python, "install", tmp_path=tmp_path)
    read, write = os.pipe()
    os.close(read)
    try:
        proc = subprocess.run([python, "-m", "epfinder", *argv], stdout=write, stderr=subprocess.PIPE, text=True,
                              env=clean_env(tmp_path), cwd=tmp_path, timeout=300)
    finally:
        os.close(write)
    assert proc.stderr == "" and proc.returncode == 0, proc.stderr
    if argv == ["install"]:
        assert (site / ".epfinder-cache" / "startup-v2.tsv").exists(), "install finished its work"
    if argv == ["uninstall"]:
        assert not (site / ".epfinder-cache").exists()


def test_the_tool_leaves_its_own_sys_path_entry_out(venv, tmp_path):
    python, site, _ = venv
    here = write_tree(tmp_path / "here", dist_info("here", "1.0"))
    script = Path(python).parent / "epfinder"
    epfinder(python, "install", tmp_path=tmp_path)
    epfinder(python, "refresh", tmp_path=tmp_path, cwd=here)
    per_user = tmp_path / "xdg" / "epfinder"
    assert not [p for p in per_user.rglob("here-*")], "no per-user cache for where the tool was run"
    for argv in ([python, "-m", "epfinder"], [python, str(script)]):
        report = json.loads(run(*argv, "status", "--json", tmp_path=tmp_path, cwd=here).stdout)
        paths = [e["path"] for e in report["sys_path"]]
        assert str(here) not in paths and str(script.parent) not in paths and str(site) in paths
        # only mode answers nothing from a directory without a cache: where the tool runs must not count.
        only = clean_env(tmp_path, EPFINDER_MODE="only")
        proc = run(*argv, "verify", tmp_path=tmp_path, cwd=here, env=only, check=False)
        assert proc.returncode == 0, proc.stdout


# --- another user -----------------------------------------------------------------------------------------

OTHER_USER = "epfinder-tester"


def _other_user():
    if os.geteuid() != 0:
        pytest.skip("needs root to create a second user and hand them a root-owned environment")
    try:
        return pwd.getpwnam(OTHER_USER)
    except KeyError:
        subprocess.run(["useradd", "--no-create-home", "--shell", "/bin/sh", OTHER_USER], check=True,
                       capture_output=True)
        return pwd.getpwnam(OTHER_USER)


def _interpreter_for(user):
    """An interpreter (3.10+) the other user can run: this one, or the system's."""
    for candidate in (sys.executable, "/usr/bin/python3"):
        try:
            proc = subprocess.run([candidate, "-c", "import sys; print(sys.version_info >= (3, 10))"],
                                  user=user.pw_uid, group=user.pw_gid, extra_groups=[], capture_output=True,
                                  text=True, cwd="/", timeout=60)
        except OSError:
            continue
        if proc.returncode == 0 and proc.stdout.strip() == "True":
            return candidate
    pytest.skip("no Python 3.10+ that a second user may run (this one lives under a private home)")


def test_another_user_gets_one_line_and_caches_of_their_own(tmp_path, epfinder_wheel):
    user = _other_user()
    base = _interpreter_for(user)
    shared = Path(tempfile.mkdtemp(prefix="epfinder-shared-venv-"))
    home = Path(tempfile.mkdtemp(prefix="epfinder-other-home-"))
    try:
        os.chmod(shared, 0o755)
        os.chown(home, user.pw_uid, user.pw_gid)
        subprocess.run([base, "-m", "venv", "--without-pip", str(shared / "venv")], check=True, capture_output=True)
        python = str(shared / "venv" / "bin" / "python")
        subprocess.run([sys.executable, "-m", "pip", "--python", python, "install", "-q", "--no-index",
                        str(epfinder_wheel)], check=True, capture_output=True)
        site = Path(subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                   check=True, capture_output=True, text=True).stdout.strip())
        subprocess.run([python, "-m", "epfinder", "install"], check=True, capture_output=True, cwd=shared,
                       env=clean_env(tmp_path))

        def as_user(*args):
            return subprocess.run([python, "-m", "epfinder", *args], capture_output=True, text=True, cwd=home,
                                  user=user.pw_uid, group=user.pw_gid, extra_groups=[], timeout=300,
                                  env={"PATH": "/usr/bin:/bin", "HOME": str(home)})

        for argv, message in ((["uninstall"], f"cannot remove the files in {site}/.epfinder-cache: Permission denied"),
                              (["install"], f"cannot write {site}/.epfinder-cache/config: Permission denied")):
            proc = as_user(*argv)
            assert proc.returncode == 1 and proc.stdout == "", (argv, proc.stdout, proc.stderr)
            assert proc.stderr.count("\n") == 1 and message in proc.stderr and "belongs to root" in proc.stderr
        (site / "late-1.0.dist-info").mkdir()
        (site / "late-1.0.dist-info" / "METADATA").write_text("Name: late\nVersion: 1.0\n")
        proc = as_user("refresh")
        assert proc.returncode == 0, proc.stdout + proc.stderr
        (line,) = [line for line in proc.stdout.splitlines() if line.startswith(f"  {site}: ")]
        assert line.split(" -> ")[1].startswith(f"{home}/.cache/epfinder/"), line
        # The finder reads site-packages' own cache first, which only root can bring up to date.
        report = json.loads(as_user("status", "--json").stdout)
        (entry,) = [e for e in report["sys_path"] if e["path"] == str(site)]
        assert entry["state"] == "stale" and entry["cache"] == f"{site}/.epfinder-cache/v2.jsonl"
        assert "rescanned at each query" in entry["message"]
    finally:
        shutil.rmtree(shared, ignore_errors=True)
        shutil.rmtree(home, ignore_errors=True)


# --- the README's commands, as written -----------------------------------------------------------------


def readme_blocks(section):
    """The ```sh blocks of one README section, as lines."""
    text = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    body = text.split(f"\n## {section}\n", 1)[1].split("\n## ", 1)[0]
    return [block.split("\n```", 1)[0].strip().splitlines() for block in body.split("```sh\n")[1:]]


def test_the_readme_set_up_and_uninstall_commands_work_from_a_checkout(tmp_path):
    from helpers import make_venv

    root = Path(__file__).resolve().parent.parent
    checkout = tmp_path / "checkout"
    shutil.copytree(root, checkout, ignore=shutil.ignore_patterns(".venv*", ".nox", ".pythons", "build", "dist", ".git",
                                                                   "__pycache__", ".pytest_cache", ".hypothesis"))
    python = make_venv(tmp_path / "venv")
    site = Path(run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])",
                    tmp_path=tmp_path).stdout.strip())
    pristine = set(os.listdir(site))
    env = clean_env(tmp_path, PATH=f"{Path(python).parent}:/usr/bin:/bin", PIP_CACHE_DIR=str(tmp_path / "pip"))
    set_up, check, uninstall = readme_blocks("Set it up")
    assert set_up == ["python3 -m pip install . && python3 -m epfinder install"]

    def sh(lines, stdin=""):
        for line in lines:
            proc = subprocess.run(["sh", "-c", line.replace("python3 ", f"{python} ")], input=stdin, text=True,
                                  capture_output=True, cwd=checkout, env=env, timeout=600)
            assert proc.returncode == 0 and "Traceback" not in proc.stderr, (line, proc.stdout, proc.stderr)
        return proc.stdout

    assert f"epfinder: enabled for {site} (mode auto)" in sh(set_up)
    assert status(python, tmp_path)["environment"]["state"] == "enabled"
    sh(check)
    sh(uninstall, stdin="y\n")  # pip asks before it uninstalls
    assert set(os.listdir(site)) == pristine
