"""The Python API: switch epfinder on and off in this process, and rebuild caches."""

from . import _boot
from .errors import ModeError

MODES = _boot.MODES


def enable(mode=None):
    """Serve importlib.metadata from epfinder's caches in this process.

    ``mode`` is one of MODES; None takes ``EPFINDER_MODE`` from the environment, else "auto".
    "off" is the same as disable(). Returns the mode in force.
    """
    try:
        return _boot.enable(mode)
    except ValueError as exc:
        raise ModeError(str(exc)) from None


def disable():
    """Put importlib.metadata back as it was before enable()."""
    _boot.disable()


def current_mode():
    """The mode in force, or None when epfinder is not on in this process."""
    return _boot.mode


def refresh(paths=None):
    """Rebuild the caches of ``paths`` (default: every directory on sys.path).

    Returns {path: number of distributions} for the directories cached; a directory changed too
    recently to be trusted yet is scanned but not written, and maps to None.
    """
    import os
    import sys

    from . import _cache

    if paths is None:
        paths = sys.path
    done = {}
    for path in paths:
        if type(path) is not str or not os.path.isabs(path) or not os.path.isdir(path):
            continue
        try:
            cache = _cache.build(path)
        except OSError:
            continue
        done[path] = cache.count if cache.trusted else None
    finder = sys.modules.get("epfinder._finder")
    if finder is not None:
        finder.invalidate()
    return done
