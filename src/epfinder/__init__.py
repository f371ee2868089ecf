"""Cached importlib.metadata: per-directory metadata caches and startup entry points."""

__all__ = ["enable", "disable", "current_mode", "refresh", "MODES"]


def __getattr__(name):
    # Lazy, so that ``import epfinder`` (and every interpreter start) stays cheap.
    if name == "__version__":
        from importlib.metadata import version

        return version("epfinder")
    if name in __all__:
        from epfinder import _api

        return getattr(_api, name)
    raise AttributeError(f"module 'epfinder' has no attribute {name!r}")
