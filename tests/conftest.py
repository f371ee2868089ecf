import collections
import os
import subprocess
import sys
from pathlib import Path

import pytest

# The helpers module sits beside the tests.
sys.path.insert(0, os.path.dirname(__file__))

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
    (wheel,) = out.glob("epfinder-*.whl")
    return wheel


@pytest.fixture
def venv(tmp_path, epfinder_wheel):
    """A real venv with epfinder installed from the wheel, not yet enabled.

    (interpreter, site-packages, what site-packages held before epfinder was installed)
    """
    python = make_venv(tmp_path / "venv")
    site = Path(run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])",
                    tmp_path=tmp_path).stdout.strip())
    pristine = set(os.listdir(site))
    pip(python, "install", "--no-index", str(epfinder_wheel), tmp_path=tmp_path)
    return Venv(python, site, pristine)
