"""Which cache serves a path: the lower half of the distribution finder, shared by every reader.

``served_or_none(path)`` says whether a ``sys.path`` entry is answered from its cache (a DirCache),
from nothing (``NOTHING``, "only" mode) or by the library's own scan (None, then ``plain()``).
epfinder._finder (which patches importlib.metadata), epfinder._packages, epfinder._dist and the
application API (epfinder._app) all ask here; this module imports none of them, and never
importlib.metadata itself.
"""

from __future__ import annotations

import os
import stat
import sys

import _epfinder_boot as _boot

from .errors import CacheError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from types import ModuleType
    from typing import Any, Callable, Iterable

    from ._cache import DirCache

# path -> DirCache that may be reused while the directory's signature is unchanged
_states: dict[str, DirCache] = {}

# What served() returns in "only" mode for a directory without a cache: no distributions.
# Typed Any: callers tell it apart by identity, on which the checker cannot narrow a plain object.
NOTHING: Any = object()


def invalidate() -> None:
    """Forget every cache read in this process (importlib.invalidate_caches, fork, mode change)."""
    _states.clear()


os.register_at_fork(after_in_child=invalidate)


def debug() -> bool:
    return not sys.flags.ignore_environment and os.environ.get("EPFINDER_DEBUG") == "1"


def served(path: str, recheck: bool = False, names_only: bool = False) -> DirCache | None:
    """The DirCache that answers for ``path``, or None when the plain scan must answer.

    ``names_only``: the caller looks distributions up by name and reads them only through
    epfinder._dist, which checks each one's own files before answering from the cache. Which
    entries a name finds depends on the listing alone (importlib.metadata's Lookup files entries
    by their directory names), so the directory's signature is all that is checked here, not the
    stamps of every watched entry: in a `pip install --target` folder on PYTHONPATH every entry is
    watched, and checking them all cost version() more than the plain scan it replaces.
    """
    if type(path) is not str or not os.path.isabs(path):
        return None
    mode = _boot.mode
    state = _states.get(path)
    if state is not None and mode in ("trust", "only") and not recheck:
        return state
    try:
        st = os.stat(path)
    except OSError:
        _states.pop(path, None)
        return None
    if not stat.S_ISDIR(st.st_mode) or os.path.basename(path).lower().endswith(".egg"):
        return None
    # Deferred, like every import below epfinder._finder: `import importlib.metadata` in an enabled
    # process loads _finder and this module to patch the library, and only a query needs the rest.
    from . import _cache

    signature = _boot.dir_signature(st)
    if state is not None and _usable(state, signature, mode, recheck, names_only):
        return state
    cache = _cache.load(path, st.st_uid)
    if cache is not None and _usable(cache, signature, mode, recheck, names_only):
        _states[path] = cache
        return cache
    if mode == "only":
        return NOTHING
    try:
        cache = _cache.build(path)
    except OSError:
        return None
    # A scan too close to the directory's last change is answered but not reused, except in the
    # modes that by contract check nothing.
    if cache.trusted or mode in ("trust", "only"):
        _states[path] = cache
    else:
        _states.pop(path, None)
    return cache


def _usable(cache: DirCache, signature: list[int], mode: str | None, recheck: bool, names_only: bool = False) -> bool:
    if mode in ("trust", "only") and not recheck:
        return True
    if cache.signature != signature:
        return False
    if names_only:
        return True  # each distribution found checks its own files (epfinder._dist._read)
    try:
        return cache.stamps_match() if mode == "strict" else cache.watched_match()
    except CacheError:
        return False  # a corrupt stamps table: rebuilt, like any cache that cannot be checked


def forget(path: str) -> None:
    """A cache found unusable while reading it: drop it here and on disk, so the next query rebuilds."""
    _states.pop(path, None)
    try:
        from . import _cache

        _cache.discard(path)
    except Exception:
        pass


def served_or_none(path: str, recheck: bool = False, names_only: bool = False) -> DirCache | None:
    try:
        state = served(path, recheck, names_only)
        # Names that the stdlib of 3.15 and the backport normalize differently: plain code only.
        return None if state is not None and state is not NOTHING and state.ambiguous else state
    except Exception:
        if debug():
            raise
        _states.pop(path, None)
        return None


def metadata_module() -> ModuleType:
    # Deferred: only reached from importlib.metadata itself, which is loaded by then.
    import importlib.metadata

    return importlib.metadata


def plain(md: ModuleType, path: str, prepared: Any) -> Iterable[Any]:
    if type(path) is str and os.path.isabs(path):
        try:
            os.stat(path)
        except FileNotFoundError:
            # FastPath finds nothing there either, but only after failing to open it as a zip
            # archive, which makes the backport import zipp and zipfile (milliseconds).
            return ()
    return map(md.PathDistribution, md.FastPath(path).search(prepared))


def discovery(md: ModuleType) -> tuple[object, ...]:
    """What plain entry_points() relies on; if any of it is replaced, it is answered plainly."""
    return (
        md.distributions,
        md.Distribution.__dict__.get("discover"),
        md.Distribution.__dict__.get("_discover_resolvers"),
        getattr(md, "_unique", None),
        getattr(md, "unique_everseen", None),
    )


MISSING = object()  # a parameter entry_points() was not given


class Dedup:
    """unique_everseen over _normalized_name, where cached directories count as sets of names."""

    def __init__(self) -> None:
        self.names: set[str] = set()
        self.caches: list[DirCache] = []

    def __bool__(self) -> bool:
        return bool(self.names or self.caches)

    def seen(self, name: str | None) -> bool:
        return name in self.names or any(name in c.normset() for c in self.caches)


def group_entries(
    state: DirCache, group: object, name: object, wanted: Callable[[str, str], bool], dedup: Dedup
) -> list[tuple[int, str, str, str]]:
    """(dist index, group, name, value) of the entries of one cached directory that
    entry_points(**params) would collect, in its order."""
    shadowed = state.shadowed
    norms = state.normalized() if dedup else None
    if type(group) is str and name is MISSING and not shadowed and norms is None:
        # The common query: one group, nothing to deduplicate, no test per entry.
        return [(d, group, n, v) for d, _seq, n, v in state.group(group)]
    if type(group) is str:
        entries = [(e[0], group, e[2], e[3]) for e in state.group(group)]
    else:
        entries = [(e[0], e[2], e[3], e[4]) for e in state.all_entry_points()]
    return [
        (d, g, n, v) for d, g, n, v in entries
        if d not in shadowed and wanted(g, n) and (norms is None or not dedup.seen(norms[d]))
    ]


# The importlib_metadata backport's MetadataPathFinder.find_distributions stand-ins that
# epfinder._finder installs: function -> the module it serves.
backport_resolvers: dict[Callable[..., Any], ModuleType] = {}


def library_of(resolver: Callable[..., Any]) -> ModuleType | None:
    """The importlib.metadata flavour a discovery resolver is epfinder's stand-in for, or None."""
    if resolver is _boot.find_distributions:
        return metadata_module()
    return backport_resolvers.get(resolver)
