"""Metadata trees for the benchmarks: the real corpus, and clones of it to larger sizes."""

import os
import re
import shutil
import tarfile
from pathlib import Path

# The test corpus (tests/data/README.md): 274 real distributions' metadata.
CORPUS = Path(__file__).resolve().parents[1] / "tests" / "data" / "site-packages-real274.tar.gz"


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


# --- virtual environments holding the corpus ---------------------------------------------------------


def build_wheel(dest):
    """A wheel of this checkout, as users install it."""
    import subprocess
    import sys

    dest = Path(dest)
    shutil.rmtree(dest, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(dest),
                    str(Path(__file__).resolve().parents[1])], check=True)
    (wheel,) = dest.glob("importlib_metadata_cache-*.whl")
    return wheel


def corpus_venv(path, corpus):
    """A new venv (python -m venv) whose site-packages also holds the corpus: (python, site)."""
    import subprocess
    import sys

    path = Path(path)
    shutil.rmtree(path, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "venv", str(path)], check=True)
    python = str(path / "bin" / "python")
    site = Path(subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    for child in os.listdir(corpus):
        if not (site / child).exists():  # the venv's own pip and setuptools stay
            shutil.copytree(Path(corpus) / child, site / child)
    return python, site


def size_venv(work, corpus, size):
    """A venv (no pip) under ``work`` whose site-packages holds ``size`` distributions: (python, site-packages).

    The corpus up to 274, clones of it beyond: an install location, as epfinder sees a real venv
    (a tree merely put on sys.path is a watched folder, checked entry by entry).
    """
    import subprocess
    import sys

    venv = work / f"venv-{size}"
    python = venv / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    if size <= 274:
        for child in os.listdir(corpus):
            if not (site / child).exists():
                shutil.copytree(corpus / child, site / child)
    else:
        cloned_tree(corpus, site, size)
    return str(python), site


def child_env():
    """The environment for measured children: no EPFINDER_* switches, and bytecode caches written
    as in normal use (a warm-up run writes them for files that pip did not install)."""
    return {k: v for k, v in os.environ.items()
            if not k.startswith("EPFINDER") and k != "PYTHONDONTWRITEBYTECODE"}
