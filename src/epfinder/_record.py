"""The files epfinder writes into its own site directory, listed in its distribution's RECORD.

pip and uv uninstall every file that RECORD lists (skipping those that do not exist), and a folder
whose every file is listed goes with them. Listing ``.epfinder-cache/`` there means that
``pip uninstall importlib-metadata-cache`` removes the config, the hook table and the caches even
when ``python -m epfinder uninstall`` did not run first: nothing is left to switch a later
reinstall back on. ``python -m epfinder uninstall`` takes the lines out again.
"""

from __future__ import annotations

import os
import sys

import _epfinder_boot as _boot

from . import DISTRIBUTION, _cache, _startup_atomic, _startup_costs

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

# What may appear in .epfinder-cache/ of the site directory, listed even before it exists (pip and
# uv skip listed files that are absent): the config, the hook table, the hook costs, the cache.
FIXED = (_boot.CONFIG_FILE, _boot.STARTUP_TABLE, _startup_costs.FILENAME, _cache.FILENAME)


def record_file(site_dir: str) -> str | None:
    """The RECORD of this distribution in ``site_dir``, or None (a source tree, an odd install)."""
    wanted = _boot.normalize(DISTRIBUTION)
    try:
        children = os.listdir(site_dir)
    except OSError:
        return None
    for child in children:
        stem, _, rest = child.partition("-")
        if not child.endswith(".dist-info") or _boot.normalize(stem) != wanted:
            continue
        record = os.path.join(site_dir, child, "RECORD")
        try:
            with open(record, encoding="utf-8") as f:
                lines = f.read().splitlines()
        except (OSError, ValueError):
            continue
        if any(line.split(",", 1)[0] == "_epfinder_boot.py" for line in lines):
            return record
    return None


def _side_file_names() -> list[str]:
    # The packages_distributions() side file that the stdlib's code writes in this interpreter. Its
    # flavour fingerprints the library's own functions (through epfinder's stand-ins), so it is the
    # same whether or not this process has patched the module.
    try:
        import importlib.metadata as md

        from ._packages import flavour, shape_of

        if shape_of(md, getattr(md.packages_distributions, "__wrapped__", md.packages_distributions)) is None:
            return []
        return [f"top-level-{flavour(md, md)}.json"]
    except Exception:
        return []


# How site runs _epfinder_boot: `install` writes one of these beside it, and `uninstall` removes it.
# The wheel ships neither, so an environment where epfinder is merely installed starts exactly as
# one without it (on 3.13 and later, reading any .pth file at all imports a codec: +1.5 M
# instructions). Up to 3.17 an import line in a .pth; from 3.18, where site ignores import lines, a
# PEP 829 entry (on 3.15 to 3.17 a .start entry would make every start import pkgutil and re, and
# disable the .pth line that works there). Both are listed in RECORD, so pip uninstall removes
# them: left behind, one would make every start look for a module that is gone (it stays silent).
PTH_FILE = "epfinder.pth"
START_FILE = "epfinder.start"
PTH_TEXT = (
    "# written by `python -m epfinder install` (Python <= 3.17); removed by `python -m epfinder uninstall`."
    " See docs/startup.md.\n"
    'import os; os.access(sitedir + "/_epfinder_boot.py", os.F_OK) and __import__("_epfinder_boot").boot(sitedir)\n'
)
START_TEXT = "# written by `python -m epfinder install` (PEP 829); see docs/startup.md\n_epfinder_boot:boot\n"


def entry_file() -> tuple[str, str]:
    """(name, text) of the file through which this interpreter's site runs _epfinder_boot."""
    return (START_FILE, START_TEXT) if sys.version_info >= (3, 18) else (PTH_FILE, PTH_TEXT)


def owned(site_dir: str) -> list[str]:
    """RECORD paths for what epfinder keeps, or may keep, in ``site_dir/.epfinder-cache/``, and the
    .pth or .start file that install wrote."""
    names = set(FIXED) | set(_side_file_names())
    try:
        names.update(f for f in os.listdir(os.path.join(site_dir, _cache.SUBDIR)) if not f.startswith(".tmp-"))
    except OSError:
        pass
    paths = sorted(f"{_cache.SUBDIR}/{name}" for name in names if "," not in name and '"' not in name)
    paths += [name for name in (PTH_FILE, START_FILE) if os.path.exists(os.path.join(site_dir, name))]
    return paths


def _rewrite(record: str, keep: Callable[[str], bool], extra: list[str]) -> bool:
    with open(record, encoding="utf-8", newline="") as f:
        text = f.read()
    lines = text.splitlines()
    new = [line for line in lines if keep(line)] + [f"{path},," for path in extra]
    if new == lines:
        return False
    # Through epfinder._startup_atomic (a random temporary name, O_EXCL|O_NOFOLLOW in a checked folder),
    # keeping RECORD's mode.
    _startup_atomic.write(record, ("\n".join(new) + "\n").encode("utf-8"), mode=os.stat(record).st_mode & 0o777)
    return True


def add(site_dir: str) -> bool:
    """List what epfinder keeps in ``site_dir`` in RECORD. OSError when RECORD cannot be written."""
    record = record_file(site_dir)
    if record is None:
        return False
    with open(record, encoding="utf-8") as f:
        listed = {line.split(",", 1)[0] for line in f.read().splitlines()}
    return _rewrite(record, lambda line: True, [p for p in owned(site_dir) if p not in listed])


def remove(site_dir: str) -> bool:
    """Take epfinder's own lines out of RECORD again (uninstall)."""
    record = record_file(site_dir)
    if record is None:
        return False
    prefix = _cache.SUBDIR + "/"
    return _rewrite(record, lambda line: not line.startswith(prefix) and line not in (f"{PTH_FILE},,", f"{START_FILE},,"), [])
