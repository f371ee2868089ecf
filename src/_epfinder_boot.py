"""epfinder's start-up half: runs at every interpreter start, so it is tiny, stdlib-only and never raises.

It sits at the top of site-packages beside epfinder.pth, which loads it by path (one module, from
its bytecode cache, without the import system listing site-packages), and epfinder.start (PEP 829,
Python 3.15+). It imports nothing but ``sys`` and ``os``, both loaded by then. The real work lives in
the ``epfinder`` package, imported on the first metadata query, when ``importlib.metadata`` is being
imported anyway. The package reaches this module as ``import _epfinder_boot``.
"""

import os
import sys

MODES = ("off", "auto", "strict", "trust", "only")
DEFAULT_MODE = "auto"

# The mode in force, or None while epfinder is not in place.
mode = None

_saved = {}  # what enable() replaced, so that disable() puts it back


CONFIG_DIR = ".epfinder-cache"  # the same folder as the site directory's own metadata cache
CONFIG_FILE = "config"


def read_config(site_dir):
    # ``key = value`` lines of a site directory's epfinder config, or None when it has none. A
    # plain format on purpose: reading it at every interpreter start must not import json.
    try:
        fd = os.open(os.path.join(site_dir, CONFIG_DIR, CONFIG_FILE), os.O_RDONLY)
        try:
            text = os.read(fd, 65536).decode("utf-8")
        finally:
            os.close(fd)
    except (OSError, ValueError):
        return None
    config = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep and not line.lstrip().startswith("#"):
            config[key.strip()] = value.strip()
    return config


def boot():
    # Called by epfinder.pth (Python <= 3.14) and epfinder.start (3.15+) at interpreter start.
    # Inert unless `python -m epfinder install` enabled the site directory this file is in.
    # Never raises, and prints at most one line.
    try:
        if mode is not None:
            return
        site_dir = os.path.dirname(os.path.abspath(__file__))
        config = read_config(site_dir)
        if config is None or config.get("enabled") != "1":
            return
        env = env_mode()
        wanted = env or config.get("mode") or DEFAULT_MODE
        if wanted not in MODES:
            source = "EPFINDER_MODE" if env else f"mode in {os.path.join(site_dir, CONFIG_DIR, CONFIG_FILE)}"
            sys.stderr.write(
                f"epfinder: unknown {source} {wanted!r} (expected {', '.join(MODES)}); "
                "importlib.metadata is left as it is\n"
            )
            return
        enable(wanted)
    except Exception:
        pass  # a broken install must never stop the interpreter from starting


def env_mode():
    # EPFINDER_MODE, unless the interpreter ignores the environment (-E, -I).
    if sys.flags.ignore_environment:
        return None
    return os.environ.get("EPFINDER_MODE") or None


def _path_finder():
    external = sys.modules.get("_frozen_importlib_external")
    return getattr(external, "PathFinder", None)


def find_distributions(*args, **kwargs):
    # Stands in for PathFinder.find_distributions while epfinder is on.
    try:
        from epfinder import _finder
    except ImportError:
        # The package was deleted under a running configuration: answer as the stdlib would.
        return _saved["find_distributions"].__get__(None, _path_finder())(*args, **kwargs)
    return _finder.find_distributions(*args, **kwargs)


class MetadataImportHook:
    # A meta path entry that finds nothing: it finishes importlib.metadata as it is imported (see
    # epfinder._finder.patching_spec) and forwards importlib.invalidate_caches() to epfinder.

    watched = frozenset({"importlib.metadata"})

    def find_spec(self, fullname, path=None, target=None):
        if fullname not in self.watched:
            return None
        try:
            from epfinder._finder import patching_spec
        except Exception:
            return None  # the package is gone: importlib.metadata imports as usual
        return patching_spec(self, fullname, path, target)

    def invalidate_caches(self):
        finder = sys.modules.get("epfinder._finder")
        if finder is not None:
            finder.invalidate()


def _patch(module):
    try:
        from epfinder import _finder

        _finder.patch_module(module)
    except Exception:
        pass  # unpatched is merely slower: the finder alone still answers every query right


def enable(new_mode=None):
    # Put epfinder in place in this process (idempotent). Returns the mode in force.
    global mode
    if new_mode is None:
        new_mode = env_mode() or DEFAULT_MODE
    if new_mode not in MODES:
        raise ValueError(f"unknown epfinder mode {new_mode!r} (expected one of {', '.join(MODES)})")
    if new_mode == "off":
        disable()
        return new_mode
    path_finder = _path_finder()
    if path_finder is None:
        return None
    original = path_finder.__dict__.get("find_distributions")
    # Absent once the importlib_metadata backport has taken path discovery over; putting ours
    # back would make every distribution appear twice.
    if "find_distributions" not in _saved and original is not None:
        _saved["find_distributions"] = original
        path_finder.find_distributions = staticmethod(find_distributions)
    if not any(isinstance(f, MetadataImportHook) for f in sys.meta_path):
        sys.meta_path.insert(0, MetadataImportHook())
    if mode != new_mode:
        mode = new_mode
        finder = sys.modules.get("epfinder._finder")
        if finder is not None:
            finder.invalidate()
    for name in MetadataImportHook.watched:
        if name in sys.modules:
            _patch(sys.modules[name])
    return mode


def disable():
    # Take epfinder out of this process and leave it as it was before enable().
    global mode
    mode = None
    sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, MetadataImportHook)]
    path_finder = _path_finder()
    if path_finder is not None and "find_distributions" in _saved:
        original = _saved.pop("find_distributions")
        current = path_finder.__dict__.get("find_distributions")
        # Leave it alone if someone else (the importlib_metadata backport) replaced ours.
        if isinstance(current, staticmethod) and current.__func__ is find_distributions:
            path_finder.find_distributions = original
    finder = sys.modules.get("epfinder._finder")
    if finder is not None:
        finder.unpatch_all()
        finder.invalidate()
