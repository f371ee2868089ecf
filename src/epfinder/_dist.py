"""The Distribution subclass that answers from a cache record.

``name``, ``version``, ``_normalized_name`` and ``entry_points`` come from the cache without
touching the disk; everything else (``metadata``, ``files``, ``requires``, ``read_text``) is the
library's own PathDistribution code reading the real files. A value the cache records as unknown is
computed by that code too, so it raises what a plain scan would raise.
"""

from __future__ import annotations

import pathlib

import _epfinder_boot as _boot

from . import _serve
from .errors import CacheError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from types import ModuleType
    from typing import Any, Callable

    from ._cache import DirCache

_classes: dict[str, type] = {}
_UNKNOWN = object()


def _read(record: tuple[DirCache, int], getter: Callable[[DirCache, int], Any], check: bool = True) -> Any:
    """getter(cache, index), or _UNKNOWN when the plain code must answer.

    A distribution object may be kept and asked again after a reinstall; a plain one re-reads
    its files then, so the cache answers only while it still describes this distribution.

    Tables are decoded (and their checksums checked) on first use, after the distribution object
    was handed out; a corrupt one must not reach the caller. The file is deleted so that the next
    query rebuilds it, and the plain code answers this one.
    """
    cache, index = record
    try:
        if check and not cache.current(_boot.mode, index):
            return _UNKNOWN
        return getter(cache, index)
    except CacheError:
        _serve.forget(cache.path)
        return _UNKNOWN


def _entry(cache: DirCache, index: int) -> str:
    # Not checked for currency: like a plain distribution's, the path is fixed when it is made.
    value = _read((cache, index), lambda c, i: c.entry(i), check=False)
    if value is _UNKNOWN:
        # The directory is unchanged (its signature matched), so a fresh listing puts the same
        # entry at the same place in search order.
        from ._startup_entries import list_metadata  # deferred: an unknown entry name is rare

        value = list_metadata(cache.path)[0][index]
    return value


def distribution_class(metadata_module: ModuleType) -> type:
    """The cached-distribution class for one importlib.metadata flavour (stdlib or backport)."""
    cls = _classes.get(metadata_module.__name__)
    if cls is None or cls.__bases__[0] is not metadata_module.PathDistribution:
        cls = _classes[metadata_module.__name__] = _make_class(metadata_module)
    return cls


def _make_class(md: ModuleType) -> type:
    base: Any = md.PathDistribution  # Any: whichever flavour's class, which the checker cannot know

    class CachedPathDistribution(base):
        """A PathDistribution whose name, version and entry points come from an epfinder cache."""

        def __init__(self, cache: DirCache, index: int) -> None:
            self._epfinder_record = (cache, index)

        def __getattr__(self, attr: str) -> pathlib.Path:
            # _path is built on first use: most queries never need it, and pathlib is slow.
            if attr == "_path":
                cache, index = self.__dict__["_epfinder_record"]
                path = pathlib.Path(cache.path, _entry(cache, index))
                self.__dict__["_path"] = path
                return path
            raise AttributeError(attr)

        def __reduce__(self) -> tuple[Any, tuple[pathlib.Path]]:
            # Pickles as the plain distribution it stands for; the cache stays in this process.
            return (base, (self._path,))

        @property
        def _normalized_name(self) -> str:
            value = _read(self._epfinder_record, lambda c, i: c.normalized()[i])
            return super()._normalized_name if value is None or value is _UNKNOWN else value

        @property
        def name(self) -> str:
            value = _read(self._epfinder_record, lambda c, i: c.name(i))
            return super().name if value is None or value is _UNKNOWN else value

        @property
        def version(self) -> str:
            value = _read(self._epfinder_record, lambda c, i: c.version(i))
            return super().version if value is None or value is _UNKNOWN else value

        @property
        def entry_points(self) -> Any:
            known = _read(self._epfinder_record, lambda c, i: c.entry_points_known(i) and list(c.entry_points_of(i)))
            if known is _UNKNOWN or known is False:
                return super().entry_points
            make = md.EntryPoint
            return md.EntryPoints(make(name=name, value=value, group=group)._for(self) for group, name, value in known)

    def _epfinder_has_metadata(self: CachedPathDistribution) -> bool:
        # True when the cache proves a metadata file is there: it knows the name read from it.
        known = _read(self._epfinder_record, lambda c, i: c.name(i))
        return known is not None and known is not _UNKNOWN

    CachedPathDistribution._epfinder_has_metadata = _epfinder_has_metadata

    if hasattr(base, "_has_metadata"):
        # importlib_metadata 10.1+ asks every distribution this in entry_points() and
        # distribution(); a known name means its metadata was read, so it is there.
        def _has_metadata(self: CachedPathDistribution) -> bool:
            known = _read(self._epfinder_record, lambda c, i: c.name(i))
            return True if known is not None and known is not _UNKNOWN else super(
                CachedPathDistribution, self)._has_metadata()

        CachedPathDistribution._has_metadata = _has_metadata

    # What a caller can print or log names the class it stands for (repr, type(dist).__name__);
    # isinstance() and pickling (__reduce__) already answer as for the base.
    CachedPathDistribution.__module__ = base.__module__
    CachedPathDistribution.__qualname__ = base.__qualname__
    CachedPathDistribution.__name__ = base.__name__
    return CachedPathDistribution
