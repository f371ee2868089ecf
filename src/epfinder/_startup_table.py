"""Rescan a site directory for startup hooks and rewrite the environment's hook table.

Runs at interpreter start, but only when a site directory changed since the table was written (a
pip install or uninstall), and from the command line. So it is stdlib-only and imports nothing that
start-up has not loaded already: not importlib.metadata, not re, not json. It reads only what
deciding the hooks needs: the directory listing, each distribution's ``entry_points.txt``, and the
METADATA of the few distributions that register hooks, to name them.

The table's format and the rules it follows are in docs/startup-hooks.md.
"""

import os
import sys
import time

import _epfinder_boot as _boot
from _epfinder_boot import STARTUP_GROUP as GROUP, normalize

from . import _entry_points_txt as entry_points_txt

# A directory whose last change is this recent may still be in the middle of an install (pip
# creates a *.dist-info folder, then writes entry_points.txt into it, which does not touch the
# site directory again): its scan is used for this start but not written down.
SETTLE_NS = 3_000_000_000

# The exceptions PathDistribution.read_text treats as "no such file".
_ABSENT = (FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError)
_NONBLOCK = getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)


def has_settled(st):
    """Whether a directory's last change is old enough for its scan to be written down."""
    margin = SETTLE_NS
    if not sys.flags.ignore_environment and os.environ.get("EPFINDER_SETTLE"):
        try:  # the same setting as epfinder._cache.settle_ns(), which this module must not import
            margin = max(0, int(float(os.environ["EPFINDER_SETTLE"]) * 1e9))
        except ValueError:
            pass
    return max(st.st_mtime_ns, st.st_ctime_ns) < time.time_ns() - margin


def lookup_order(path):
    """The ``*.dist-info``/``*.egg-info`` children of ``path`` in importlib.metadata's Lookup order."""
    groups = {}
    for child in os.listdir(path):
        if child.lower().endswith((".dist-info", ".egg-info")):
            key = normalize(child.lower().rpartition(".")[0].partition("-")[0])
            groups.setdefault(key, []).append(child)
    return [child for children in groups.values() for child in children]


def _read(entry, filename):
    """(text, problem): text None when absent; problem a short reason when it cannot be read."""
    try:
        # O_NONBLOCK: a FIFO planted in a *.dist-info must not hang every start (it reads empty).
        fd = os.open(os.path.join(entry, filename), os.O_RDONLY | _NONBLOCK)
        with open(fd, "rb") as f:
            data = f.read()
    except _ABSENT:
        return None, None
    except OSError as exc:
        return None, f"cannot read {filename} ({exc.strerror})"
    try:
        # importlib.metadata reads text with universal newlines; splitlines() below does the same.
        return data.decode("utf-8"), None
    except UnicodeDecodeError:
        return None, f"{filename} is not UTF-8" if GROUP.encode() in data else None


def _headers(entry):
    """(Name, Version) from METADATA or PKG-INFO, for naming a distribution in messages."""
    for filename in ("METADATA", "PKG-INFO"):
        text, _problem = _read(entry, filename)
        if text:
            break
    else:
        return None, None
    found = {}
    for line in text.splitlines():
        if not line.strip():
            break
        key, sep, value = line.partition(":")
        key = key.lower()
        if sep and key in ("name", "version") and key not in found:
            found[key] = value.lstrip(" \t").rstrip("\r\n")
    return found.get("name"), found.get("version")


def _hooks_in(text):
    """The (name, value) pairs of the startup group, and a problem or None.

    importlib.metadata rejects a whole file with a line that has no '=' in any section, so such a
    file registers no hooks.
    """
    try:
        return [(name, value) for group, name, value in entry_points_txt.parse(text) if group == GROUP], None
    except entry_points_txt.MalformedLine as exc:
        return [], f"entry_points.txt line {exc.number} has no '='"


def scan(path):
    """What the hook table records for one site directory, and whether it may be written down."""
    st = os.stat(path)
    before = [st.st_dev, st.st_ino, st.st_mtime_ns, st.st_ctime_ns]
    settled = has_settled(st)
    names, hooks, bad = [], [], []
    seen = set()
    for child in lookup_order(path):
        entry = os.path.join(path, child)
        stem, ext = os.path.splitext(child)
        dist = normalize(stem.partition("-")[0]) if ext in (".dist-info", ".egg-info") else ""
        dist_name = version = None
        if not dist:  # Distribution._normalized_name falls back to the Name in the metadata
            dist_name, version = _headers(entry)
            if not dist_name:
                continue  # importlib.metadata cannot name it either
            dist = normalize(dist_name)
        if dist in seen:
            continue  # only the first distribution of a name counts, as in entry_points()
        seen.add(dist)
        names.append(dist)
        text, problem = _read(entry, "entry_points.txt")
        pairs = []
        if text is not None and GROUP in text:
            pairs, problem = _hooks_in(text)
        if problem:
            bad.append([dist, child, problem])
        if pairs and dist_name is None:
            dist_name, version = _headers(entry)
        for name, value in pairs:
            hooks.append([dist, name, value, dist_name or "", version or ""])
    st = os.stat(path)
    after = [st.st_dev, st.st_ino, st.st_mtime_ns, st.st_ctime_ns]
    return [before, "\t".join(names), hooks, bad], settled and before == after


def render(tables):
    """The table file's text for {site dir: entry}; entries that a field cannot hold are left out."""
    lines = [_boot.TABLE_HEADER]
    for path, (signature, names, hooks, bad) in tables.items():
        rows = [["dir", path, *map(str, signature)]]
        if names:
            rows.append(["names", names])
        rows += [["hook", *hook] for hook in hooks]
        rows += [["bad", *problem] for problem in bad]
        # A tab or newline inside a field cannot be written; that directory is rescanned instead.
        if any("\t" in field or "\n" in field for row in rows for field in row[1:] if row[0] != "names"):
            continue
        if "\n" in names:
            continue
        lines.extend("\t".join(row) for row in rows)
    lines += ["end", ""]
    return "\n".join(lines)


def write(file, tables):
    """Replace the table file atomically; False when it cannot be written (read-only, full disk,
    or a cache folder that others could have planted: see epfinder._atomic)."""
    from . import _atomic  # deferred: a rescan at start writes the table only when it changed

    try:
        _atomic.write(file, render(tables).encode("utf-8"))
        return True
    except OSError:
        return False


def refresh(file, dirs, tables, stale):
    """Rescan ``stale`` directories; write the table when every scan may be trusted.

    Returns {site dir: entry} for ``dirs``. A directory that cannot be listed has no hooks.
    """
    fresh = {p: tables[p] for p in dirs if p in tables and p not in stale}
    # Entries of site directories not in this start's sys.path (the user site under -s, say) are
    # kept while the directory exists: their signatures are checked whenever they are used.
    trusted = {p: e for p, e in tables.items() if p not in stale and (p in fresh or os.path.isdir(p))}
    for path in stale:
        try:
            entry, settled = scan(path)
        except OSError:
            continue
        fresh[path] = entry
        if settled and not os.stat(path).st_mode & 0o002:
            trusted[path] = entry
    if os.path.isdir(os.path.dirname(file)) and trusted != tables:
        write(file, trusted)
    return {p: fresh[p] for p in dirs if p in fresh}


def rebuild(wait=False, site=None):
    """Rescan every site directory and rewrite the table (install, refresh, startup list).

    ``site``: the site directory whose table to write (default: the one whose config is in force
    in this process). Returns True when the table on disk now covers every site directory. With
    ``wait``, a directory changed in the last seconds is rescanned until it has settled (at most ~4 s).
    """
    dirs = [p for p in _boot.startup_site_dirs() if os.path.isdir(p)]
    if site is None:
        file = _boot.startup_table_file()
        site = os.path.dirname(os.path.dirname(file))
    else:
        file = os.path.join(site, _boot.CONFIG_DIR, _boot.STARTUP_TABLE)
    deadline = time.monotonic() + SETTLE_NS / 1e9 + 1
    while True:
        refresh(file, dirs, {}, dirs)
        written = _boot.read_startup_table(file, site) or {}
        if all(p in written for p in dirs) or not wait or time.monotonic() > deadline:
            return all(p in written for p in dirs)
        time.sleep(0.2)

