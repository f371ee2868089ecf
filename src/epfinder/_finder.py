"""The distribution finder put into importlib.metadata, and the patches that finish that module.

It replaces what ``MetadataPathFinder.find_distributions`` does, path by path and in the same
order: a directory with a usable cache is answered from it, anything else (``''``, relative
entries, zip files, eggs, unreadable directories) goes to the library's own ``FastPath`` search.
Which cache serves a path is decided one layer down, in epfinder._serve. Any failure inside
epfinder degrades to that plain search, never to a different answer.
"""

from __future__ import annotations

import itertools
import operator
import sys

import _epfinder_boot as _boot

from . import _serve
from ._serve import MISSING, NOTHING, debug, plain, served_or_none
from .errors import CacheError

# ``md`` below is importlib.metadata or the importlib_metadata backport: their classes differ, so
# what they make (distributions, contexts, entry points) is Any to the checker.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator, Sequence
    from importlib.abc import Loader
    from importlib.machinery import ModuleSpec
    from types import ModuleType
    from typing import Any

    from ._cache import DirCache


def distribution_class(md: ModuleType) -> type:
    # Deferred: _dist imports pathlib, which importlib.metadata has loaded by the time this runs
    # for it, and which the application API (epfinder.entry_points) never needs.
    from ._dist import distribution_class as for_library

    return for_library(md)


def find_distributions(context: Any = None) -> Iterator[Any]:
    """PathFinder.find_distributions for the stdlib importlib.metadata."""
    return search(_serve.metadata_module(), context)


_replaced_finders: dict[type[Any], object] = {}  # MetadataPathFinder class -> the find_distributions it had


def serve_backport(md: ModuleType) -> None:
    """Answer the importlib_metadata backport's path discovery from the caches too.

    Importing the backport removes PathFinder.find_distributions (ours included) and appends its
    own MetadataPathFinder to sys.meta_path; from then on every caller, stdlib or backport, gets
    its distributions from that finder. Its find_distributions is replaced by one that answers as
    search() does, with the backport's own classes.
    """
    finder = getattr(md, "MetadataPathFinder", None)
    current = getattr(finder, "__dict__", {}).get("find_distributions")
    if current is None or finder in _replaced_finders:
        return
    if not all(hasattr(md, a) for a in ("FastPath", "Prepared", "PathDistribution", "DistributionFinder")):
        return  # a shape this module does not know: the backport scans as usual

    def find_distributions(context: Any = None) -> Iterator[Any]:
        return search(md, context)

    _serve.backport_resolvers[find_distributions] = md
    # finder is not None: it had a find_distributions of its own.
    _replaced_finders[finder] = current  # type: ignore[index]
    finder.find_distributions = staticmethod(find_distributions)  # type: ignore[union-attr]


def search(md: ModuleType, context: Any = None) -> Iterator[Any]:
    """MetadataPathFinder.find_distributions(context) of ``md``, served from caches."""
    if context is None:
        context = md.DistributionFinder.Context()
    paths = context.path
    prepared = md.Prepared(context.name)
    return itertools.chain.from_iterable(_search_path(md, path, prepared) for path in paths)


def _search_path(md: ModuleType, path: str, prepared: Any) -> Iterable[Any]:
    found = _search_cache(md, path, prepared)
    # Outside any except block: an exception of the plain code reaches the caller as it is.
    return plain(md, path, prepared) if found is None else found


def _search_cache(md: ModuleType, path: str, prepared: Any) -> Sequence[Any] | None:
    """The distributions the cache of ``path`` answers, or None when the plain search must."""
    # A search by name reads its distributions only through epfinder._dist, which checks each
    # one's own files: the watched entries it does not find need no check (see _serve.served).
    state = served_or_none(path, names_only=bool(prepared))
    if state is None:
        return None
    if state is NOTHING:
        return ()
    try:
        if prepared:
            indices = state.lookup(prepared.normalized)
            if not indices and _boot.mode == "trust":
                # trust: a name the cache does not know may have been installed since.
                state = served_or_none(path, recheck=True)
                if state is None or state is NOTHING:
                    return None if state is None else ()
                indices = state.lookup(prepared.normalized)
        else:
            indices = range(state.count)
        cls = distribution_class(md)
        return [cls(state, i) for i in indices]
    except CacheError:
        if debug():
            raise
        _serve.forget(path)
        return None


# --- finishing importlib.metadata as it is imported -------------------------------------------


def patching_spec(
    hook: object, fullname: str, path: Sequence[str] | None, target: ModuleType | None
) -> ModuleSpec | None:
    """The spec the other finders give ``fullname``, with a loader that patches it after exec."""
    for finder in sys.meta_path:
        if finder is hook or not hasattr(finder, "find_spec"):
            continue
        spec = finder.find_spec(fullname, path, target)
        if spec is not None:
            break
    else:
        return None
    if spec.loader is not None and hasattr(spec.loader, "exec_module"):
        spec.loader = _PatchingLoader(spec.loader)  # type: ignore[assignment]  # a Loader by duck typing
    return spec


class _PatchingLoader:
    def __init__(self, loader: Loader) -> None:
        self.loader = loader

    def __getattr__(self, name: str) -> Any:
        return getattr(self.loader, name)

    def create_module(self, spec: ModuleSpec) -> ModuleType | None:
        return self.loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        # The module sees its real loader, as it would without epfinder.
        module.__spec__.loader = module.__loader__ = self.loader  # type: ignore[union-attr]  # set while it is loaded
        self.loader.exec_module(module)
        try:
            patch_module(module)
        except Exception:
            if debug():
                raise


# --- entry_points() answered from the group index ---------------------------------------------

# The shapes of entry_points() this module knows how to answer faster, by the globals they use:
# the stdlib's in 3.10 and 3.11 (both end in SelectableGroups.load(eps).select()), in 3.12 and
# later and in the backport up to 10.0 (EntryPoints(eps).select()), and the backport's from 10.1,
# which first moves distributions without metadata to the end (Distribution._prefer_valid).
_SELECTABLE, _ENTRYPOINTS, _PREFER_VALID = "selectable", "entrypoints", "prefer-valid"
_SHAPES = {
    frozenset({"operator", "attrgetter", "functools", "partial", "unique_everseen", "itertools",
               "chain", "from_iterable", "distributions", "SelectableGroups", "load", "select"}): _SELECTABLE,
    frozenset({"itertools", "chain", "from_iterable", "_unique", "distributions",
               "SelectableGroups", "load", "select"}): _SELECTABLE,
    frozenset({"itertools", "chain", "from_iterable", "_unique", "distributions", "EntryPoints",
               "select"}): _ENTRYPOINTS,
    frozenset({"itertools", "chain", "from_iterable", "_unique", "Distribution", "_prefer_valid",
               "distributions", "EntryPoints", "select"}): _PREFER_VALID,
}

# module -> (original entry_points, the function put in its place)
_patched: dict[ModuleType, tuple[Callable[..., Any], Callable[..., Any]]] = {}


def patch_module(md: ModuleType) -> None:
    """Serve ``md`` (importlib.metadata or the backport) from the caches as far as its shape allows.

    Its entry_points() is replaced by one that reads the group index, if its shape is a known one.
    """
    if _boot.mode is None:
        return
    if md.__name__ == "importlib_metadata":
        serve_backport(md)
    if md in _patched:
        return
    _patch_packages_distributions(md)
    _patch_prefer_valid(md)
    original = md.entry_points
    names = frozenset(getattr(getattr(original, "__code__", None), "co_names", ()))
    shape = _SHAPES.get(names)
    if shape is None:
        return
    replacement = _make_entry_points(md, original, shape)
    _patched[md] = (original, replacement)
    md.entry_points = replacement  # type: ignore[attr-defined]  # patching the library


# module -> (original packages_distributions, the function put in its place)
_patched_packages: dict[ModuleType, tuple[Callable[..., Any], Callable[..., Any]]] = {}


def _patch_packages_distributions(md: ModuleType) -> None:
    """Put a stand-in in place that loads epfinder._packages on its first call only.

    `import importlib.metadata` patches the library, and many programs never call
    packages_distributions(): they should not pay for loading what answers it.
    """
    original = getattr(md, "packages_distributions", None)
    if original is None or md in _patched_packages:
        return
    discovery = _serve.discovery(md)
    answer: list[Callable[[], dict[str, list[str]]]] = []

    def packages_distributions() -> dict[str, list[str]]:
        if not answer:
            from . import _packages

            shape = _packages.shape_of(md, original)
            answer.append(original if shape is None else
                          _packages.make_packages_distributions(md, original, shape, discovery))
        return answer[0]()

    for attr in ("__doc__", "__name__", "__qualname__", "__module__"):
        setattr(packages_distributions, attr, getattr(original, attr))
    packages_distributions.__wrapped__ = original  # type: ignore[attr-defined]  # as functools.wraps sets it
    _patched_packages[md] = (original, packages_distributions)
    md.packages_distributions = packages_distributions  # type: ignore[attr-defined]  # patching the library


# Distribution._prefer_valid of CPython 3.15, by the globals it uses: it reads `metadata` of each
# distribution in turn until one has it, which for version() and distribution() means parsing a
# METADATA file with email (milliseconds) where 3.14 parsed nothing.
_PREFER_VALID_BY_METADATA = frozenset({"ExceptionTrap", "MetadataNotFound", "passes", "operator",
                                       "attrgetter", "bucket", "itertools", "chain"})
# Distribution class -> (original staticmethod, the one put in its place)
_patched_prefer_valid: dict[type[Any], tuple[object, object]] = {}


def _patch_prefer_valid(md: ModuleType) -> None:
    """Answer 3.15's _prefer_valid without parsing the METADATA of a cached distribution.

    A cached distribution whose name the cache knows had a metadata file when it was scanned (and
    the cache is current), so `metadata` would not raise MetadataNotFound: it goes to the front
    bucket without being read. Any other distribution is asked as the original asks it.
    """
    cls = md.Distribution
    original = cls.__dict__.get("_prefer_valid")
    func = getattr(original, "__func__", None)
    if cls in _patched_prefer_valid or not isinstance(original, staticmethod) or \
            frozenset(getattr(getattr(func, "__code__", None), "co_names", ())) != _PREFER_VALID_BY_METADATA:
        return
    names = func.__globals__  # type: ignore[union-attr]  # not None: its code names matched above
    trap, missing, bucket = names["ExceptionTrap"], names["MetadataNotFound"], names["bucket"]

    def _prefer_valid(dists: Iterable[Any]) -> Iterator[Any]:
        has_metadata = trap(missing).passes(operator.attrgetter("metadata"))

        def check(dist: Any) -> bool:
            known = getattr(dist, "_epfinder_has_metadata", None)
            return True if known is not None and known() else has_metadata(dist)

        buckets = bucket(dists, check)
        return itertools.chain(buckets[True], buckets[False])

    _prefer_valid.__doc__ = func.__doc__
    _prefer_valid.__wrapped__ = func  # type: ignore[attr-defined]  # as functools.wraps sets it
    replacement = staticmethod(_prefer_valid)
    _patched_prefer_valid[cls] = (original, replacement)
    cls._prefer_valid = replacement


def unpatch_all() -> None:
    for cls, (original, replacement) in list(_patched_prefer_valid.items()):
        if cls.__dict__.get("_prefer_valid") is replacement:
            cls._prefer_valid = original
    _patched_prefer_valid.clear()
    for md, (original, replacement) in list(_patched.items()):
        if md.entry_points is replacement:
            md.entry_points = original  # type: ignore[attr-defined]  # patching the library back
    _patched.clear()
    for md, (original, replacement) in list(_patched_packages.items()):
        if md.packages_distributions is replacement:
            md.packages_distributions = original  # type: ignore[attr-defined]  # patching the library back
    _patched_packages.clear()
    for finder, original in list(_replaced_finders.items()):
        current = finder.__dict__.get("find_distributions")
        if isinstance(current, staticmethod) and current.__func__ in _serve.backport_resolvers:
            finder.find_distributions = original
    _replaced_finders.clear()
    _serve.backport_resolvers.clear()


def _make_entry_points(md: ModuleType, original: Callable[..., Any], shape: str) -> Callable[..., Any]:
    discovery = _serve.discovery(md)
    prefer_valid = md.Distribution.__dict__.get("_prefer_valid") if shape == _PREFER_VALID else None

    def entry_points(**params: Any) -> Any:
        if _boot.mode is None or discovery != _serve.discovery(md) or (
            prefer_valid is not None and md.Distribution.__dict__.get("_prefer_valid") is not prefer_valid
        ):
            return original(**params)
        try:
            eps = _collect(md, params, require_metadata=shape == _PREFER_VALID)
        except Exception:
            if debug():
                raise
            eps = None
        if eps is None:
            # Whatever went wrong, the plain function gives the plain answer, or raises the plain
            # exception: from here, outside the except block, so that nothing is chained to it.
            return original(**params)
        if type(params.get("group")) is str and params.keys() <= {"group", "name"}:
            # Every entry collected already matches, and one group needs no regrouping: this
            # is what the select() below would return, without testing each entry again.
            return md.EntryPoints(eps)
        if shape == _SELECTABLE:
            return md.SelectableGroups.load(eps).select(**params)
        return md.EntryPoints(eps).select(**params)

    entry_points.__doc__ = original.__doc__
    entry_points.__name__ = original.__name__
    entry_points.__qualname__ = original.__qualname__
    entry_points.__module__ = original.__module__
    entry_points.__wrapped__ = original  # type: ignore[attr-defined]  # as functools.wraps sets it
    return entry_points


class _MetadataMissing(Exception):
    """A distribution without metadata, which _prefer_valid would move: answer plainly."""


class _InvalidValue(Exception):
    """An entry point the library would refuse to create: answer plainly, which raises."""


_validating: dict[type[Any], bool | None] = {}  # EntryPoint class -> whether it checks its value on creation


def validates_values(lib: ModuleType) -> bool:
    """Whether ``lib`` raises ValueError when an EntryPoint with an invalid value is created.

    importlib_metadata 8.7+ and CPython 3.15 do; then plain entry_points() raises when any
    distribution it reads holds one, in whatever group. The scanner flags such distributions
    with the same pattern; a library with another pattern is never answered from the index.
    """
    cls = lib.EntryPoint
    known = _validating.get(cls)
    if known is None:
        try:
            cls(name="n", value="not a valid value!", group="g")
            known = False
        except ValueError:
            pattern = getattr(getattr(cls, "pattern", None), "pattern", None)
            from ._startup_entries import PATTERN

            known = True if pattern == PATTERN else None
        except Exception:
            known = None
        _validating[cls] = known
    if known is None:
        raise _InvalidValue
    return known


def _has_metadata(lib: ModuleType, dist: Any) -> bool:
    check = getattr(lib, "_safe_has_metadata", None)
    return check(dist) if check is not None else dist._has_metadata()


def _collect(md: ModuleType, params: dict[str, Any], require_metadata: bool = False) -> list[Any]:
    """The entry points plain entry_points() would select from, in its order, for ``params``.

    Entries that cannot match the group or name asked for are left out early, with the same
    comparison select() makes, so the result is a superset of the answer in the plain order.
    With ``require_metadata`` (the backport from 10.1, whose entry_points() first moves every
    distribution without metadata to the end), it raises _MetadataMissing on meeting one, since
    then the order differs; such environments are answered by the plain function.
    """
    group = params.get("group", MISSING)
    name = params.get("name", MISSING)
    eq = operator.eq

    def wanted(ep_group: str, ep_name: str) -> bool:
        return (group is MISSING or eq(group, ep_group)) and (name is MISSING or eq(name, ep_name))

    result: list[Any] = []
    dedup = _serve.Dedup()

    def addplain(dists: Iterable[Any]) -> None:
        for dist in dists:
            if require_metadata and not _has_metadata(md, dist):
                raise _MetadataMissing
            norm = dist._normalized_name
            if dedup.seen(norm):
                continue
            dedup.names.add(norm)
            result.extend(ep for ep in dist.entry_points if wanted(ep.group, ep.name))

    context = md.DistributionFinder.Context()
    for resolver in md.Distribution._discover_resolvers():
        # The distributions come from the resolver's library (after the backport is imported,
        # even stdlib callers get the backport's objects), so its classes build the answer.
        lib = _serve.library_of(resolver)
        if lib is None:
            addplain(resolver(context))
            continue
        everything = lib.Prepared(None)
        cls = distribution_class(lib)
        for path in context.path:
            state = served_or_none(path)
            if state is NOTHING:
                continue
            if state is None:
                addplain(plain(lib, path, everything))
                continue
            if require_metadata and any(not cls(state, i)._has_metadata() for i in state.unnamed()):
                raise _MetadataMissing
            if state.invalid and validates_values(lib) and not all(
                    i in state.shadowed or dedup.seen(state.normalized()[i]) for i in state.invalid):
                raise _InvalidValue
            if not state.fast:
                addplain(cls(state, i) for i in range(state.count))
                continue
            try:
                found = _from_group_index(lib, state, group, name, wanted, dedup, cls)
            except CacheError:
                if debug():
                    raise
                _serve.forget(path)
                addplain(plain(lib, path, everything))
                continue
            result.extend(found)
            dedup.caches.append(state)
    return result


def _from_group_index(
    md: ModuleType, state: DirCache, group: object, name: object, wanted: Callable[[str, str], bool],
    dedup: _serve.Dedup, cls: type,
) -> list[Any]:
    """The entry points of one cached directory that entry_points(**params) would collect."""
    make = md.EntryPoint
    found = []
    dists: dict[int, Any] = {}
    for d, g, n, v in _serve.group_entries(state, group, name, wanted, dedup):
        dist = dists.get(d)
        if dist is None:
            dist = dists[d] = cls(state, d)
        found.append(make(name=n, value=v, group=g)._for(dist))
    return found
