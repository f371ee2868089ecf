import atexit
import collections
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

# The helpers module sits beside the tests.
sys.path.insert(0, os.path.dirname(__file__))

# Nothing the suite runs may write into the real ~/.cache: per-user caches of epfinder (in this
# process and in children that inherit the environment), pip's wheel and HTTP caches, uv's.
# Tests that need their own location still set XDG_CACHE_HOME themselves.
_CACHE_HOME = tempfile.mkdtemp(prefix="epfinder-tests-cache-")
os.environ["XDG_CACHE_HOME"] = _CACHE_HOME
os.environ["PIP_CACHE_DIR"] = os.path.join(_CACHE_HOME, "pip")
os.environ["UV_CACHE_DIR"] = os.path.join(_CACHE_HOME, "uv")
atexit.register(shutil.rmtree, _CACHE_HOME, ignore_errors=True)

from helpers import make_venv, pip, run  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent

Venv = collections.namedtuple("Venv", "python site pristine")


@pytest.fixture(scope="session")
def epfinder_wheel(tmp_path_factory):
    """A wheel built from this checkout, as users get it."""
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(ROOT)],
        check=True, timeout=600, capture_output=True,
    )
    (wheel,) = out.glob("importlib_metadata_cache-*.whl")
    return wheel


@pytest.fixture(scope="session")
def venv_template(tmp_path_factory, epfinder_wheel):
    """One real venv (python -m venv, then pip install of the wheel), made once per session."""
    root = tmp_path_factory.mktemp("venv-template")
    python = make_venv(root / "venv")
    site = Path(run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])",
                    tmp_path=root).stdout.strip())
    pristine = set(os.listdir(site))
    pip(python, "install", "--no-index", str(epfinder_wheel), tmp_path=root)
    return root / "venv", site.relative_to(root / "venv"), pristine


@pytest.fixture
def venv(tmp_path, venv_template):
    """A real venv with epfinder installed from the wheel, not yet enabled: a copy of the template.

    (interpreter, site-packages, what site-packages held before epfinder was installed)
    Copying is ten times faster than creating one and installing into it. Only `python -m ...`
    is used in it (console scripts keep the template's path in their shebang); sys.prefix, site
    processing and pip all follow the copy's own pyvenv.cfg.
    """
    template, relative_site, pristine = venv_template
    target = tmp_path / "venv"
    shutil.copytree(template, target, symlinks=True)
    return Venv(str(target / "bin" / "python"), target / relative_site, pristine)


# Build backends and tools for the tests that build and install projects as users do.
BACKENDS = ["setuptools>=77", "setuptools<80", "hatchling", "editables", "flit_core", "pyfakefs", "wheel"]


@pytest.fixture(scope="session")
def wheelhouse(tmp_path_factory):
    """Build backends and tools, downloaded once, so that builds run isolated and offline."""
    folder = tmp_path_factory.mktemp("wheelhouse")
    for requirement in BACKENDS:
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--disable-pip-version-check",
                        "-d", str(folder), requirement], check=True, timeout=600, capture_output=True)
    return folder


@pytest.fixture
def served(tmp_path, monkeypatch):
    """epfinder on in this process, with a private per-user cache; off again afterwards."""
    import epfinder

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    epfinder.enable("auto")
    yield
    epfinder.disable()
