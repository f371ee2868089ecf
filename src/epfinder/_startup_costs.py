"""The last measured cost of each startup hook, as a start under EPFINDER_TRACE=1 timed it.

Timing every start would cost every start a clock and a write of the result (and concurrent
starts would race to write it). A traced start times the hooks anyway, so it writes what it
measured here; ``python -m epfinder startup list`` and ``status`` show it, and
``startup list --measure`` runs one traced start to measure again. Imported only by a traced start
and by the command line tool.

The file is display-only: nothing in it decides what runs. It is still read only when it is not
world-writable and belongs to root, this user or the site directory's owner, like the hook table.
"""

import os
import time

import _epfinder_boot as _boot

FILENAME = "startup-costs.tsv"
HEADER = "epfinder-startup-costs\t1"
OUTCOMES = ("ok", "failed", "not_loaded", "vetoed")


def files(site_dir):
    """Where a measurement may be: the environment's own folder, then this user's cache folder."""
    from . import _cache

    return [os.path.join(site_dir, _boot.CONFIG_DIR, FILENAME), os.path.join(_cache.user_cache_root(), FILENAME)]


def render(measured, when_ns):
    lines = [HEADER, f"measured\t{when_ns}"]
    for hook_id, import_ns, call_ns, outcome in measured:
        if "\t" not in hook_id and "\n" not in hook_id:
            lines.append(f"hook\t{hook_id}\t{int(import_ns)}\t{int(call_ns)}\t{outcome}")
    return "\n".join(lines + ["end", ""])


def record(site_dir, measured):
    """Write [(hook id, import ns, call ns, outcome)] where this user can; never raises."""
    try:
        data = render(measured, time.time_ns()).encode("utf-8")
        for i, file in enumerate(files(site_dir)):
            folder = os.path.dirname(file)
            if i:
                try:
                    os.makedirs(folder, exist_ok=True)
                except OSError:
                    continue
            elif not os.path.isdir(folder):
                continue  # the environment is not enabled: leave its site directory alone
            tmp = os.path.join(folder, f".tmp-{os.getpid()}-{os.urandom(4).hex()}")
            try:
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except OSError:
                continue
            try:
                with open(fd, "wb") as f:
                    f.write(data)
                os.replace(tmp, file)
                return True
            except OSError:
                try:
                    os.unlink(tmp)
                except OSError:
                    pass
    except Exception:
        pass
    return False


def _parse(text):
    lines = text.split("\n")
    if lines[0] != HEADER or lines[-2:] != ["end", ""] or not lines[1].startswith("measured\t"):
        return None
    result = {"measured_ns": int(lines[1][9:]), "hooks": {}}
    for line in lines[2:-2]:
        kind, hook_id, import_ns, call_ns, outcome = line.split("\t")
        if kind != "hook" or outcome not in OUTCOMES:
            return None
        result["hooks"][hook_id] = {"import_ns": int(import_ns), "call_ns": int(call_ns), "outcome": outcome}
    return result


def read(site_dir):
    """The newest measurement: {"measured_ns", "hooks": {id: {"import_ns", "call_ns", "outcome"}}}, or None."""
    best = None
    try:
        owners = {0, os.getuid(), os.stat(site_dir).st_uid}
    except OSError:
        owners = {0, os.getuid()}
    for file in files(site_dir):
        try:
            with open(file, "rb") as f:
                st = os.fstat(f.fileno())
                if st.st_mode & 0o002 or st.st_uid not in owners:
                    continue
                found = _parse(f.read(1 << 20).decode("utf-8"))
        except (OSError, ValueError):
            continue
        if found is not None and (best is None or found["measured_ns"] > best["measured_ns"]):
            best = found
    return best
