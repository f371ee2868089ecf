"""packages_distributions() answered from a side cache of each directory's top-level names.

A plain packages_distributions() reads every distribution's ``top_level.txt`` and, where that is
missing, parses its RECORD: the most expensive call in importlib.metadata. How it infers names
differs between Python versions and backport releases, so epfinder never re-implements it: it runs
the library's own per-distribution code once, stores what that code returned for each distribution
of a cached directory, and reuses it while the directory's cache is unchanged.

The side file is keyed by a fingerprint of that code (``flavour``), so an interpreter or library
whose code differs computes and stores its own. See docs/cache-format.md.
"""

from __future__ import annotations

import collections
import os
import sys
import zlib

import _epfinder_boot as _boot

from . import _cache, _startup_atomic

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable
    from types import CodeType, ModuleType
    from typing import Any, TypeVar

    from ._cache import DirCache

    T = TypeVar("T")
    # (names_for(dist), name_of(dist)), as shape_of() finds them; a dist is the stdlib's or the backport's.
    Shape = tuple[Callable[[Any], Iterable[str]], Callable[[Any], str]]

FORMAT = "epfinder-top-level"
VERSION = 2

# packages_distributions() shapes, by the globals they use: 3.10 (top_level.txt only), 3.11 to
# 3.13 and the backport (declared or inferred), the backport 7+ (metadata may be None).
_DECLARED_ONLY = frozenset({"append", "collections", "defaultdict", "dict", "distributions", "list",
                            "metadata", "read_text", "split"})
_DECLARED_OR_INFERRED = frozenset({"_top_level_declared", "_top_level_inferred", "append", "collections",
                                   "defaultdict", "dict", "distributions", "list", "metadata"})
_WITH_MD_NONE = _DECLARED_OR_INFERRED | {"md_none"}


def shape_of(md: ModuleType, function: Callable[..., Any] | None = None) -> Shape | None:
    """(names_for(dist), name_of(dist)) as md's packages_distributions() (or ``function``)
    computes them, or None."""
    code = getattr(function or md.packages_distributions, "__code__", None)
    names = frozenset(getattr(code, "co_names", ()))
    if names == _DECLARED_ONLY:
        return (lambda dist: (dist.read_text("top_level.txt") or "").split(),
                lambda dist: dist.metadata["Name"])
    if names in (_DECLARED_OR_INFERRED, _WITH_MD_NONE):
        declared, inferred = md._top_level_declared, md._top_level_inferred
        if names == _WITH_MD_NONE:
            md_none = md.md_none
            return (lambda dist: declared(dist) or inferred(dist), lambda dist: md_none(dist.metadata)["Name"])
        return lambda dist: declared(dist) or inferred(dist), lambda dist: dist.metadata["Name"]
    return None


def _code_key(code: CodeType) -> str:
    return repr((code.co_code, code.co_names, tuple(
        _code_key(c) if hasattr(c, "co_code") else repr(c) for c in code.co_consts)))


def flavour(md: ModuleType, lib: ModuleType) -> str:
    """A fingerprint of everything that decides the names: the caller's code and the dist's."""
    parts = [sys.implementation.cache_tag, md.__name__, lib.__name__]
    for owner, name in ((md, "packages_distributions"), (md, "_top_level_declared"),
                        (md, "_top_level_inferred"), (md, "_get_toplevel_name"), (md, "_topmost"),
                        (lib.PathDistribution, "read_text"), (lib.Distribution, "files")):
        value: Any = owner.__dict__.get(name) if isinstance(owner, type) else getattr(owner, name, None)
        value = getattr(value, "fget", value)
        while getattr(value, "__wrapped__", None) is not None:
            value = value.__wrapped__  # the library's own function, not epfinder's stand-ins for it
        code = getattr(value, "__code__", None)
        parts.append("" if code is None else _code_key(code))
    return f"{sys.implementation.cache_tag}-{zlib.crc32(repr(parts).encode()) & 0xFFFFFFFF:08x}"


# A side file holds a few names per distribution; anything larger is not one.
_MAX_SIDE_FILE = 64 << 20


def _load(state: DirCache, tag: str) -> list[list[str]] | None:
    for cache_file in _cache.candidate_files(state.path):
        try:
            # Checked on its descriptor before reading: a regular file that only root, this user or
            # the directory's owner can have written (never a FIFO, which would block).
            import json  # deferred: see epfinder._cache._dumps

            data = json.loads(_boot.read_trusted(_cache.side_file(cache_file, tag), state.path, _MAX_SIDE_FILE))
        except (OSError, ValueError, RecursionError):
            continue
        names = data.get("names") if type(data) is dict else None
        if (data.get("format") == FORMAT and data.get("version") == VERSION and data.get("path") == state.path
                and data.get("flavour") == tag and data.get("generation") == state.generation
                and type(names) is list and len(names) == state.count
                and all(type(n) is list and all(type(x) is str for x in n) for n in names)):
            return names
    return None


def _store(state: DirCache, tag: str, names: list[list[str]]) -> None:
    # Beside the first cache file there is where this interpreter writes caches: never into a base
    # interpreter's folder from a venv (docs/security.md, rule 8).
    for cache_file in _cache.writable_files(state.path):
        if not os.path.exists(cache_file):
            continue
        import json

        data = json.dumps({"format": FORMAT, "version": VERSION, "path": state.path, "flavour": tag,
                           "generation": state.generation, "count": state.count, "names": names},
                          ensure_ascii=True, separators=(",", ":"))
        try:
            # Beside the cache file, in a checked folder, 0644 whatever the umask (epfinder._startup_atomic).
            _startup_atomic.write(_cache.side_file(cache_file, tag), data.encode("ascii"))
        except OSError:
            pass  # the answer is right; only the next call is slower
        return


def _names_of_directory(
    state: DirCache, cls: type, tag: str, names_for: Callable[[Any], Iterable[str]]
) -> list[list[str]]:
    """What names_for() returns for each distribution of a cached directory, in search order.

    The side file belongs to one version of the directory's cache (its generation). That cache
    was found current just before, so the files read here are the ones it describes: a sealed
    entry does not change inside, and a change to a watched one makes a new cache, with another
    generation, at the next query.
    """
    if _boot.mode != "strict":  # strict checks files one by one; the side file records none
        names = _load(state, tag)
        if names is not None:
            return names
    names = [list(names_for(cls(state, i))) for i in range(state.count)]
    if _boot.mode != "strict" and state.trusted:
        _store(state, tag, names)
    return names


class _Raised(Exception):
    """The library's own code raised for a distribution, in the order the plain call would reach it."""

    def __init__(self, exc: Exception) -> None:
        self.exc = exc


def _as_plain(fn: Callable[[Any], T]) -> Callable[[Any], T]:
    def call(dist: Any) -> T:
        try:
            return fn(dist)
        except Exception as exc:
            raise _Raised(exc) from None
    return call


def serve(md: ModuleType, shape: Shape) -> dict[str, list[str]]:
    """md.packages_distributions(), with cached directories answered from their side files.

    The library's per-distribution code is called in the plain call's order (the names of a whole
    cached directory come first, so an exception there is left to the plain call), so an
    exception it raises is the one the plain call raises: it is passed on as _Raised.
    """
    names_for, name_of = shape
    names_in_order, name_of = _as_plain(names_for), _as_plain(name_of)
    pkg_to_dist: collections.defaultdict[str, list[str]] = collections.defaultdict(list)

    def add(dist: Any, names: Iterable[str]) -> None:
        for pkg in names:
            pkg_to_dist[pkg].append(name_of(dist))

    context = md.DistributionFinder.Context()
    for resolver in md.Distribution._discover_resolvers():
        lib = _cache.library_of(resolver)
        if lib is None:
            for dist in resolver(context):
                add(dist, names_in_order(dist))
            continue
        cls = _cache.distribution_class(lib)
        everything = lib.Prepared(None)
        tag = flavour(md, lib)
        for path in context.path:
            state = _cache.served_or_none(path)
            if state is _cache.NOTHING:
                continue
            if state is None:
                for dist in _cache.plain(lib, path, everything):
                    add(dist, names_in_order(dist))
                continue
            for i, names in enumerate(_names_of_directory(state, cls, tag, names_for)):
                if not names:
                    continue
                known = state.name(i)
                if known is None:
                    add(cls(state, i), names)
                else:
                    pkg_to_dist_append = [pkg_to_dist[pkg].append for pkg in names]
                    for append in pkg_to_dist_append:
                        append(known)
    return dict(pkg_to_dist)


def make_packages_distributions(
    md: ModuleType, original: Callable[[], dict[str, list[str]]], shape: Shape,
    discovery: tuple[object, ...] | None = None,
) -> Callable[[], dict[str, list[str]]]:
    if discovery is None:
        discovery = _cache.plain_discovery(md)

    def packages_distributions() -> dict[str, list[str]]:
        if _boot.mode is None or discovery != _cache.plain_discovery(md):
            return original()
        raised = None
        try:
            return serve(md, shape)
        except _Raised as plain:
            raised = plain.exc
        except Exception:
            if _cache.debug():
                raise
        if raised is not None:
            raise raised  # what the plain call raises, without reading every file again to raise it
        # The plain answer, or the plain exception, raised outside the except block.
        return original()

    for attr in ("__doc__", "__name__", "__qualname__", "__module__"):
        setattr(packages_distributions, attr, getattr(original, attr))
    packages_distributions.__wrapped__ = original  # type: ignore[attr-defined]  # as functools.wraps sets it
    return packages_distributions
