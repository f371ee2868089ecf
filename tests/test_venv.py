"""A real venv, real pip: what pip installs or removes is seen by the very next query."""

import json
import subprocess

import pytest

from helpers import EPFINDER_ROOT, make_venv, make_wheel

pytestmark = pytest.mark.slow

QUERY = """
import sys, json
sys.path.append({root!r})
if sys.argv[1] == "on":
    import epfinder; epfinder.enable()
import importlib.metadata as md
def ask():
    try:
        version = md.version("plugin-pkg")
    except md.PackageNotFoundError:
        version = None
    return [version, sorted((e.name, e.value) for e in md.entry_points(group="demo.plugins")),
            sorted(d.metadata["Name"] for d in md.distributions())]
answers = [ask()]
for line in sys.stdin:   # one query per line of input: pip runs between them
    answers.append(ask())
print(json.dumps(answers))
"""


def run(python, mode, tmp_path, stdin=""):
    proc = subprocess.run(
        [python, "-c", QUERY.format(root=EPFINDER_ROOT), mode],
        input=stdin, capture_output=True, text=True, timeout=120,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "XDG_CACHE_HOME": str(tmp_path / "xdg")},
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def pip(python, *args):
    subprocess.run([python, "-m", "pip", "--disable-pip-version-check", "-q", *args],
                   check=True, timeout=300, capture_output=True)


def test_pip_install_and_uninstall_between_queries(tmp_path):
    python = make_venv(tmp_path / "venv")
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    v1 = make_wheel(wheels, "plugin-pkg", "1.0", "[demo.plugins]\nfirst = plugin_pkg:main\n")
    v2 = make_wheel(wheels, "plugin-pkg", "2.0",
                    "[demo.plugins]\nfirst = plugin_pkg:main\nsecond = plugin_pkg:main\n")

    assert run(python, "on", tmp_path) == run(python, "off", tmp_path)  # builds the caches
    for step in (["install", "--no-index", str(v1)], ["install", "--no-index", str(v2)],
                 ["uninstall", "-y", "plugin-pkg"]):
        pip(python, *step)
        on, off = run(python, "on", tmp_path), run(python, "off", tmp_path)
        assert on == off
    assert on[0][0] is None

    # A long-running process sees each change at its next query too.
    proc = subprocess.Popen(
        [python, "-c", QUERY.format(root=EPFINDER_ROOT), "on"], stdin=subprocess.PIPE,
        stdout=subprocess.PIPE, text=True,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "XDG_CACHE_HOME": str(tmp_path / "xdg")},
    )
    pip(python, "install", "--no-index", str(v1))
    proc.stdin.write("\n")
    proc.stdin.flush()
    pip(python, "install", "--no-index", str(v2))
    proc.stdin.write("\n")
    proc.stdin.flush()
    pip(python, "uninstall", "-y", "plugin-pkg")
    out, _ = proc.communicate("\n", timeout=120)
    answers = json.loads(out)
    assert [a[0] for a in answers] == [None, "1.0", "2.0", None]
    assert [len(a[1]) for a in answers] == [0, 1, 2, 0]
