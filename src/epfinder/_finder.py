"""The distribution finder: which directories it serves from caches, and the fallback to a scan.

It replaces what ``MetadataPathFinder.find_distributions`` does, path by path and in the same
order: a directory with a usable cache is answered from it, anything else (``''``, relative
entries, zip files, eggs, unreadable directories) goes to the library's own ``FastPath`` search.
Any failure inside epfinder degrades to that plain search, never to a different answer.
"""

import itertools
import operator
import os
import stat
import sys

import _epfinder_boot as _boot

from . import _cache, _entry_points_txt, _scan
from .errors import CacheError


def distribution_class(md):
    # Deferred: _dist imports pathlib, which importlib.metadata has loaded by the time this runs
    # for it, and which the application API (epfinder.entry_points) never needs.
    from ._dist import distribution_class as for_library

    return for_library(md)

# path -> DirCache that may be reused while the directory's signature is unchanged
_states = {}

# What served() returns in "only" mode for a directory without a cache: no distributions.
NOTHING = object()


def invalidate():
    """Forget every cache read in this process (importlib.invalidate_caches, fork, mode change)."""
    _states.clear()


os.register_at_fork(after_in_child=invalidate)


def _debug():
    return not sys.flags.ignore_environment and os.environ.get("EPFINDER_DEBUG") == "1"


def served(path, recheck=False):
    """The DirCache that answers for ``path``, or None when the plain scan must answer."""
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
    signature = _scan.dir_signature(st)
    if state is not None and _usable(state, signature, mode, recheck):
        return state
    cache = _cache.load(path, st.st_uid)
    if cache is not None and _usable(cache, signature, mode, recheck):
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


def _usable(cache, signature, mode, recheck):
    if mode in ("trust", "only") and not recheck:
        return True
    if cache.signature != signature:
        return False
    try:
        return cache.stamps_match() if mode == "strict" else cache.watched_match()
    except CacheError:
        return False  # a corrupt stamps table: rebuilt, like any cache that cannot be checked


def _forget(path):
    """A cache found unusable while reading it: drop it here and on disk, so the next query rebuilds."""
    _states.pop(path, None)
    try:
        _cache.discard(path)
    except Exception:
        pass


def _served_or_none(path, recheck=False):
    try:
        state = served(path, recheck)
        # Names that the stdlib of 3.15 and the backport normalize differently: plain code only.
        return None if state is not None and state is not NOTHING and state.ambiguous else state
    except Exception:
        if _debug():
            raise
        _states.pop(path, None)
        return None


def _metadata_module():
    # Deferred: only reached from importlib.metadata itself, which is loaded by then.
    import importlib.metadata

    return importlib.metadata


def find_distributions(context=None):
    """PathFinder.find_distributions for the stdlib importlib.metadata."""
    return search(_metadata_module(), context)


# The backport's MetadataPathFinder.find_distributions stand-ins: function -> the module it serves.
_backport_resolvers = {}
_replaced_finders = {}  # MetadataPathFinder class -> the find_distributions it had


def serve_backport(md):
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

    def find_distributions(context=None):
        return search(md, context)

    _backport_resolvers[find_distributions] = md
    _replaced_finders[finder] = current
    finder.find_distributions = staticmethod(find_distributions)


def _library_of(resolver):
    """The importlib.metadata flavour a discovery resolver is epfinder's stand-in for, or None."""
    if resolver is _boot.find_distributions:
        return _metadata_module()
    return _backport_resolvers.get(resolver)


def search(md, context=None):
    """MetadataPathFinder.find_distributions(context) of ``md``, served from caches."""
    if context is None:
        context = md.DistributionFinder.Context()
    paths = context.path
    prepared = md.Prepared(context.name)
    return itertools.chain.from_iterable(_search_path(md, path, prepared) for path in paths)


def _plain(md, path, prepared):
    if type(path) is str and os.path.isabs(path):
        try:
            os.stat(path)
        except FileNotFoundError:
            # FastPath finds nothing there either, but only after failing to open it as a zip
            # archive, which makes the backport import zipp and zipfile (milliseconds).
            return ()
    return map(md.PathDistribution, md.FastPath(path).search(prepared))


def _search_path(md, path, prepared):
    found = _search_cache(md, path, prepared)
    # Outside any except block: an exception of the plain code reaches the caller as it is.
    return _plain(md, path, prepared) if found is None else found


def _search_cache(md, path, prepared):
    """The distributions the cache of ``path`` answers, or None when the plain search must."""
    state = _served_or_none(path)
    if state is None:
        return None
    if state is NOTHING:
        return ()
    try:
        if prepared:
            indices = state.lookup(prepared.normalized)
            if not indices and _boot.mode == "trust":
                # trust: a name the cache does not know may have been installed since.
                state = _served_or_none(path, recheck=True)
                if state is None or state is NOTHING:
                    return None if state is None else ()
                indices = state.lookup(prepared.normalized)
        else:
            indices = range(state.count)
        cls = distribution_class(md)
        return [cls(state, i) for i in indices]
    except CacheError:
        if _debug():
            raise
        _forget(path)
        return None


# --- finishing importlib.metadata as it is imported -------------------------------------------


def patching_spec(hook, fullname, path, target):
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
        spec.loader = _PatchingLoader(spec.loader)
    return spec


class _PatchingLoader:
    def __init__(self, loader):
        self.loader = loader

    def __getattr__(self, name):
        return getattr(self.loader, name)

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        # The module sees its real loader, as it would without epfinder.
        module.__spec__.loader = module.__loader__ = self.loader
        self.loader.exec_module(module)
        try:
            patch_module(module)
        except Exception:
            if _debug():
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

_patched = {}  # module -> (original entry_points, the function put in its place)
_MISSING = object()


def patch_module(md):
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
    md.entry_points = replacement


_patched_packages = {}  # module -> (original packages_distributions, the function put in its place)


def _patch_packages_distributions(md):
    from . import _packages

    original = getattr(md, "packages_distributions", None)
    if original is None or md in _patched_packages:
        return
    shape = _packages.shape_of(md)
    if shape is None:
        return
    replacement = _packages.make_packages_distributions(md, original, shape)
    _patched_packages[md] = (original, replacement)
    md.packages_distributions = replacement


# Distribution._prefer_valid of CPython 3.15, by the globals it uses: it reads `metadata` of each
# distribution in turn until one has it, which for version() and distribution() means parsing a
# METADATA file with email (milliseconds) where 3.14 parsed nothing.
_PREFER_VALID_BY_METADATA = frozenset({"ExceptionTrap", "MetadataNotFound", "passes", "operator",
                                       "attrgetter", "bucket", "itertools", "chain"})
_patched_prefer_valid = {}  # Distribution class -> (original staticmethod, the one put in its place)


def _patch_prefer_valid(md):
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
    names = func.__globals__
    trap, missing, bucket = names["ExceptionTrap"], names["MetadataNotFound"], names["bucket"]

    def _prefer_valid(dists):
        has_metadata = trap(missing).passes(operator.attrgetter("metadata"))

        def check(dist):
            known = getattr(dist, "_epfinder_has_metadata", None)
            return True if known is not None and known() else has_metadata(dist)

        buckets = bucket(dists, check)
        return itertools.chain(buckets[True], buckets[False])

    _prefer_valid.__doc__ = func.__doc__
    _prefer_valid.__wrapped__ = func
    replacement = staticmethod(_prefer_valid)
    _patched_prefer_valid[cls] = (original, replacement)
    cls._prefer_valid = replacement


def unpatch_all():
    for cls, (original, replacement) in list(_patched_prefer_valid.items()):
        if cls.__dict__.get("_prefer_valid") is replacement:
            cls._prefer_valid = original
    _patched_prefer_valid.clear()
    for md, (original, replacement) in list(_patched.items()):
        if md.entry_points is replacement:
            md.entry_points = original
    _patched.clear()
    for md, (original, replacement) in list(_patched_packages.items()):
        if md.packages_distributions is replacement:
            md.packages_distributions = original
    _patched_packages.clear()
    for finder, original in list(_replaced_finders.items()):
        current = finder.__dict__.get("find_distributions")
        if isinstance(current, staticmethod) and current.__func__ in _backport_resolvers:
            finder.find_distributions = original
    _replaced_finders.clear()
    _backport_resolvers.clear()


def _discovery(md):
    """What plain entry_points() relies on; if any of it is replaced, it is answered plainly."""
    return (
        md.distributions,
        md.Distribution.__dict__.get("discover"),
        md.Distribution.__dict__.get("_discover_resolvers"),
        getattr(md, "_unique", None),
        getattr(md, "unique_everseen", None),
    )


def _make_entry_points(md, original, shape):
    discovery = _discovery(md)
    prefer_valid = md.Distribution.__dict__.get("_prefer_valid") if shape == _PREFER_VALID else None

    def entry_points(**params):
        if _boot.mode is None or discovery != _discovery(md) or (
            prefer_valid is not None and md.Distribution.__dict__.get("_prefer_valid") is not prefer_valid
        ):
            return original(**params)
        try:
            eps = _collect(md, params, require_metadata=shape == _PREFER_VALID)
        except Exception:
            if _debug():
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
    entry_points.__wrapped__ = original
    return entry_points


class _Dedup:
    """unique_everseen over _normalized_name, where cached directories count as sets of names."""

    def __init__(self):
        self.names = set()
        self.caches = []

    def __bool__(self):
        return bool(self.names or self.caches)

    def seen(self, name):
        return name in self.names or any(name in c.normset() for c in self.caches)


class _MetadataMissing(Exception):
    """A distribution without metadata, which _prefer_valid would move: answer plainly."""


class _InvalidValue(Exception):
    """An entry point the library would refuse to create: answer plainly, which raises."""


_validating = {}  # EntryPoint class -> whether it checks its value on creation


def validates_values(lib):
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
            known = True if pattern == _entry_points_txt.PATTERN else None
        except Exception:
            known = None
        _validating[cls] = known
    if known is None:
        raise _InvalidValue
    return known


def _has_metadata(lib, dist):
    check = getattr(lib, "_safe_has_metadata", None)
    return check(dist) if check is not None else dist._has_metadata()


def _collect(md, params, require_metadata=False):
    """The entry points plain entry_points() would select from, in its order, for ``params``.

    Entries that cannot match the group or name asked for are left out early, with the same
    comparison select() makes, so the result is a superset of the answer in the plain order.
    With ``require_metadata`` (the backport from 10.1, whose entry_points() first moves every
    distribution without metadata to the end), it raises _MetadataMissing on meeting one, since
    then the order differs; such environments are answered by the plain function.
    """
    group = params.get("group", _MISSING)
    name = params.get("name", _MISSING)
    eq = operator.eq

    def wanted(ep_group, ep_name):
        return (group is _MISSING or eq(group, ep_group)) and (name is _MISSING or eq(name, ep_name))

    result = []
    dedup = _Dedup()

    def add_plain(dists):
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
        lib = _library_of(resolver)
        if lib is None:
            add_plain(resolver(context))
            continue
        everything = lib.Prepared(None)
        cls = distribution_class(lib)
        for path in context.path:
            state = _served_or_none(path)
            if state is NOTHING:
                continue
            if state is None:
                add_plain(_plain(lib, path, everything))
                continue
            if require_metadata and any(not cls(state, i)._has_metadata() for i in state.unnamed()):
                raise _MetadataMissing
            if state.invalid and validates_values(lib) and not all(
                    i in state.shadowed or dedup.seen(state.normalized()[i]) for i in state.invalid):
                raise _InvalidValue
            if not state.fast:
                add_plain(cls(state, i) for i in range(state.count))
                continue
            try:
                found = _from_group_index(lib, state, group, name, wanted, dedup, cls)
            except CacheError:
                if _debug():
                    raise
                _forget(path)
                add_plain(_plain(lib, path, everything))
                continue
            result.extend(found)
            dedup.caches.append(state)
    return result


def group_entries(state, group, name, wanted, dedup):
    """(dist index, group, name, value) of the entries of one cached directory that
    entry_points(**params) would collect, in its order."""
    shadowed = state.shadowed
    norms = state.normalized() if dedup else None
    if type(group) is str and name is _MISSING and not shadowed and norms is None:
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


def _from_group_index(md, state, group, name, wanted, dedup, cls):
    """The entry points of one cached directory that entry_points(**params) would collect."""
    make = md.EntryPoint
    found = []
    dists = {}
    for d, g, n, v in group_entries(state, group, name, wanted, dedup):
        dist = dists.get(d)
        if dist is None:
            dist = dists[d] = cls(state, d)
        found.append(make(name=n, value=v, group=g)._for(dist))
    return found
