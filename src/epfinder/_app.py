"""entry_points() and version() for applications, answered from the caches.

``import importlib.metadata`` alone costs tens of milliseconds of a program's start (email,
zipfile, pathlib, csv, threading...). An application that only wants its plugins, or one version,
can ask epfinder instead: with fresh caches, nothing of importlib.metadata, email or zipfile is
imported. Whenever the caches cannot answer exactly (a path entry that is not a cached directory
and holds metadata, a distribution the cache knows only partly, another distribution finder on
sys.meta_path), the answer comes from importlib.metadata itself, with the same selection, order
and deduplication, so the result never depends on which way it was computed.
"""

import os
import sys

import _epfinder_boot as _boot

from . import _cache, _startup_entries

TYPE_CHECKING = False
if TYPE_CHECKING:
    import importlib.metadata
    from collections.abc import Callable, Iterator
    from re import Match
    from typing import Any

    from ._cache import DirCache

# importlib.metadata's EntryPoint.pattern: what module, attr and extras mean.
# Compiled on first use (module, attr, extras, load): listing entry points needs no re.
_PATTERN = r"(?P<module>[\w.]+)\s*(:\s*(?P<attr>[\w.]+)\s*)?((?P<extras>\[.*\])\s*)?$"


class Distribution:
    """The distribution an entry point comes from: its ``name`` and ``version``."""

    __slots__ = ("_source", "_values")

    def __init__(
        self, source: "tuple[DirCache, int] | importlib.metadata.Distribution", values: "tuple[str, str] | None" = None
    ) -> None:
        self._source = source  # (DirCache, index), or an importlib.metadata distribution
        self._values = values

    def _get(self) -> "tuple[str, str]":
        if self._values is None:
            source = self._source
            if isinstance(source, tuple):
                cache, index = source
                name, version = cache.name(index), cache.version(index)
                if name is None or version is None:  # unknown to the cache: the plain code knows
                    dist = _plain_distribution(cache, index)
                    name, version = dist.name, dist.version
            else:
                name, version = source.name, source.version
            self._values = (name, version)
        return self._values

    @property
    def name(self) -> str:
        return self._get()[0]

    @property
    def version(self) -> str:
        return self._get()[1]

    def __repr__(self) -> str:
        return f"<Distribution {self.name}=={self.version}>"


class EntryPoint:
    """An entry point, as importlib.metadata.EntryPoint describes it, with its distribution."""

    __slots__ = ("name", "value", "group", "dist")

    def __init__(self, name: str, value: str, group: str, dist: "Distribution") -> None:
        self.name, self.value, self.group, self.dist = name, value, group, dist

    def _match(self) -> "Match[str]":
        import re

        match = re.match(_PATTERN, self.value)
        if match is None:
            raise ValueError(f"entry point value {self.value!r} is not 'module[:attr] [extras]'")
        return match

    @property
    def module(self) -> str:
        return self._match().group("module")

    @property
    def attr(self) -> "str | None":
        return self._match().group("attr")

    @property
    def extras(self) -> "list[str]":
        import re

        return re.findall(r"\w+", self._match().group("extras") or "")

    def load(self) -> "Any":
        """Import the module and return the object the value names, as EntryPoint.load does."""
        match = self._match()
        __import__(match.group("module"))
        target = sys.modules[match.group("module")]
        for attr in filter(None, (match.group("attr") or "").split(".")):
            target = getattr(target, attr)
        return target

    def _key(self) -> "tuple[str, str, str]":
        return self.name, self.value, self.group

    def __eq__(self, other: object) -> bool:
        return isinstance(other, EntryPoint) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        return f"EntryPoint(name={self.name!r}, value={self.value!r}, group={self.group!r})"


class _Fallback(Exception):
    """The caches cannot answer this exactly: ask importlib.metadata."""


def _other_finders() -> bool:
    path_finder = _boot._path_finder()
    return any(
        getattr(finder, "find_distributions", None) is not None and finder is not path_finder
        for finder in sys.meta_path
    ) or getattr(path_finder, "find_distributions", None) is None


def _cached_directories() -> "Iterator[tuple[str, DirCache]]":
    """(path, DirCache) for every sys.path entry that holds metadata; _Fallback if one is not cached."""
    if _other_finders():
        raise _Fallback
    for path in sys.path:
        if type(path) is not str:
            raise _Fallback
        if not path or not os.path.isabs(path):
            try:
                children = os.listdir(path or ".")
            except OSError:
                continue  # FastPath finds nothing in what it cannot list
            if any(_startup_entries.is_metadata_child(c) for c in children):
                raise _Fallback
            continue
        state = _cache.served_or_none(path)
        if state is _cache.NOTHING:
            continue
        if state is None:
            if os.path.exists(path):
                # A zip, an egg, a directory that could not be served: the plain code knows.
                raise _Fallback
            continue
        yield path, state


def entry_points(group: "str | None" = None, name: "str | None" = None) -> "tuple[EntryPoint, ...]":
    """The entry points ``importlib.metadata.entry_points(group=group, name=name)`` would select.

    In the same order and with the same deduplication (the first distribution of a name on
    sys.path wins): distribution order, except that without a group Python 3.10 and 3.11 sort by
    group name, as their importlib.metadata does. With no argument, every entry point. Returns a tuple of
    EntryPoint, each with ``name``, ``value``, ``group``, ``module``, ``attr``, ``extras``, ``dist``
    (``dist.name``, ``dist.version``) and ``load()``.
    """
    want_group = _cache.MISSING if group is None else group
    want_name = _cache.MISSING if name is None else name

    def wanted(ep_group: str, ep_name: str) -> bool:
        return ((want_group is _cache.MISSING or want_group == ep_group)
                and (want_name is _cache.MISSING or want_name == ep_name))

    found: "list[EntryPoint] | None"
    try:
        found = []
        dedup = _cache.Dedup()
        for _path, state in _cached_directories():
            if not state.fast or state.invalid:
                # An invalid value: the library may refuse it (importlib_metadata 8.7+, 3.15),
                # and then its entry_points() raises; let it decide.
                raise _Fallback
            dists: "dict[int, Distribution]" = {}
            for d, g, n, v in _cache.group_entries(state, want_group, want_name, wanted, dedup):
                dist = dists.get(d)
                if dist is None:
                    dist = dists[d] = Distribution((state, d))
                found.append(EntryPoint(n, v, g, dist))
            dedup.caches.append(state)
    except (_Fallback, _cache.CacheError):
        found = None
    if found is None:  # outside the except block: the plain exception reaches the caller unchained
        found = _plain_entry_points(wanted)
    if group is None and sys.version_info < (3, 12):
        # Up to 3.11, importlib.metadata regroups a selection that is not by group (SelectableGroups),
        # sorting it by group name, stably.
        found.sort(key=lambda ep: ep.group)
    return tuple(found)


def version(distribution_name: str) -> str:
    """``importlib.metadata.version(distribution_name)``; raises its PackageNotFoundError."""
    try:
        if type(distribution_name) is not str or not distribution_name or not _startup_entries.normalizes_alike(distribution_name):
            raise _Fallback  # importlib.metadata's own ValueError, or its own normalization
        normalized = _boot.normalize(distribution_name)
        for _path, state in _cached_directories():
            indices = state.lookup(normalized)
            if indices:
                value = state.version(indices[0])
                if value is None:
                    raise _Fallback
                return value
        if _boot.mode == "trust":
            raise _Fallback  # trust may not know a name installed since; the plain search does
    except (_Fallback, _cache.CacheError):
        pass
    # Deferred: the slow path, and the exception callers catch, are importlib.metadata's.
    import importlib.metadata

    return importlib.metadata.version(distribution_name)


def _plain_entry_points(wanted: "Callable[[str, str], bool]") -> "list[EntryPoint]":
    # Deferred: only when the caches cannot answer.
    import importlib.metadata as md

    found: "list[EntryPoint]"
    seen: "set[str]"
    found, seen = [], set()
    for dist in md.distributions():
        normalized = dist._normalized_name  # type: ignore[attr-defined]  # private, in every supported version
        if normalized in seen:
            continue
        seen.add(normalized)
        info = Distribution(dist)
        found.extend(EntryPoint(ep.name, ep.value, ep.group, info)
                     for ep in dist.entry_points if wanted(ep.group, ep.name))
    return found


def _plain_distribution(cache: "DirCache", index: int) -> "importlib.metadata.PathDistribution":
    import importlib.metadata as md
    import pathlib

    return md.PathDistribution(pathlib.Path(cache.path, cache.entry(index)))
