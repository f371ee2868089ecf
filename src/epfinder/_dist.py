"""The Distribution subclass that answers from a cache record.

``name``, ``version``, ``_normalized_name`` and ``entry_points`` come from the cache without
touching the disk; everything else (``metadata``, ``files``, ``requires``, ``read_text``) is the
library's own PathDistribution code reading the real files. A value the cache records as unknown is
computed by that code too, so it raises what a plain scan would raise.
"""

import pathlib

_classes = {}


def distribution_class(metadata_module):
    """The cached-distribution class for one importlib.metadata flavour (stdlib or backport)."""
    cls = _classes.get(metadata_module.__name__)
    if cls is None or cls.__bases__[0] is not metadata_module.PathDistribution:
        cls = _classes[metadata_module.__name__] = _make_class(metadata_module)
    return cls


def _make_class(md):
    base = md.PathDistribution

    class CachedPathDistribution(base):
        """A PathDistribution whose name, version and entry points come from an epfinder cache."""

        def __init__(self, cache, index):
            self._epfinder_record = (cache, index)

        def __getattr__(self, attr):
            # _path is built on first use: most queries never need it, and pathlib is slow.
            if attr == "_path":
                cache, index = self.__dict__["_epfinder_record"]
                path = pathlib.Path(cache.path, cache.entry(index))
                self.__dict__["_path"] = path
                return path
            raise AttributeError(attr)

        def __reduce__(self):
            # Pickles as the plain distribution it stands for; the cache stays in this process.
            return (base, (self._path,))

        @property
        def _normalized_name(self):
            cache, index = self._epfinder_record
            value = cache.normalized()[index]
            return super()._normalized_name if value is None else value

        @property
        def name(self):
            cache, index = self._epfinder_record
            value = cache.name(index)
            return super().name if value is None else value

        @property
        def version(self):
            cache, index = self._epfinder_record
            value = cache.version(index)
            return super().version if value is None else value

        @property
        def entry_points(self):
            cache, index = self._epfinder_record
            if not cache.entry_points_known(index):
                return super().entry_points
            make = md.EntryPoint
            return md.EntryPoints(
                make(name=name, value=value, group=group)._for(self)
                for group, name, value in cache.entry_points_of(index)
            )

    if hasattr(base, "_has_metadata"):
        # importlib_metadata 10.1+ asks every distribution this in entry_points() and
        # distribution(); a known name means its metadata was read, so it is there.
        def _has_metadata(self):
            cache, index = self._epfinder_record
            return True if cache.name(index) is not None else super(CachedPathDistribution, self)._has_metadata()

        CachedPathDistribution._has_metadata = _has_metadata

    CachedPathDistribution.__module__ = __name__
    return CachedPathDistribution
