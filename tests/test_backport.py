"""With the importlib_metadata backport imported, before or after epfinder is enabled, both the
backport's callers and the stdlib's get exactly what a plain scan with the same imports gives.

Serving the backport from the caches (rather than letting it scan) is future work; what these
tests hold today is that epfinder never changes an answer when the backport is around.
"""

import subprocess
import sys

import pytest

from helpers import assert_same_as_plain, dist_info, write_tree
from test_differential import EPS, opt_in

pytestmark = pytest.mark.slow

# One of each major line that supports Python 3.10 and later; 9.1 and later need 3.11.
VERSIONS = ["6.11.0", "8.7.0", "10.2.0" if sys.version_info >= (3, 11) else "9.0.1"]


@pytest.fixture(scope="module", params=VERSIONS)
def backport(request, tmp_path_factory):
    target = tmp_path_factory.mktemp(f"importlib_metadata-{request.param}")
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check",
         "--target", str(target), f"importlib_metadata=={request.param}"],
        check=True, timeout=600, capture_output=True,
    )
    return target


@pytest.mark.parametrize("when", ["before", "after"])
@pytest.mark.parametrize("library", ["backport", "stdlib"])
def test_same_answers_with_the_backport(tmp_path, backport, when, library):
    first = write_tree(tmp_path / "first", {
        **dist_info("alpha", "1.0", EPS),
        **dist_info("Dup", "1.0", "[g]\nx = first:x\n"),
        **dist_info("badeps", "1.0", "[g]\nno equals sign\n"),
        "legacy-1.0-py3.11.egg-info": "Metadata-Version: 1.1\nName: legacy\nVersion: 1.0\n",
    })
    second = write_tree(tmp_path / "second", {
        **dist_info("dup", "2.0", "[g]\nx = second:x\n"),
        **dist_info("beta", "1.0", "[console_scripts]\nbeta = beta:main\n"),
    })
    opt_in(first, second)
    assert_same_as_plain(
        tmp_path, [first, second], names=["alpha", "dup", "beta", "badeps", "legacy", "missing"],
        backport=when, library=library, append=[backport],
    )
