"""Cached importlib.metadata: per-directory metadata caches and startup entry points."""

__all__ = ["enable", "disable", "current_mode", "refresh", "MODES", "entry_points", "version"]

# The name installers know this distribution by: ``pip install importlib-metadata-cache``.
DISTRIBUTION = "importlib-metadata-cache"


def __getattr__(name):
    # Lazy, so that ``import epfinder`` (and every interpreter start) stays cheap.
    if name in ("entry_points", "version", "__version__"):
        from epfinder import _app

        return _app.version(DISTRIBUTION) if name == "__version__" else getattr(_app, name)
    if name in __all__:
        from epfinder import _api

        return getattr(_api, name)
    raise AttributeError(f"module 'epfinder' has no attribute {name!r}")
