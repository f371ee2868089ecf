"""The suite needs nothing outside the repository and writes nothing into the real ~/.cache."""

import os
import tarfile

from epfinder import _cache
from helpers import CORPUS, HERE


def test_the_corpus_ships_with_the_tests():
    assert CORPUS.is_file() and CORPUS.resolve().is_relative_to(HERE)
    with tarfile.open(CORPUS) as tar:
        names = tar.getnames()
    assert sum(n.endswith(".dist-info") for n in names) == 274


def test_per_user_caches_go_to_a_temporary_folder():
    real = os.path.join(os.path.expanduser("~"), ".cache")
    root = _cache.user_cache_root()
    assert not os.path.abspath(root).startswith(real + os.sep), root
    for variable in ("XDG_CACHE_HOME", "PIP_CACHE_DIR", "UV_CACHE_DIR"):
        assert not os.path.abspath(os.environ[variable]).startswith(real + os.sep), variable
