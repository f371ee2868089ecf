"""The Python API: switch epfinder on and off in this process, and rebuild caches."""

from __future__ import annotations

import _epfinder_boot as _boot

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable

MODES = _boot.MODES


def enable(mode: str | None = None) -> str | None:
    """Serve importlib.metadata from epfinder's caches in this process.

    ``mode`` is one of MODES; None takes ``EPFINDER_MODE`` from the environment, else "auto".
    "off" is the same as disable(). Returns the mode in force.
    """
    try:
        return _boot.enable(mode)
    except ValueError as exc:
        from ._cache import ModeError  # only for a wrong mode: enable() itself loads nothing

        raise ModeError(str(exc)) from None


def disable() -> None:
    """Put importlib.metadata back as it was before enable()."""
    _boot.disable()


def current_mode() -> str | None:
    """The mode in force, or None when epfinder is not on in this process."""
    return _boot.mode


def refresh(paths: Iterable[str] | None = None, wait: bool = False, opt_in: bool = False) -> dict[str, int | None]:
    """Rebuild the caches of ``paths`` (default: every directory on sys.path).

    Returns {path: number of distributions} for the directories cached. A directory changed too
    recently to tell a later change apart is scanned but not written, and maps to None, unless
    ``wait`` is true: then it is scanned again until it can be trusted (a few seconds at most).
    ``opt_in`` keeps each directory's cache inside it (``.epfinder-cache/``), site directory or not.
    """
    import os
    import sys
    import time

    from . import _cache, _startup_atomic

    if paths is None:
        paths = sys.path
    done: dict[str, int | None] = {}
    for path in paths:
        if type(path) is not str or not os.path.isabs(path) or not os.path.isdir(path):
            continue
        if os.path.basename(path).lower().endswith(".egg"):
            continue
        if opt_in:
            try:
                # 0755 whatever the umask; a symlink or another user's folder there is refused.
                _startup_atomic.make_dir(os.path.join(path, _cache.SUBDIR))
            except OSError:
                pass  # unwritable or refused: the per-user location takes it
        deadline = time.monotonic() + _cache.WALL_CLOCK_MARGIN_NS / 1e9 + 1
        while True:
            try:
                cache = _cache.build(path)
            except OSError:
                break
            if cache.trusted or not wait or time.monotonic() > deadline:
                done[path] = cache.count if cache.trusted else None
                break
            time.sleep(0.05)
    _cache.invalidate()
    return done
