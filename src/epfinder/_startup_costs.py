"""The last measured cost of each startup hook, as a start under EPFINDER_TRACE=1 timed it.

Timing every start would cost every start a clock and a write of the result (and concurrent
starts would race to write it). A traced start times the hooks anyway, so it writes what it
measured here; ``python -m epfinder startup list`` and ``status`` show it, and
``startup list --measure`` runs one traced start to measure again. Imported only by a traced start
and by the command line tool.

The file is display-only: nothing in it decides what runs. It is still read and written like the
hook table (docs/security.md): a regular file that only its owner can write, owned by root, this
user or the site directory's owner, written through epfinder._startup_atomic.
"""

import os
import time

import _epfinder_boot as _boot

TYPE_CHECKING = False
if TYPE_CHECKING:  # names for type comments only (ruff does not read those): never imported at run time
    from typing import Any  # noqa: F401

FILENAME = "startup-costs.tsv"
HEADER = "epfinder-startup-costs\t1"
OUTCOMES = ("ok", "failed", "not_loaded", "vetoed")


def files(site_dir):
    # type: (str) -> list[str]
    """Where a measurement may be: the environment's own folder, then this user's cache folder."""
    from . import _cache

    return [os.path.join(site_dir, _boot.CONFIG_DIR, FILENAME), os.path.join(_cache.user_cache_root(), FILENAME)]


def render(measured, when_ns):
    # type: (list[tuple[str, int, int, str]], int) -> str
    lines = [HEADER, f"measured\t{when_ns}"]
    for hook_id, import_ns, call_ns, outcome in measured:
        if "\t" not in hook_id and "\n" not in hook_id:
            lines.append(f"hook\t{hook_id}\t{int(import_ns)}\t{int(call_ns)}\t{outcome}")
    return "\n".join(lines + ["end", ""])


def record(site_dir, measured):
    # type: (str, list[tuple[str, int, int, str]]) -> bool
    """Write [(hook id, import ns, call ns, outcome)] where this user can; never raises.

    Through epfinder._startup_atomic, like every file epfinder writes: the environment's folder when it
    exists and passes its checks, else this user's cache folder.
    """
    try:
        from . import _cache, _startup_atomic

        data = render(measured, time.time_ns()).encode("utf-8")
        for i, file in enumerate(files(site_dir)):
            try:
                if i:
                    _cache.make_user_cache_root()
                # The environment's folder is not made here: when it is missing, epfinder is not
                # enabled there, and its site directory is left alone.
                _startup_atomic.write(file, data)
                return True
            except OSError:
                continue
    except Exception:
        pass
    return False


def _parse(text):
    # type: (str) -> dict[str, Any] | None
    lines = text.split("\n")
    if lines[0] != HEADER or lines[-2:] != ["end", ""] or not lines[1].startswith("measured\t"):
        return None
    result = {"measured_ns": int(lines[1][9:]), "hooks": {}}  # type: dict[str, Any]
    for line in lines[2:-2]:
        kind, hook_id, import_ns, call_ns, outcome = line.split("\t")
        if kind != "hook" or outcome not in OUTCOMES:
            return None
        result["hooks"][hook_id] = {"import_ns": int(import_ns), "call_ns": int(call_ns), "outcome": outcome}
    return result


def read(site_dir):
    # type: (str) -> dict[str, Any] | None
    """The newest measurement: {"measured_ns", "hooks": {id: {"import_ns", "call_ns", "outcome"}}}, or None."""
    best = None
    for file in files(site_dir):
        try:
            # Checked on its descriptor before reading, as every file epfinder reads.
            found = _parse(_boot.read_trusted(file, site_dir, 1 << 20).decode("utf-8"))
        except (OSError, ValueError):
            continue
        if found is not None and (best is None or found["measured_ns"] > best["measured_ns"]):
            best = found
    return best
