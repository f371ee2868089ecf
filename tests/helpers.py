"""Shared test helpers: build metadata trees, run the probe in child interpreters, compare."""

import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import epfinder
from epfinder import _cache

HERE = Path(__file__).resolve().parent
PROBE = HERE / "probe.py"
# The directory that holds the epfinder package under test, for child interpreters.
EPFINDER_ROOT = str(Path(epfinder.__file__).resolve().parent.parent)
# 274 real distributions' metadata, shipped with the tests (tests/data/README.md).
CORPUS = HERE / "data" / "site-packages-real274.tar.gz"


def full_path(path, dir_fd=None):
    """The path an os.open/os.unlink call acts on: epfinder._startup_atomic names files relative to their
    folder's descriptor, so a test that refuses some paths resolves it first."""
    if dir_fd is None:
        return str(path)
    return os.path.join(os.readlink(f"/proc/self/fd/{dir_fd}"), path)


def write_tree(root, files):
    """Write {relative path: text or bytes} under root; a value of None makes a directory."""
    root = Path(root)
    for rel, content in files.items():
        path = root / rel
        if content is None:
            path.mkdir(parents=True, exist_ok=True)
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
    return root


def dist_info(name, version, entry_points=None, extra=None, dirname=None, metadata=None):
    """Files of one ``name-version.dist-info``, for write_tree."""
    dirname = dirname or f"{name}-{version}.dist-info"
    files = {
        f"{dirname}/METADATA": metadata
        if metadata is not None
        else f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
        f"Requires-Dist: other>=1\n\nA description.\n",
        f"{dirname}/RECORD": f"{name.lower()}/__init__.py,,\n{dirname}/METADATA,,\n",
    }
    if entry_points is not None:
        files[f"{dirname}/entry_points.txt"] = entry_points
    for rel, content in (extra or {}).items():
        files[f"{dirname}/{rel}"] = content
    return files


def unpack_corpus(dest):
    """The 274 real distributions, as ``dest/site-packages``."""
    with tarfile.open(CORPUS) as tar:
        tar.extractall(dest, filter="data") if hasattr(tarfile, "data_filter") else tar.extractall(dest)
    return Path(dest) / "site-packages"


def child_env(tmp_path, **extra):
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(tmp_path / "home"),
        "XDG_CACHE_HOME": str(tmp_path / "xdg-cache"),
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    env.update(extra)
    return env


def probe(tmp_path, paths, mode=None, names=(), rounds=1, python=None, env=None, backport=None,
          cwd=None, library=None, append=()):
    """Run the probe in a fresh ``python -S`` child; returns its parsed answers."""
    spec = {
        "paths": [str(p) for p in paths],
        "append": [EPFINDER_ROOT, *map(str, append)],
        "mode": mode,
        "names": list(names),
        "rounds": rounds,
        "backport": backport,
        "library": library,
    }
    proc = subprocess.run(
        [python or sys.executable, "-S", str(PROBE), json.dumps(spec)],
        capture_output=True,
        text=True,
        env=env or child_env(tmp_path),
        cwd=cwd or tmp_path,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def assert_same_as_plain(tmp_path, paths, names=(), modes=("auto",), **kwargs):
    """Every answer with epfinder on (a cold start, then a start from caches) equals plain."""
    plain = probe(tmp_path, paths, None, names, rounds=2, **kwargs)
    assert plain[0] == plain[1]
    for mode in modes:
        for attempt in ("cold", "warm"):
            served = probe(tmp_path, paths, mode, names, rounds=2, **kwargs)
            assert served[-1] == {"mode": mode}
            for round_, answers in enumerate(served[:-1]):
                _assert_equal(plain[0], answers, f"mode={mode} start={attempt} round={round_}")
    return plain[0]


def _first_difference(expected, actual, path=""):
    """The innermost place where two JSON values differ, as (path, expected, actual)."""
    if isinstance(expected, dict) and isinstance(actual, dict):
        for key in sorted(set(expected) | set(actual)):
            if expected.get(key) != actual.get(key):
                return _first_difference(expected.get(key), actual.get(key), f"{path}/{key}")
    if isinstance(expected, list) and isinstance(actual, list) and len(expected) == len(actual):
        for i, (e, a) in enumerate(zip(expected, actual)):
            if e != a:
                return _first_difference(e, a, f"{path}[{i}]")
    return path, expected, actual


def _assert_equal(expected, actual, where):
    if expected == actual:
        return
    path, e, a = _first_difference(expected, actual)
    raise AssertionError(
        f"{where}: {path} differs\nplain:    {json.dumps(e)[:2000]}\nepfinder: {json.dumps(a)[:2000]}"
    )


def make_wheel(dest, name, version, entry_points="", modules=None):
    """A minimal pure-Python wheel, built by hand so that tests need no build backend."""
    import base64
    import hashlib
    import zipfile

    dist = f"{name.replace('-', '_')}-{version}"
    files = dict(modules or {f"{name.replace('-', '_')}.py": "def main():\n    return 0\n"})
    files[f"{dist}.dist-info/METADATA"] = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
    files[f"{dist}.dist-info/WHEEL"] = "Wheel-Version: 1.0\nGenerator: tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    if entry_points:
        files[f"{dist}.dist-info/entry_points.txt"] = entry_points
    record = []
    for path, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()
        record.append(f"{path},sha256={digest},{len(text.encode())}")
    record.append(f"{dist}.dist-info/RECORD,,")
    files[f"{dist}.dist-info/RECORD"] = "\n".join(record) + "\n"
    wheel = Path(dest) / f"{dist}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        for path, text in files.items():
            zf.writestr(path, text)
    return wheel


def make_venv(path, python=None):
    """A real virtual environment made with ``python -m venv``; returns its interpreter."""
    subprocess.run([python or sys.executable, "-m", "venv", str(path)], check=True, timeout=300)
    return str(Path(path) / "bin" / "python")


# --- real virtual environments (the slow tests) -----------------------------------------------------


def clean_env(tmp_path, **extra):
    """An environment for venv children: nothing of ours leaks in (no PYTHONPATH, no EPFINDER_*)."""
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "XDG_CACHE_HOME": str(tmp_path / "xdg")}
    env.update(extra)
    return env


def run(python, *args, tmp_path, env=None, check=True, cwd=None):
    proc = subprocess.run([python, *args], capture_output=True, text=True, timeout=300,
                          env=env or clean_env(tmp_path), cwd=cwd or tmp_path)
    if check:
        assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def pip(python, *args, tmp_path):
    run(python, "-m", "pip", "--disable-pip-version-check", "-q", *args, tmp_path=tmp_path)


# --- trees shared by the differential tests (stdlib, backport, application API) ---

def opt_in(*dirs):
    """Let a plain directory keep its cache inside itself, as `epfinder refresh DIR` does."""
    for d in dirs:
        os.makedirs(os.path.join(d, _cache.SUBDIR), exist_ok=True)


EPS = """\
[console_scripts]
alpha = alpha.cli:main
alpha-admin = alpha.admin:main [extra]

[alpha.plugins]
one = alpha.plugins.one
two = alpha.plugins:two

[console_scripts]
alpha-late = alpha.late:main
"""


def zip_and_egg_entries(root):
    """A zip with a *.dist-info inside, an *.egg directory and an *.egg zip: the path-entry kinds
    that are not plain directories. Returns them in sys.path order."""
    import zipfile

    root.mkdir(parents=True, exist_ok=True)
    archive = root / "plugins.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for rel, text in dist_info("zipped", "1.0", "[console_scripts]\nzipped = zipped:main\n").items():
            zf.writestr(rel, text)
        zf.writestr("zipped/__init__.py", "")
    egg_dir = write_tree(root / "Thing-1.0-py3.11.egg", {
        "EGG-INFO/PKG-INFO": "Metadata-Version: 1.1\nName: Thing\nVersion: 1.0\n",
        "EGG-INFO/entry_points.txt": "[console_scripts]\nthing = thing:main\n[g]\nt = thing:t\n",
        "EGG-INFO/SOURCES.txt": "thing/__init__.py\n",
        "thing/__init__.py": "",
    })
    egg_zip = root / "Zegg-2.0-py3.11.egg"
    with zipfile.ZipFile(egg_zip, "w") as zf:
        zf.writestr("EGG-INFO/PKG-INFO", "Metadata-Version: 1.1\nName: Zegg\nVersion: 2.0\n")
        zf.writestr("EGG-INFO/entry_points.txt", "[console_scripts]\nzegg = zegg:main\n")
        zf.writestr("zegg/__init__.py", "")
    return [archive, egg_dir, egg_zip]
