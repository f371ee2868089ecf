"""Errors raised by epfinder. Each also derives from the standard type that callers already catch."""


class EpfinderError(Exception):
    """Base class of every error epfinder raises on purpose."""


class CacheError(EpfinderError, ValueError):
    """A cache file is unreadable, corrupt, foreign or of another format version."""


class ModeError(EpfinderError, ValueError):
    """An unknown mode was asked for."""
