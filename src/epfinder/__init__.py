"""Cached importlib.metadata: per-directory metadata caches and startup entry points."""

__all__ = ["enable", "disable", "current_mode", "refresh", "MODES", "entry_points", "version",
           "EpfinderError", "CacheError", "ModeError"]

# The name installers know this distribution by: ``pip install importlib-metadata-cache``.
DISTRIBUTION = "importlib-metadata-cache"


# Returns Any (whatever it serves): naming Any takes an import, and this module has none at its top,
# not even under TYPE_CHECKING (tests/test_layers.py checks the source).
def __getattr__(name: str):  # type: ignore[no-untyped-def]
    # Lazy, so that ``import epfinder`` (and every interpreter start) stays cheap.
    if name in ("entry_points", "version", "__version__"):
        from epfinder import _app

        return _app.version(DISTRIBUTION) if name == "__version__" else getattr(_app, name)
    if name in ("EpfinderError", "CacheError", "ModeError"):
        from epfinder import _cache  # the one module a query loads holds them

        return getattr(_cache, name)
    if name in __all__:
        from epfinder import _api

        return getattr(_api, name)
    raise AttributeError(f"module 'epfinder' has no attribute {name!r}")
