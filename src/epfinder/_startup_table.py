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
from _epfinder_boot import HOOKS, NAMES, PROBLEMS, SIGNATURE, WATCHED, normalize
from _epfinder_boot import STARTUP_GROUP as GROUP

from . import _startup_entries as entry_points_txt
from ._startup_entries import header_values, is_sealed, list_metadata

TYPE_CHECKING = False
if TYPE_CHECKING:  # names for type comments only (ruff does not read those): never imported at run time
    from typing import Any  # noqa: F401

# The exceptions PathDistribution.read_text treats as "no such file".
_ABSENT = (FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError)
_NONBLOCK = getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
# The files of a watched entry that decide its hooks and how they are named.
_WATCHED_FILES = ("", "entry_points.txt", "METADATA", "PKG-INFO")
# How long `install` and `refresh` wait for a directory that keeps changing to hold still.
_WAIT_S = 4.0


def _read(entry, filename):
    # type: (str, str) -> tuple[str | None, str | None]
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
    # type: (str) -> tuple[str | None, str | None]
    """(Name, Version) from METADATA or PKG-INFO, for naming a distribution in messages."""
    for filename in ("METADATA", "PKG-INFO"):
        text, _problem = _read(entry, filename)
        if text:
            break
    else:
        return None, None
    found = header_values(text, ("name", "version"))
    return found.get("name"), found.get("version")


def _hooks_in(text):
    # type: (str) -> tuple[list[tuple[str, str]], str | None]
    """The (name, value) pairs of the startup group, and a problem or None.

    importlib.metadata rejects a whole file with a line that has no '=' in any section, so such a
    file registers no hooks; from Python 3.15 it also rejects a file with an invalid value in any
    group (it validates each EntryPoint it makes), so then such a file registers none either.
    """
    try:
        found = entry_points_txt.parse(text)
    except entry_points_txt.MalformedLine as exc:
        return [], f"entry_points.txt line {exc.number} has no '='"
    if sys.version_info >= (3, 15):
        for _group, name, value in found:
            if not entry_points_txt.is_valid_value(value):
                return [], f"entry_points.txt: {name} = {value} is not 'module[:attr] [extras]'"
    return [(name, value) for group, name, value in found if group == GROUP], None


def _watch(path, child, watched):
    # type: (str, str, list[list[Any]]) -> None
    """Record the stamps of an entry that may change in place (see _startup_entries.is_sealed)."""
    for name in _WATCHED_FILES:
        rel = os.path.join(child, name) if name else child
        try:
            watched.append([rel, _boot.stamp(os.stat(os.path.join(path, rel)))])
        except OSError:
            pass  # created later: that changes the entry's own stamp


def scan(path):
    # type: (str) -> tuple[list[Any], bool]
    """What the hook table records for one site directory, and whether the scan was undisturbed."""
    st = os.stat(path)
    before = [st.st_dev, st.st_ino, st.st_mtime_ns, st.st_ctime_ns]
    names, hooks, bad, watched = [], [], [], []  # type: list[str], list[list[str]], list[list[str]], list[list[Any]]
    seen = set()
    for child in list_metadata(path)[0]:
        entry = os.path.join(path, child)
        if not is_sealed(entry, child):
            _watch(path, child, watched)
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
        pairs = []  # type: list[tuple[str, str]]
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
    return _boot.site_entry(before, "\t".join(names), hooks, bad, watched), before == after


def older_than(reference_ns, entry):
    # type: (int, list[Any]) -> bool
    """git's racy-clean rule, as for the caches: every stamp strictly older than the reference.

    A change in the same timestamp tick as the scan, after it, would leave every stamp as it was.
    """
    stamps = [entry[SIGNATURE][2:]] + [stamp[3:] for _name, stamp in entry[WATCHED]]
    return all(t < reference_ns for pair in stamps for t in pair)


def render(tables):
    # type: (dict[str, list[Any]]) -> str
    """The table file's text for {site dir: entry}; entries that a field cannot hold are left out."""
    lines = [_boot.TABLE_HEADER]
    for path, entry in tables.items():
        names = entry[NAMES]
        rows = [["dir", path, *map(str, entry[SIGNATURE])]]
        if names:
            rows.append(["names", names])
        rows += [["watch", name, *map(str, stamp)] for name, stamp in entry[WATCHED]]
        rows += [["hook", *hook] for hook in entry[HOOKS]]
        rows += [["bad", *problem] for problem in entry[PROBLEMS]]
        # A tab or newline inside a field cannot be written; that directory is rescanned instead.
        if any("\t" in field or "\n" in field for row in rows for field in row[1:] if row[0] != "names"):
            continue
        if "\n" in names:
            continue
        lines.extend("\t".join(row) for row in rows)
    lines += ["end", ""]
    return "\n".join(lines)


class _Pending:
    """The table's next version: a temporary file beside it, made before any directory is scanned.

    Its birth time is the reference of the racy rule (same filesystem, same clock as the site
    directories' stamps in the usual case), so it must exist before the scan starts. It is made
    by epfinder._startup_atomic (a random name, O_EXCL|O_NOFOLLOW in a checked folder, 0644): a folder
    that others could have planted is refused, and then nothing is written.
    """

    def __init__(self, file):
        # type: (str) -> None
        from . import _startup_atomic  # deferred: a start imports this module only to rescan

        self.fd = self.file = None
        try:
            self.file = _startup_atomic.AtomicFile(file)
            self.fd = self.file.fd
            self.reference_ns = os.fstat(self.fd).st_mtime_ns  # type: ignore[arg-type]  # a new AtomicFile's fd is open
        except OSError:
            self.close()

    def commit(self, tables):
        # type: (dict[str, list[Any]]) -> bool
        """Replace the table file atomically; False when it cannot be written (full disk...)."""
        try:
            self.file.commit(render(tables).encode("utf-8"))  # type: ignore[union-attr]  # callers check fd
            return True
        except OSError:
            return False
        finally:
            self.close()

    def close(self):
        # type: () -> None
        if self.file is not None:
            self.file.abort()
            self.file = None
        self.fd = None


def refresh(file, dirs, tables, stale):
    # type: (str, list[str], dict[str, list[Any]], list[str]) -> dict[str, list[Any]]
    """Rescan ``stale`` directories; write the table when every scan may be trusted.

    Returns {site dir: entry} for ``dirs``. A directory that cannot be listed has no hooks.
    """
    fresh = {p: tables[p] for p in dirs if p in tables and p not in stale}
    pending = _Pending(file) if os.path.isdir(os.path.dirname(file)) else None
    try:
        return _refresh(pending, dirs, tables, stale, fresh)
    finally:
        if pending is not None:
            pending.close()


def _refresh(pending, dirs, tables, stale, fresh):
    # type: (_Pending | None, list[str], dict[str, list[Any]], list[str], dict[str, list[Any]]) -> dict[str, list[Any]]
    # Entries of site directories not in this start's sys.path (the user site under -s, say) are
    # kept while the directory exists: their signatures are checked whenever they are used.
    trusted = {p: e for p, e in tables.items() if p not in stale and (p in fresh or os.path.isdir(p))}
    for path in stale:
        try:
            entry, undisturbed = scan(path)
        except OSError:
            continue
        fresh[path] = entry
        if undisturbed and not os.stat(path).st_mode & 0o002 and pending is not None \
                and pending.fd is not None and older_than(pending.reference_ns, entry):
            trusted[path] = entry
    if pending is not None and pending.fd is not None and trusted != tables:
        pending.commit(trusted)
    return {p: fresh[p] for p in dirs if p in fresh}


def rebuild(wait=False, site=None):
    # type: (bool, str | None) -> bool
    """Rescan every site directory and rewrite the table (install, refresh, startup list).

    ``site``: the site directory whose table to write (default: the one whose config is in force
    in this process). Returns True when the table on disk now covers every site directory. With
    ``wait``, a directory changed within the scan's timestamp tick is rescanned until it holds
    still (at most ~4 s).
    """
    dirs = [p for p in _boot.startup_site_dirs() if os.path.isdir(p)]
    if site is None:
        file = _boot.startup_table_file()
        site = os.path.dirname(os.path.dirname(file))
    else:
        file = os.path.join(site, _boot.CONFIG_DIR, _boot.STARTUP_TABLE)
    deadline = time.monotonic() + _WAIT_S
    while True:
        refresh(file, dirs, {}, dirs)
        written = _boot.read_startup_table(file, site) or {}
        if all(p in written for p in dirs) or not wait or time.monotonic() > deadline:
            return all(p in written for p in dirs)
        time.sleep(0.2)

