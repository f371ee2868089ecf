"""Metadata trees for the benchmarks: the real corpus, and clones of it to larger sizes."""

import os
import re
import shutil
import tarfile
from pathlib import Path

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "site-packages-real274.tar.gz"


def corpus_tree(dest):
    """``dest/site-packages`` holding the 274 real distributions."""
    dest = Path(dest)
    site = dest / "site-packages"
    if not site.exists():
        with tarfile.open(CORPUS) as tar:
            if hasattr(tarfile, "data_filter"):
                tar.extractall(dest, filter="data")
            else:
                tar.extractall(dest)
    return site


def cloned_tree(corpus_site, dest, total):
    """A site-packages of ``total`` distributions: the corpus, then renamed clones of it.

    Clone k of ``Foo-1.0.dist-info`` is ``Foo_c<k>-1.0.dist-info`` with ``Name: Foo_c<k>``; its
    entry points are kept, so group sizes grow as they do in a large real environment.
    """
    dest = Path(dest)
    if dest.exists() and len(os.listdir(dest)) >= total:
        return dest
    dest.mkdir(parents=True, exist_ok=True)
    originals = sorted(os.listdir(corpus_site))
    for child in originals:
        shutil.copytree(corpus_site / child, dest / child, dirs_exist_ok=True)
    made = len(originals)
    copy = 0
    while made < total:
        copy += 1
        for child in originals:
            if made >= total:
                break
            name, _, rest = child.partition("-")
            target = dest / f"{name}_c{copy}-{rest}"
            shutil.copytree(corpus_site / child, target, dirs_exist_ok=True)
            meta = target / "METADATA"
            if meta.exists():
                text = meta.read_text(encoding="utf-8")
                text = re.sub(r"^Name: (.*)$", rf"Name: \g<1>_c{copy}", text, count=1, flags=re.M)
                meta.write_text(text, encoding="utf-8")
            made += 1
    return dest
