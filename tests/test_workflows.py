"""Real workflows, real tools: after each change, epfinder answers exactly as a plain scan does.

Each test makes a real venv with epfinder installed from its wheel and switched on
(``python -m epfinder install``), changes it the way users do (editable installs with setuptools,
hatchling and flit, reinstalls with pip and uv, dpkg upgrades, tar, a slow install), and compares
the answers with ``EPFINDER_MODE=off`` in the same environment: in fresh interpreters right after
the change, in long-running processes started before it, and again a moment later (when caches
written in between are read).
"""

import json
import os
import shutil
import subprocess
import sys
import tarfile
import textwrap
import time
from pathlib import Path

import pytest

from helpers import clean_env, make_wheel, run, write_tree

pytestmark = pytest.mark.slow

ASK = str(Path(__file__).resolve().parent / "ask.py")
class World:
    """An enabled venv and the environment its programs run in."""

    def __init__(self, venv, tmp_path, wheelhouse):
        self.python = venv.python
        self.site = venv.site
        self.tmp_path = tmp_path
        self.wheelhouse = wheelhouse
        # /usr/sbin: dpkg looks for ldconfig and start-stop-daemon on PATH.
        self.env = clean_env(tmp_path, PATH="/usr/bin:/bin:/usr/sbin:/sbin", PIP_FIND_LINKS=str(wheelhouse),
                             PIP_NO_INDEX="1", PIP_DISABLE_PIP_VERSION_CHECK="1",
                             UV_CACHE_DIR=str(tmp_path / "uv-cache"))
        self.servers = []
        run(self.python, "-m", "epfinder", "install", tmp_path=tmp_path, env=self.env)

    def sh(self, *args, cwd=None):
        proc = subprocess.run(args, capture_output=True, text=True, timeout=600, env=self.env,
                              cwd=cwd or self.tmp_path)
        assert proc.returncode == 0, f"{args}: {proc.stdout}{proc.stderr}"
        return proc

    def pip(self, *args, cwd=None):
        return self.sh(self.python, "-m", "pip", "-q", *args, cwd=cwd)

    def ask(self, spec, mode):
        env = dict(self.env, EPFINDER_MODE="off") if mode == "off" else self.env
        proc = subprocess.run([self.python, ASK, json.dumps(spec)], capture_output=True, text=True,
                              timeout=120, env=env, cwd=self.tmp_path)
        assert proc.returncode == 0 and not proc.stderr, proc.stderr
        return json.loads(proc.stdout)

    def serve(self):
        """Two long-running processes, epfinder on and off, started now."""
        pair = []
        for mode in ("on", "off"):
            env = dict(self.env, EPFINDER_MODE="off") if mode == "off" else self.env
            pair.append(subprocess.Popen([self.python, ASK, "serve"], stdin=subprocess.PIPE,
                                         stdout=subprocess.PIPE, text=True, env=env, cwd=self.tmp_path))
        self.servers.append(pair)
        return pair

    def same(self, spec, servers=None, expect=None):
        """Fresh interpreters on and off agree, so do the long-running pair; returns the answer."""
        on, off = self.ask(spec, "on"), self.ask(spec, "off")
        assert on == off
        if servers is not None:
            answers = []
            for proc in servers:
                proc.stdin.write(json.dumps(spec) + "\n")
                proc.stdin.flush()
                answers.append(json.loads(proc.stdout.readline()))
            assert answers[0] == answers[1], "long-running processes disagree"
            assert {k: v for k, v in answers[1].items() if not k.startswith("held ")} == \
                {k: v for k, v in off.items() if not k.startswith("held ")}
        if expect is not None:
            for key, value in expect.items():
                assert on[key] == value, key
        return on

    def settled(self, spec, servers=None, expect=None):
        """Right after the change, and again once caches written meanwhile are read."""
        first = self.same(spec, servers, expect)
        time.sleep(1.1)
        assert self.same(spec, servers, expect) == first
        return first

    def close(self):
        for pair in self.servers:
            for proc in pair:
                proc.stdin.close()
                proc.wait(timeout=60)


@pytest.fixture
def world(venv, tmp_path, wheelhouse):
    w = World(venv, tmp_path, wheelhouse)
    yield w
    w.close()


def ok(value):
    return ["ok", value]


# --- editable installs ---------------------------------------------------------------------------------

SETUPTOOLS_PROJECT = """\
[build-system]
requires = ["setuptools>=77"]
build-backend = "setuptools.build_meta"

[project]
name = "edpkg"
version = "{version}"

[project.entry-points."edpkg.plugins"]
{plugin} = "edpkg:{plugin}"
"""


def setuptools_project(root, layout, version, plugin):
    package = root / "src" / "edpkg" if layout == "src" else root / "edpkg"
    write_tree(root, {
        "pyproject.toml": SETUPTOOLS_PROJECT.format(version=version, plugin=plugin),
        str(package.relative_to(root) / "__init__.py"): f"def {plugin}():\n    return 1\n",
    })
    if layout == "src":
        (root / "src" / "edpkg" / "__init__.py").write_text(f"def {plugin}():\n    return 1\n")


@pytest.mark.parametrize("layout, isolation", [("src", True), ("src", False), ("flat", True)])
def test_setuptools_editable_reinstall(world, layout, isolation):
    # setuptools rewrites <project>/[src/]edpkg.egg-info/* in place; with PYTHONPATH=src (or
    # `python -m pytest` from a flat project's root) that egg-info is what importlib finds first.
    project = world.tmp_path / "edpkg"
    setuptools_project(project, layout, "1.0", "one")
    args = ["install", "-e", "."] + ([] if isolation else ["--no-build-isolation"])
    if not isolation:
        world.pip("install", "setuptools>=77", "wheel")
    world.env["PYTHONPATH"] = str(project / "src" if layout == "src" else project)
    world.pip(*args, cwd=project)
    spec = {"names": ["edpkg"], "groups": ["edpkg.plugins"], "hold": ["edpkg"]}
    servers = world.serve()
    world.settled(spec, servers, {"version(edpkg)": ok("1.0")})
    setuptools_project(project, layout, "2.0", "two")
    world.pip(*args, cwd=project)
    world.settled(spec, servers, {"version(edpkg)": ok("2.0"),
                                  "entry_points(group=edpkg.plugins)": ok([["edpkg.plugins", "two", "edpkg:two"]])})


def test_legacy_setup_py_develop_rerun(world):
    # `setup.py develop`: an .egg-link, the project root on sys.path through easy-install.pth,
    # and its egg-info rewritten in place by the next run.
    world.pip("install", "setuptools<80")
    project = world.tmp_path / "legacy"
    setup = "from setuptools import setup\nsetup(name='legacy', version='{v}', py_modules=['legacy'])\n"
    write_tree(project, {"setup.py": setup.format(v="1.0"), "legacy.py": ""})
    world.sh(world.python, "setup.py", "-q", "develop", cwd=project)
    spec = {"names": ["legacy"], "hold": ["legacy"]}
    servers = world.serve()
    world.settled(spec, servers, {"version(legacy)": ok("1.0")})
    (project / "setup.py").write_text(setup.format(v="1.1"))
    world.sh(world.python, "setup.py", "-q", "develop", cwd=project)
    world.settled(spec, servers, {"version(legacy)": ok("1.1"), "metadata(legacy)": ok("1.1")})


BACKEND_PROJECTS = {
    "hatchling": ('requires = ["hatchling"]\nbuild-backend = "hatchling.build"\n',
                  '[tool.hatch.build.targets.wheel]\npackages = ["src/hpkg"]\n'),
    "flit": ('requires = ["flit_core>=3.4"]\nbuild-backend = "flit_core.buildapi"\n',
             '[tool.flit.module]\nname = "hpkg"\n'),
}


@pytest.mark.parametrize("backend", sorted(BACKEND_PROJECTS))
def test_pep660_editable_reinstall_with_other_backends(world, backend):
    build_system, tool = BACKEND_PROJECTS[backend]
    project = world.tmp_path / "hpkg"

    def write(version, plugin):
        write_tree(project, {
            "pyproject.toml": f'[build-system]\n{build_system}\n[project]\nname = "hpkg"\n'
                              f'version = "{version}"\ndescription = "d"\n'
                              f'[project.entry-points."hpkg.plugins"]\n{plugin} = "hpkg:{plugin}"\n\n{tool}',
            "src/hpkg/__init__.py" if backend == "hatchling" else "hpkg/__init__.py": '"""d"""\n',
        })

    write("1.0", "one")
    world.pip("install", "-e", ".", cwd=project)
    spec = {"names": ["hpkg"], "groups": ["hpkg.plugins"], "hold": ["hpkg"]}
    servers = world.serve()
    world.settled(spec, servers, {"version(hpkg)": ok("1.0")})
    write("2.0", "two")
    world.pip("install", "-e", ".", cwd=project)
    world.settled(spec, servers, {"version(hpkg)": ok("2.0")})


# --- reinstalls of the same version ------------------------------------------------------------------


def same_version_wheels(tmp_path):
    """Two wheels of plug 1.0 whose entry points differ, as a rebuilt release has."""
    first, second = tmp_path / "w1", tmp_path / "w2"
    first.mkdir()
    second.mkdir()
    return (make_wheel(first, "plug", "1.0", "[demo]\nold = plug:old\n"),
            make_wheel(second, "plug", "1.0", "[demo]\nnew = plug:new\n[epfinder.startup]\nhook = plug:main\n"))


def test_pip_force_reinstall_of_the_same_version(world):
    v1, v2 = same_version_wheels(world.tmp_path)
    world.pip("install", str(v1))
    spec = {"names": ["plug"], "groups": ["demo"], "hold": ["plug"]}
    servers = world.serve()
    world.settled(spec, servers, {"entry_points(group=demo)": ok([["demo", "old", "plug:old"]])})
    world.pip("install", "--force-reinstall", str(v2))
    answer = world.settled(spec, servers, {"entry_points(group=demo)": ok([["demo", "new", "plug:new"]])})
    assert answer["distribution(plug).entry_points"][1][0] == ["demo", "new", "plug:new"]
    listed = world.sh(world.python, "-m", "epfinder", "startup", "list").stdout
    assert "plug:hook" in listed


@pytest.fixture(scope="session")
def uv():
    found = shutil.which("uv", path=os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "")]))
    if found is None:
        pytest.skip("uv is not installed (the nox session installs it)")
    return found


def test_uv_install_reinstall_and_editable(world, uv):
    uv_pip = [uv, "pip", "install", "--python", world.python, "--no-index", "--find-links", str(world.wheelhouse)]
    v1, v2 = same_version_wheels(world.tmp_path)
    world.sh(*uv_pip, str(v1))
    spec = {"names": ["plug", "edpkg"], "groups": ["demo", "edpkg.plugins"], "hold": ["plug"]}
    project = world.tmp_path / "edpkg"
    world.env["PYTHONPATH"] = str(project / "src")  # created later, by the editable install below
    servers = world.serve()
    world.settled(spec, servers, {"version(plug)": ok("1.0")})
    world.sh(*uv_pip, "--reinstall", str(v2))
    world.settled(spec, servers, {"entry_points(group=demo)": ok([["demo", "new", "plug:new"]])})
    setuptools_project(project, "src", "1.0", "one")
    world.sh(*uv_pip, "-e", ".", cwd=project)
    world.settled(spec, servers, {"version(edpkg)": ok("1.0")})
    setuptools_project(project, "src", "2.0", "two")
    world.sh(*uv_pip, "-e", ".", cwd=project)
    world.settled(spec, servers, {"version(edpkg)": ok("2.0")})


# --- files replaced inside an existing metadata directory -------------------------------------------


def build_deb(tmp_path, target, revision, plugin):
    """python3-foo 1.0-<revision>, holding <target>/foo-1.0.egg-info (as Debian ships them)."""
    pkg = tmp_path / f"deb-{revision}"
    info = pkg / target.relative_to("/") / "foo-1.0.egg-info"
    write_tree(pkg, {
        "DEBIAN/control": f"Package: python3-foo\nVersion: 1.0-{revision}\nArchitecture: all\n"
                          "Maintainer: tests <tests@example.invalid>\nDescription: test package\n",
        str(info.relative_to(pkg) / "PKG-INFO"): "Metadata-Version: 1.1\nName: foo\nVersion: 1.0\n",
        str(info.relative_to(pkg) / "entry_points.txt"): f"[demo]\n{plugin} = foo:{plugin}\n",
        str(info.relative_to(pkg) / "top_level.txt"): f"foo_{plugin}\n",
    })
    deb = tmp_path / f"foo-{revision}.deb"
    subprocess.run(["dpkg-deb", "--root-owner-group", "-b", str(pkg), str(deb)], check=True,
                   capture_output=True, timeout=120)
    return deb


@pytest.mark.parametrize("where", ["site-packages", "dist-packages on PYTHONPATH"])
def test_dpkg_upgrade_within_one_upstream_version(world, where):
    # dpkg replaces each file by renaming <file>.dpkg-new over it: the egg-info's listing changes,
    # the directory holding it does not.
    if shutil.which("dpkg") is None:
        pytest.skip("dpkg is not installed")
    admin = world.tmp_path / "dpkg-root"
    for sub in ("var/lib/dpkg/info", "var/lib/dpkg/updates"):
        (admin / sub).mkdir(parents=True)
    (admin / "var/lib/dpkg/status").touch()
    if where == "site-packages":
        target, root = Path(world.site), ["--admindir", str(admin / "var/lib/dpkg"), "--instdir", "/"]
    else:
        target = Path("/usr/lib/python3/dist-packages")
        root = ["--root", str(admin)]
        world.env["PYTHONPATH"] = str(admin / "usr/lib/python3/dist-packages")
    debs = [build_deb(world.tmp_path, target, n, plugin) for n, plugin in ((1, "one"), (2, "two"))]
    dpkg = ["dpkg", *root, "--force-script-chrootless", "--force-unsafe-io", "-i"]
    world.sh(*dpkg, str(debs[0]))
    spec = {"names": ["foo"], "groups": ["demo"], "packages": ["foo_one", "foo_two"], "hold": ["foo"]}
    servers = world.serve()
    world.settled(spec, servers, {"entry_points(group=demo)": ok([["demo", "one", "foo:one"]])})
    world.sh(*dpkg, str(debs[1]))
    world.settled(spec, servers, {"entry_points(group=demo)": ok([["demo", "two", "foo:two"]]),
                                  "packages_distributions()[foo_two]": ok(["foo"])})


@pytest.mark.parametrize("where, record", [("site-packages", False), ("PYTHONPATH", True), ("PYTHONPATH", False)])
def test_tar_extracted_over_an_existing_dist_info(world, where, record):
    folder = Path(world.site) if where == "site-packages" else world.tmp_path / "extra"
    if where == "PYTHONPATH":
        folder.mkdir()
        world.env["PYTHONPATH"] = str(folder)

    def dist(plugin):
        files = {"tarred-1.0.dist-info/METADATA": "Metadata-Version: 2.1\nName: tarred\nVersion: 1.0\n",
                 "tarred-1.0.dist-info/entry_points.txt": f"[demo]\n{plugin} = tarred:{plugin}\n"}
        if record:
            files["tarred-1.0.dist-info/RECORD"] = "tarred-1.0.dist-info/METADATA,,\n"
        return files

    write_tree(folder, dist("one"))
    spec = {"names": ["tarred"], "groups": ["demo"], "hold": ["tarred"]}
    servers = world.serve()
    world.settled(spec, servers, {"entry_points(group=demo)": ok([["demo", "one", "tarred:one"]])})
    staging = write_tree(world.tmp_path / "staging", dist("two"))
    archive = world.tmp_path / "tarred.tar"
    with tarfile.open(archive, "w") as tar:
        tar.add(staging / "tarred-1.0.dist-info", "tarred-1.0.dist-info")
    world.sh("tar", "-xf", str(archive), "-C", str(folder))
    world.settled(spec, servers, {"entry_points(group=demo)": ok([["demo", "two", "tarred:two"]])})


# --- a slow install -----------------------------------------------------------------------------------


def test_a_slow_install_is_seen_once_it_finishes(world):
    # An installer that pauses between METADATA and the rest (a wheel with tens of thousands of
    # files, slow storage), RECORD last, as pip writes it after byte-compiling; queries run in
    # between. No top_level.txt: packages_distributions() infers the names from RECORD.
    site = Path(world.site)
    spec = {"names": ["slow"], "groups": ["demo"], "packages": ["slowpkg"]}
    servers = world.serve()
    world.same(spec, servers)
    folder = site / "slow-1.0.dist-info"
    folder.mkdir()
    (folder / "METADATA").write_text("Metadata-Version: 2.1\nName: slow\nVersion: 1.0\n")
    world.settled(spec, servers, {"entry_points(group=demo)": ok([])})
    world.same({}, None)  # and a start in between (the hook table sees the half-written entry)
    time.sleep(1.1)
    # The hook leaves a mark in a file: printing would get in the way of the answers.
    write_tree(site, {"slowpkg/__init__.py": "import os\ndef main():\n    mark = os.environ.get('HOOK_MARK')\n"
                                             "    if mark:\n        open(mark, 'a').write('slow hook ran')\n"})
    (folder / "entry_points.txt").write_text("[demo]\nslow = slowpkg:main\n[epfinder.startup]\nhook = slowpkg:main\n")
    time.sleep(1.1)
    (folder / "RECORD").write_text("slowpkg/__init__.py,,\nslow-1.0.dist-info/METADATA,,\n")
    world.settled(spec, servers, {"entry_points(group=demo)": ok([["demo", "slow", "slowpkg:main"]]),
                                  # 3.10 maps names from top_level.txt only, 3.11+ infers them from RECORD
                                  "packages_distributions()[slowpkg]": ok(["slow"] if sys.version_info >= (3, 11) else None)})
    mark = world.tmp_path / "hook-mark"
    world.env["HOOK_MARK"] = str(mark)
    world.sh(world.python, "-c", "pass")
    assert mark.read_text() == "slow hook ran"
    assert "slow:hook" in world.sh(world.python, "-m", "epfinder", "startup", "list").stdout


# --- processes: descriptors, exit, pyfakefs -----------------------------------------------------------

DAEMON = """
import importlib.metadata as md, json, os, sys
first = md.version("pip")
held = len(os.listdir("/proc/self/fd"))
os.closerange(3, 256)       # what python-daemon's DaemonContext does
log = open(sys.argv[1], "w")  # gets the lowest free descriptor
second = md.version("pip"), len(md.entry_points(group="console_scripts"))
log.write("logged")
log.close()
print(json.dumps([first, held, second, open(sys.argv[1]).read()]))
"""


def test_a_daemon_that_closes_its_descriptors(world):
    answers = {}
    for mode in ("on", "off"):
        env = dict(world.env, EPFINDER_MODE="off") if mode == "off" else world.env
        proc = subprocess.run([world.python, "-c", DAEMON, str(world.tmp_path / f"log-{mode}")],
                              capture_output=True, text=True, env=env, timeout=120)
        assert proc.returncode == 0 and proc.stderr == "", proc.stderr
        answers[mode] = json.loads(proc.stdout)
    assert answers["on"] == answers["off"]


@pytest.mark.parametrize("code", [
    "import os, importlib.metadata as m; os._keep = m.distribution('pip')",
    "import importlib.metadata as m; m.entry_points(group='console_scripts'); m.version('pip')",
])
def test_nothing_is_printed_at_exit(world, code):
    proc = world.sh(world.python, "-c", code)
    assert proc.stderr == "" and proc.stdout == ""


PYFAKEFS = """
import importlib.metadata as md, json, sys
from pyfakefs.fake_filesystem_unittest import Patcher
before = md.version("pip")
with Patcher() as patcher:
    patcher.fs.create_file("/fake/site/fk-1.0.dist-info/METADATA",
                           contents="Metadata-Version: 2.1\\nName: fk\\nVersion: 1.0\\n")
    patcher.fs.create_file("/fake/site/fk-1.0.dist-info/entry_points.txt", contents="[demo]\\nx = fk:x\\n")
    sys.path.insert(0, "/fake/site")
    inside = md.version("fk"), [ep.name for ep in md.entry_points(group="demo")]
    sys.path.pop(0)
print(json.dumps([before, inside, md.version("pip")]))
"""


def test_pyfakefs(world):
    world.pip("install", "pyfakefs")
    answers = []
    for mode in ("on", "off"):
        env = dict(world.env, EPFINDER_MODE="off") if mode == "off" else world.env
        proc = subprocess.run([world.python, "-c", PYFAKEFS], capture_output=True, text=True, env=env,
                              timeout=120)
        assert proc.returncode == 0 and proc.stderr == "", proc.stderr
        answers.append(json.loads(proc.stdout))
    assert answers[0] == answers[1]
    assert answers[0][1] == ["1.0", ["x"]]


def test_the_hook_table_follows_an_egg_info_rewritten_in_place(world):
    # A site directory's *.egg-info (legacy or Debian installs) edited in place: the next start
    # runs the hook it now declares.
    site = Path(world.site)
    write_tree(site, {"inplace-1.0.egg-info/PKG-INFO": "Metadata-Version: 1.1\nName: inplace\nVersion: 1.0\n",
                      "inplace-1.0.egg-info/entry_points.txt": "[demo]\nx = inplace:x\n",
                      "inplace_hook.py": "def main():\n    print('in-place hook ran')\n"})
    time.sleep(1.1)
    assert world.sh(world.python, "-c", "pass").stdout == ""
    with open(site / "inplace-1.0.egg-info" / "entry_points.txt", "a") as f:
        f.write(textwrap.dedent("""
            [epfinder.startup]
            hook = inplace_hook:main
            """))
    started = world.sh(world.python, "-c", "pass")
    assert "in-place hook ran" in started.stdout
