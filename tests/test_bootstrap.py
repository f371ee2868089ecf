"""The real loop: pip install importlib-metadata-cache, python -m epfinder install, pip install/uninstall others.

Everything runs in a fresh venv made with `python -m venv`, with epfinder installed from a wheel
built from this checkout, and child interpreters that start through real `site` processing.
"""

import json
import os
import shutil
import sys

import pytest

from helpers import clean_env, make_wheel, pip, run

pytestmark = pytest.mark.slow


ASK = """
import sys, json
import importlib.metadata as md
boot = sys.modules.get("_epfinder_boot")
try:
    version = md.version("plugin-pkg")
except md.PackageNotFoundError:
    version = None
print(json.dumps({
    "mode": boot and boot.mode,
    "version": version,
    "plugins": sorted((e.name, e.value) for e in md.entry_points(group="demo.plugins")),
    "dists": [d.metadata["Name"] for d in md.distributions()],
}))
"""


# What site imports to read the first .pth file of an environment, from 3.13 (utf-8-sig decoding).
PTH_CODEC = {"encodings.utf_8_sig"} if sys.version_info >= (3, 13) else set()


def ask(python, tmp_path, mode=None):
    env = clean_env(tmp_path, **({"EPFINDER_MODE": mode} if mode else {}))
    return json.loads(run(python, "-c", ASK, tmp_path=tmp_path, env=env).stdout)


def startup_modules(python, tmp_path, **env):
    out = run(python, "-c", "import sys, json; print(json.dumps(sorted(sys.modules)))",
              tmp_path=tmp_path, env=clean_env(tmp_path, **env)).stdout
    return set(json.loads(out))


def test_install_pip_loop_and_clean_uninstall(venv, tmp_path):
    python, site, pristine = venv
    plain_modules = startup_modules(python, tmp_path)
    assert ask(python, tmp_path)["mode"] is None, "inert until enabled"
    # pip install alone gives site nothing to read or run: such a start is a start without epfinder.
    assert "_epfinder_boot" not in plain_modules
    assert not [n for n in set(os.listdir(site)) - pristine if n.endswith((".pth", ".start"))]

    out = run(python, "-m", "epfinder", "install", tmp_path=tmp_path).stdout
    assert f"enabled for {site}" in out
    assert (site / "epfinder.pth").is_file()
    assert "already enabled" in run(python, "-m", "epfinder", "install", tmp_path=tmp_path).stdout

    # Start-up imports nothing but epfinder's own start-up module, atexit (built in: no file) and,
    # from 3.13, the codec site imports to read any .pth file (the venv had none before install).
    assert startup_modules(python, tmp_path) - plain_modules == {"_epfinder_boot", "atexit", *PTH_CODEC}

    wheels = tmp_path / "wheels"
    wheels.mkdir()
    v1 = make_wheel(wheels, "plugin-pkg", "1.0", "[demo.plugins]\nfirst = plugin_pkg:main\n")
    v2 = make_wheel(wheels, "plugin-pkg", "2.0", "[demo.plugins]\nfirst = plugin_pkg:main\nsecond = plugin_pkg:main\n")
    expected_versions = iter(["1.0", "2.0", None])
    for step in (["install", "--no-index", str(v1)], ["install", "--no-index", str(v2)],
                 ["uninstall", "-y", "plugin-pkg"]):
        pip(python, *step, tmp_path=tmp_path)
        served, plain = ask(python, tmp_path), ask(python, tmp_path, mode="off")
        assert served["mode"] == "auto" and plain["mode"] is None
        assert served["version"] == next(expected_versions)
        del served["mode"], plain["mode"]
        assert served == plain

    # The query healed the cache of site-packages.
    status = json.loads(run(python, "-m", "epfinder", "status", "--json", tmp_path=tmp_path).stdout)
    (entry,) = [e for e in status["sys_path"] if e["path"] == str(site)]
    assert entry["state"] == "fresh" and entry["cache"].startswith(str(site))
    assert (status["environment"]["state"], status["environment"]["mode"]) == ("enabled", "auto")

    out = run(python, "-m", "epfinder", "uninstall", tmp_path=tmp_path).stdout
    assert "switched off" in out
    assert ask(python, tmp_path)["mode"] is None
    pip(python, "uninstall", "-y", "importlib-metadata-cache", tmp_path=tmp_path)
    assert set(os.listdir(site)) == pristine, "nothing left behind"
    per_user = tmp_path / "xdg" / "epfinder"
    assert not per_user.exists() or list(per_user.iterdir()) == [], "nor any per-user cache"


@pytest.mark.parametrize(
    "damage", ["config-is-a-directory", "boot-module-deleted", "package-deleted", "bad-mode", "bad-config-mode",
               "cache-garbage", "hook-table-garbage"]
)
def test_a_damaged_install_never_stops_the_interpreter(venv, tmp_path, damage):
    python, site, _ = venv
    run(python, "-m", "epfinder", "install", tmp_path=tmp_path)
    env = clean_env(tmp_path)
    if damage == "config-is-a-directory":
        config = site / ".epfinder-cache" / "config"
        config.unlink()
        config.mkdir()
    elif damage == "boot-module-deleted":
        (site / "_epfinder_boot.py").unlink()
        shutil.rmtree(site / "__pycache__", ignore_errors=True)
    elif damage == "package-deleted":
        shutil.rmtree(site / "epfinder")
    elif damage == "bad-mode":
        env["EPFINDER_MODE"] = "sideways"
    elif damage == "bad-config-mode":
        with open(site / ".epfinder-cache" / "config", "a") as f:
            f.write("mode = sideways\n")
    elif damage == "cache-garbage":
        (site / ".epfinder-cache" / "v1.jsonl").write_bytes(os.urandom(3000))
    else:
        (site / ".epfinder-cache" / "startup-v2.tsv").write_bytes(b"epfinder-startup\t1\nhook\t\xff\n")
    proc = run(python, "-c", ASK, tmp_path=tmp_path, env=env)
    answers = json.loads(proc.stdout)
    plain = ask(python, tmp_path, mode="off")
    assert {k: v for k, v in answers.items() if k != "mode"} == {k: v for k, v in plain.items() if k != "mode"}
    if damage in ("package-deleted", "cache-garbage", "hook-table-garbage"):
        assert answers["mode"] == "auto", "the start-up module still ran"
    else:
        assert answers["mode"] is None
    if damage == "bad-mode":
        assert proc.stderr.count("\n") == 1 and "unknown EPFINDER_MODE 'sideways'" in proc.stderr
    elif damage == "bad-config-mode":
        assert proc.stderr.count("\n") == 1 and "unknown mode in " in proc.stderr and "'sideways'" in proc.stderr
    else:
        assert proc.stderr == ""
    if damage in ("cache-garbage", "hook-table-garbage"):
        status = json.loads(run(python, "-m", "epfinder", "status", "--json", tmp_path=tmp_path).stdout)
        (entry,) = [e for e in status["sys_path"] if e["path"] == str(site)]
        assert entry["state"] == "fresh", "healed by the query"


def test_isolated_mode_ignores_the_environment_variable(venv, tmp_path):
    python, _, _ = venv
    run(python, "-m", "epfinder", "install", tmp_path=tmp_path)
    env = clean_env(tmp_path, EPFINDER_MODE="off")
    code = "import sys; print(sys.modules['_epfinder_boot'].mode)"
    assert run(python, "-c", code, tmp_path=tmp_path, env=env).stdout.strip() == "None"
    assert run(python, "-I", "-c", code, tmp_path=tmp_path, env=env).stdout.strip() == "auto"


def test_python_dash_s_upper_leaves_epfinder_out(venv, tmp_path):
    # -S processes no .pth file: epfinder stays off and no startup hook runs, on every Python
    # (3.15's .pth and .start handling included).
    python, site, _ = venv
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    hook = make_wheel(wheels, "hook-pkg", "1.0", "[epfinder.startup]\nhook = hook_pkg:main\n",
                      modules={"hook_pkg.py": "def main():\n    print('hook ran')\n"})
    pip(python, "install", "--no-index", str(hook), tmp_path=tmp_path)
    run(python, "-m", "epfinder", "install", tmp_path=tmp_path)
    assert run(python, "-c", "pass", tmp_path=tmp_path).stdout == "hook ran\n"
    code = "import sys; print('_epfinder_boot' in sys.modules)"
    assert run(python, "-S", "-c", code, tmp_path=tmp_path).stdout == "False\n"


HOOK = """
import importlib, sys, json
import importlib.metadata as md
boot = sys.modules["_epfinder_boot"]
importlib.invalidate_caches()
print(json.dumps([any(isinstance(f, boot.MetadataImportHook) for f in sys.meta_path),
                  md.version("importlib-metadata-cache") is not None, boot.mode]))
"""


def test_the_import_hook_leaves_once_importlib_metadata_is_handled_unless_the_backport_is_there(venv, tmp_path):
    # Each meta path entry costs every later import of the process; once importlib.metadata has its
    # stand-ins, the hook is only needed for the backport, which the hook table knows is installed
    # or not. Where it is installed, or in trust mode (invalidate_caches() must reach epfinder),
    # the hook stays.
    python, _site, _pristine = venv
    run(python, "-m", "epfinder", "install", tmp_path=tmp_path)

    def hook(mode=None):
        env = clean_env(tmp_path, **({"EPFINDER_MODE": mode} if mode else {}))
        return json.loads(run(python, "-c", HOOK, tmp_path=tmp_path, env=env).stdout)

    assert hook() == [False, True, "auto"]
    assert hook("strict") == [False, True, "strict"]
    assert hook("trust") == [True, True, "trust"]
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    pip(python, "install", "--no-index", str(make_wheel(wheels, "importlib-metadata", "99.0")), tmp_path=tmp_path)
    assert hook() == [True, True, "auto"]
    pip(python, "uninstall", "-y", "importlib-metadata", tmp_path=tmp_path)
    # The first start after a change rescans (and keeps the hook: the table it read was stale).
    assert hook() == [True, True, "auto"]
    assert hook() == [False, True, "auto"]
