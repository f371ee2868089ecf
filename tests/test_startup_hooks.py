"""Startup hooks end to end: a real venv, real pip, local wheels that register epfinder.startup hooks.

Each hook prints a line, so the child's stdout shows exactly which hooks ran and in which order.
"""

import json
import sys
import time

import pytest

from helpers import clean_env, make_wheel, pip, run

pytestmark = pytest.mark.slow

GROUP = "[epfinder.startup]\n"

# name, version, entry points, module source
PACKAGES = [
    ("early-pkg", GROUP + "050-early = early_pkg:run\n",
     "def run():\n    print('early')\n"),
    ("alpha-pkg", GROUP + "telemetry = alpha_pkg:run\n900-late = alpha_pkg:late\n",
     "def run():\n    print('alpha:telemetry')\n\ndef late():\n    print('alpha:late')\n"),
    # ties at 500 are broken by distribution, then label: beta:boom before beta:telemetry
    ("beta-pkg", GROUP + "telemetry = beta_pkg:run\nboom = beta_pkg:boom\n[console_scripts]\nbeta = beta_pkg:run\n",
     "def run():\n    print('beta:telemetry')\n\ndef boom():\n    raise RuntimeError('beta exploded')\n"),
    ("gamma-pkg", GROUP + "200-missing = gamma_not_there:run\n",
     "X = 1\n"),
    ("delta-pkg", GROUP + "300-off = delta_pkg:run\n",
     "def run():\n    print('delta')\n"),
    # Guards driven by the environment, so that one venv covers veto and exit.
    ("guard-pkg", GROUP + "000-audit = guard_pkg:audit\n990-exit = guard_pkg:leave\n",
     "import os, sys\n"
     "def audit():\n"
     "    def veto(event, args):\n"
     "        if event == 'epfinder.startup' and args[0] == os.environ.get('VETO'):\n"
     "            raise RuntimeError('vetoed ' + args[0])\n"
     "    sys.addaudithook(veto)\n"
     "def leave():\n"
     "    if os.environ.get('LEAVE'):\n"
     "        raise SystemExit(3)\n"),
]

EXPECTED = ["sitecustomize", "early", "alpha:telemetry", "beta:telemetry", "alpha:late", "main"]


def wheel_for(tmp_path, name, entry_points, source, version="1.0"):
    folder = tmp_path / "wheels"
    folder.mkdir(exist_ok=True)
    return make_wheel(folder, name, version, entry_points,
                      modules={f"{name.replace('-', '_')}.py": source})


def start(python, tmp_path, check=True, args=(), cwd=None, **env):
    proc = run(python, *args, "-c", "print('main')", tmp_path=tmp_path,
               env=clean_env(tmp_path, **env), check=check, cwd=cwd)
    return proc.stdout.splitlines(), proc.stderr.splitlines(), proc.returncode


def skip_hint(hook_id):
    return f"; skip it with EPFINDER_STARTUP_SKIP={hook_id} or python -m epfinder startup disable {hook_id}"


def listed(python, tmp_path, **env):
    out = run(python, "-m", "epfinder", "startup", "list", "--json", tmp_path=tmp_path,
              env=clean_env(tmp_path, EPFINDER_STARTUP="0", **env)).stdout
    return json.loads(out[out.index("{"):])  # after sitecustomize's line


def test_hooks_run_in_order_isolated_and_switchable(venv, tmp_path):
    python, site, _ = venv
    wheels = [str(wheel_for(tmp_path, name, eps, source)) for name, eps, source in PACKAGES]
    pip(python, "install", "--no-index", *wheels, tmp_path=tmp_path)
    (site / "sitecustomize.py").write_text("print('sitecustomize')\n")

    # Inert until the environment is enabled.
    assert start(python, tmp_path)[:2] == (["sitecustomize", "main"], [])

    run(python, "-m", "epfinder", "install", tmp_path=tmp_path)
    assert (site / ".epfinder-cache" / "startup-v2.tsv").exists(), "install writes the hook table"
    out = run(python, "-m", "epfinder", "startup", "disable", "delta-pkg:off", tmp_path=tmp_path,
              env=clean_env(tmp_path, EPFINDER_STARTUP="0")).stdout
    assert out.splitlines()[-1] == "epfinder: disabled delta_pkg:off"

    stdout, stderr, status = start(python, tmp_path)
    assert stdout == EXPECTED, "after sitecustomize, by priority, then distribution, then label"
    assert status == 0
    assert stderr == [
        "epfinder: startup hook gamma_pkg:missing (gamma-pkg 1.0, gamma_not_there:run) could not be "
        "loaded: ModuleNotFoundError: No module named 'gamma_not_there'" + skip_hint("gamma_pkg:missing"),
        "epfinder: startup hook beta_pkg:boom (beta-pkg 1.0, beta_pkg:boom) failed: RuntimeError: beta exploded"
        + skip_hint("beta_pkg:boom"),
    ]

    # `startup list` shows the same order, and imports no hook module.
    table = listed(python, tmp_path)
    assert [(h["id"], h["priority"], h["priority_source"], h["state"]) for h in table["hooks"]] == [
        ("guard_pkg:audit", 0, "name", "all_off"),
        ("early_pkg:early", 50, "name", "all_off"),
        ("gamma_pkg:missing", 200, "name", "all_off"),
        ("delta_pkg:off", 300, "name", "disabled"),
        ("alpha_pkg:telemetry", 500, "default", "all_off"),
        ("beta_pkg:boom", 500, "default", "all_off"),
        ("beta_pkg:telemetry", 500, "default", "all_off"),
        ("alpha_pkg:late", 900, "name", "all_off"),
        ("guard_pkg:exit", 990, "name", "all_off"),
    ]
    assert table["hooks"][3]["message"] == "disabled (python -m epfinder startup enable delta_pkg:off)"
    assert {(h["distribution"], h["version"], h["site_dir"]) for h in table["hooks"]} >= {
        ("alpha-pkg", "1.0", str(site))}
    code = ("import sys, epfinder._cli as cli; cli.main(['startup', 'list']); "
            "print(sorted(m for m in sys.modules if m.endswith('_pkg') or m == 'importlib.metadata'))")
    out = run(python, "-c", code, tmp_path=tmp_path, env=clean_env(tmp_path, EPFINDER_STARTUP="0")).stdout
    assert out.splitlines()[-1] == "[]"
    assert out.splitlines()[:2] == ["sitecustomize",
                                    f"startup hooks for {site}: 9 registered; none runs while EPFINDER_STARTUP=0"]

    # Environment switches, and -I ignoring them.
    assert start(python, tmp_path, EPFINDER_STARTUP="0")[0] == ["sitecustomize", "main"]
    assert start(python, tmp_path, EPFINDER_STARTUP_SKIP="Beta-Pkg:*, early-pkg:early")[0] == [
        "sitecustomize", "alpha:telemetry", "alpha:late", "main"]
    assert start(python, tmp_path, args=["-I"], EPFINDER_STARTUP="0")[0] == EXPECTED

    # Persistent settings: a priority override, and enabling again.
    run(python, "-m", "epfinder", "startup", "priority", "alpha_pkg:late", "10", tmp_path=tmp_path)
    run(python, "-m", "epfinder", "startup", "enable", "delta_pkg:off", tmp_path=tmp_path)
    assert start(python, tmp_path)[0] == [
        "sitecustomize", "alpha:late", "early", "delta", "alpha:telemetry", "beta:telemetry", "main"]
    run(python, "-m", "epfinder", "startup", "priority", "alpha_pkg:late", "default", tmp_path=tmp_path)
    run(python, "-m", "epfinder", "startup", "disable", "delta_pkg:*", tmp_path=tmp_path)

    # An audit hook can veto one hook. A hook's SystemExit is one more failure (test_security.py
    # has the full case): the start goes on.
    stdout, stderr, _ = start(python, tmp_path, VETO="alpha_pkg:telemetry")
    assert stdout == [line for line in EXPECTED if line != "alpha:telemetry"]
    assert ("epfinder: startup hook alpha_pkg:telemetry (alpha-pkg 1.0, alpha_pkg:run) was vetoed by an "
            "audit hook: RuntimeError: vetoed alpha_pkg:telemetry" + skip_hint("alpha_pkg:telemetry")) in stderr
    stdout, stderr, status = start(python, tmp_path, LEAVE="1")
    assert (stdout, status) == (EXPECTED, 0)
    assert ("epfinder: startup hook guard_pkg:exit (guard-pkg 1.0, guard_pkg:leave) failed: sys.exit(3) ignored"
            + skip_hint("guard_pkg:exit")) in stderr

    # EPFINDER_TRACE: one line per hook that ran, one per hook skipped, and a summary.
    _, stderr, _ = start(python, tmp_path, EPFINDER_TRACE="1")
    trace = [line for line in stderr if line.startswith("epfinder: startup: ")]
    assert len(trace) == 1 + 6 + 1 + 1, stderr
    assert trace[-1].startswith("epfinder: startup: ran 8 hook(s), 2 failed, 1 skipped, ")
    assert any("Traceback" in line for line in stderr), "the traceback is shown under EPFINDER_TRACE"

    # A *.dist-info in the current directory or on PYTHONPATH never runs code at start.
    rogue = tmp_path / "rogue"
    (rogue / "rogue-1.0.dist-info").mkdir(parents=True)
    (rogue / "rogue-1.0.dist-info" / "METADATA").write_text("Name: rogue\nVersion: 1.0\n")
    (rogue / "rogue-1.0.dist-info" / "entry_points.txt").write_text(GROUP + "001-x = rogue_mod:run\n")
    (rogue / "rogue_mod.py").write_text("print('rogue')\n\ndef run():\n    print('rogue ran')\n")
    assert start(python, tmp_path, cwd=rogue, PYTHONPATH=str(rogue))[0] == EXPECTED
    proc = run(python, str(rogue / "rogue_mod.py"), tmp_path=tmp_path, cwd=rogue)  # the script's directory
    assert proc.stdout.splitlines() == EXPECTED[:-1] + ["rogue"]

    # pip install of a new hook package runs at the very next start; pip uninstall stops it.
    new = wheel_for(tmp_path, "epsilon-pkg", GROUP + "010-new = epsilon_pkg:run\n",
                    "def run():\n    print('epsilon')\n")
    pip(python, "install", "--no-index", str(new), tmp_path=tmp_path)
    assert start(python, tmp_path)[0] == ["sitecustomize", "epsilon"] + EXPECTED[1:]
    pip(python, "uninstall", "-y", "alpha-pkg", tmp_path=tmp_path)
    expected = ["sitecustomize", "epsilon", "early", "beta:telemetry", "main"]
    assert start(python, tmp_path)[0] == expected

    # Once site-packages has settled, a start writes the new table down, and later starts read it.
    time.sleep(3.5)
    assert start(python, tmp_path)[0] == expected
    written = (site / ".epfinder-cache" / "startup-v2.tsv").read_text()
    assert "epsilon_pkg:run" in written and "alpha_pkg" not in written
    assert start(python, tmp_path)[0] == expected
    assert listed(python, tmp_path)["hooks"][1]["id"] == "epsilon_pkg:new"

    # Uninstall removes the table with everything else; nothing runs afterwards.
    run(python, "-m", "epfinder", "uninstall", tmp_path=tmp_path)
    assert not (site / ".epfinder-cache").exists()
    assert start(python, tmp_path)[0] == ["sitecustomize", "main"]


def test_start_up_imports_nothing_heavy_with_hooks_registered(venv, tmp_path):
    python, site, _ = venv
    pip(python, "install", "--no-index",
        str(wheel_for(tmp_path, "quiet-pkg", GROUP + "q = quiet_pkg:run\n", "def run():\n    pass\n")),
        tmp_path=tmp_path)
    code = "import sys, json; print(json.dumps(sorted(sys.modules)))"
    before = set(json.loads(run(python, "-c", code, tmp_path=tmp_path).stdout))
    run(python, "-m", "epfinder", "install", tmp_path=tmp_path)
    after = set(json.loads(run(python, "-c", code, tmp_path=tmp_path).stdout))
    # From 3.13 site imports a codec to read any .pth file, and the venv had none before install.
    codec = {"encodings.utf_8_sig"} if sys.version_info >= (3, 13) else set()
    assert after - before == {"_epfinder_boot", "atexit", "quiet_pkg", *codec}
    # Right after a change, the start rescans site-packages with the small reader.
    (site / "unrelated-1.0.dist-info").mkdir()
    after = set(json.loads(run(python, "-c", code, tmp_path=tmp_path).stdout))
    assert after - before == {"_epfinder_boot", "atexit", "quiet_pkg", "epfinder", "epfinder._startup_table",
                              "epfinder._startup_entries", "epfinder._startup_atomic", *codec}
    assert not after & {"importlib.metadata", "re", "email", "threading"} - before
