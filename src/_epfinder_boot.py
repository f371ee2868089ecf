"""epfinder's start-up half: runs at every interpreter start, so it is tiny, stdlib-only and never raises.

It sits at the top of site-packages beside epfinder.pth, whose one line imports it when the
environment is enabled (Python 3.10 to 3.17), and, from 3.18, where site ignores such lines,
beside the epfinder.start (PEP 829) that `python -m epfinder install` writes there. It imports nothing but
``sys`` and ``os``, both loaded by then. The real work lives in the ``epfinder`` package: the finder
is imported on the first metadata query, when ``importlib.metadata`` is being imported anyway, and
the startup-hook runner only when the environment's hook table lists hooks.
"""

import os
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:  # names for type comments only (ruff does not read those): never imported at run time
    from collections.abc import Callable, Sequence  # noqa: F401
    from importlib.machinery import ModuleSpec  # noqa: F401
    from types import ModuleType  # noqa: F401
    from typing import Any

    # check_startup_tables(): (signatures, tables, stale).
    Checked = tuple[dict[str, list[int] | None], dict[str, list[Any]], list[str]]

MODES = ("off", "auto", "strict", "trust", "only")
DEFAULT_MODE = "auto"

# The mode in force, or None while epfinder is not in place.
mode = None  # type: str | None

_saved = {}  # type: dict[str, Any]  # what enable() replaced, so that disable() puts it back


CONFIG_DIR = ".epfinder-cache"  # the same folder as the site directory's own metadata cache
CONFIG_FILE = "config"


# Every read of a file epfinder wrote: never through a symlink, never blocking on a FIFO.
_READ = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)


def open_trusted(file, owner=None):
    # type: (str, int | str | None) -> tuple[int, os.stat_result]
    # (descriptor, fstat) of ``file``, once its descriptor shows that nobody untrusted can have
    # written it: a regular file (not a FIFO or a device; O_NONBLOCK and O_NOFOLLOW keep the open
    # itself from blocking or following a link), writable by its owner alone, owned by root, this
    # user or ``owner`` (a uid, or a path whose owner is looked up only when needed). Raises
    # OSError, PermissionError when the file is refused. The rule is docs/security.md's.
    fd = os.open(file, _READ)
    try:
        st = os.fstat(fd)
        uid = st.st_uid
        if st.st_mode & 0o170022 != 0o100000:
            raise PermissionError(1, "writable by group or others" if st.st_mode & 0o170000 == 0o100000
                                  else "not a regular file", file)
        if uid and uid != os.getuid() and (owner is None or uid != (
                owner if type(owner) is int else os.stat(owner).st_uid)):
            raise PermissionError(1, f"owned by uid {uid}, not root, this user or the directory's owner", file)
        return fd, st
    except BaseException:
        os.close(fd)
        raise


def read_trusted(file, owner=None, limit=1 << 20):
    # type: (str, int | str | None, int) -> bytes
    # The contents of a file that open_trusted() accepts, when it holds at most ``limit`` bytes.
    fd, st = open_trusted(file, owner)
    try:
        size = st.st_size
        if size > limit:
            raise OSError(27, f"larger than {limit} bytes", file)  # EFBIG
        data = b""
        while len(data) < size:
            chunk = os.read(fd, size - len(data))
            if not chunk:
                break
            data += chunk
        return data
    finally:
        os.close(fd)


def read_config(site_dir):
    # type: (str) -> dict[str, str] | None
    # ``key = value`` lines of a site directory's epfinder config, or None when it has none that
    # may be trusted. A plain format on purpose: reading it at every start must not import json.
    try:
        text = read_trusted(os.path.join(site_dir, CONFIG_DIR, CONFIG_FILE), site_dir, 65536).decode("utf-8")
    except (OSError, ValueError):
        return None
    config = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep and not line.lstrip().startswith("#"):
            config[key.strip()] = value.strip()
    return config


# The site directory whose config is in force (where epfinder.pth is), once boot() has run.
site_dir = None  # type: str | None


def boot(sitedir=None):
    # type: (str | None) -> None
    # Called by epfinder.pth with its site directory, and by epfinder.start (3.18+) without. Inert unless `python -m epfinder install` enabled that site directory.
    # Never raises, and prints at most one line for epfinder itself.
    global site_dir
    try:
        if mode is not None or site_dir is not None:
            return
        if sitedir is None:
            sitedir = os.path.dirname(os.path.abspath(__file__))
        config = read_config(sitedir)
        if config is None or config.get("enabled") != "1":
            return
        site_dir = sitedir
        env = env_mode()
        wanted = env or config.get("mode") or DEFAULT_MODE
        if wanted == "off":
            return  # off: epfinder does nothing in this process, startup hooks included
        schedule_startup(config)
        if wanted not in MODES:
            source = "EPFINDER_MODE" if env else f"mode in {os.path.join(sitedir, CONFIG_DIR, CONFIG_FILE)}"
            sys.stderr.write(
                f"epfinder: unknown {source} {wanted!r} (expected {', '.join(MODES)}); "
                "importlib.metadata is left as it is\n"
            )
            return
        enable(wanted)
    except Exception:
        pass  # a broken install must never stop the interpreter from starting


def env_mode():
    # type: () -> str | None
    # EPFINDER_MODE, unless the interpreter ignores the environment (-E, -I).
    if sys.flags.ignore_environment:
        return None
    return os.environ.get("EPFINDER_MODE") or None


def _path_finder():
    # type: () -> Any
    external = sys.modules.get("_frozen_importlib_external")
    return getattr(external, "PathFinder", None)


# --- the hand-over -------------------------------------------------------------------------------
# Every module imports this one; this one imports no module of the package at its top. Where start-up
# code needs the package (the first metadata query, a rescan of the hook table, a traced start), it
# goes through these two functions and nowhere else (docs/architecture.md, tests/test_layers.py).


def handover(name):
    # type: (str) -> ModuleType
    # The module epfinder.<name>, imported now if it is not yet. ImportError when the package is gone.
    name = "epfinder." + name
    __import__(name)
    return sys.modules[name]


def loaded(name):
    # type: (str) -> ModuleType | None
    # The module epfinder.<name> if this process imported it already, else None.
    return sys.modules.get("epfinder." + name)


def find_distributions(*args, **kwargs):
    # type: (*Any, **Any) -> Any
    # Stands in for PathFinder.find_distributions while epfinder is on.
    try:
        query = handover("_cache")
    except ImportError:
        # The package was deleted under a running configuration: answer as the stdlib would.
        return _saved["find_distributions"].__get__(None, _path_finder())(*args, **kwargs)
    return query.find_distributions(*args, **kwargs)


class MetadataImportHook:
    # A meta path entry that finds nothing: it finishes importlib.metadata and the importlib_metadata
    # backport as they are imported and forwards importlib.invalidate_caches() to epfinder.
    #
    # The backport is patched as soon as it has run (epfinder._cache.patch_module): its finder must
    # be served before anything asks it. importlib.metadata only gets stand-ins here, which load
    # epfinder on their first call: many programs import it and never ask it anything, and should
    # not pay for loading epfinder (docs/programs.md).

    watched = frozenset({"importlib.metadata", "importlib_metadata"})

    def find_spec(self, fullname, path=None, target=None):
        # type: (str, Sequence[str] | None, ModuleType | None) -> ModuleSpec | None
        if fullname not in self.watched:
            return None
        for finder in sys.meta_path:
            if finder is not self and hasattr(finder, "find_spec"):
                spec = finder.find_spec(fullname, path, target)
                if spec is not None:
                    _after_exec(spec.loader, _defer if fullname == "importlib.metadata" else _patch)
                    return spec
        return None

    def invalidate_caches(self):
        # type: () -> None
        query = loaded("_cache")
        if query is not None:
            query.invalidate()


def _patch(module):
    # type: (ModuleType) -> None
    _restore(module)
    try:
        handover("_cache").patch_module(module)
    except Exception:
        pass  # unpatched is merely slower: the finder alone still answers every query right


def _after_exec(loader, then):
    # type: (Any, Callable[[ModuleType], None]) -> None
    # Have the loader made for this one import call then(module) after it runs the module: an
    # attribute on that instance, taken off again before the module runs, so the module keeps its
    # real loader. A wrapper class would cost every start its class statement.
    real = getattr(loader, "exec_module", None)
    if real is None:
        return

    def exec_module(module):
        # type: (ModuleType) -> None
        del loader.exec_module
        real(module)
        try:
            then(module)
        except Exception:
            pass  # epfinder is only faster: without its patches every answer is still plain
        if no_backport and mode in ("auto", "strict") and "importlib.metadata" in sys.modules:
            # Every meta path entry costs each later import about 5,000 instructions (the import
            # lock's context manager and the call; 1.6 M for sphinx-build --version): once
            # importlib.metadata is handled and no site directory holds the backport, the hook has
            # nothing left to do. In these modes nothing depends on invalidate_caches() reaching
            # epfinder (each query checks the directory's signature); enable() puts the hook back.
            sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, MetadataImportHook)]

    try:
        loader.exec_module = exec_module
    except AttributeError:
        pass  # a loader that takes no attributes: the module stays as it is, and correct


# module -> [(owner, name, original, stand-in)] for the stand-ins _defer() put in place
_deferred = {}  # type: dict[ModuleType, list[tuple[Any, str, Any, Any]]]


def _defer(md):
    # type: (ModuleType) -> None
    # The functions epfinder._cache.patch_module replaces, each with a stand-in that, on its
    # first call, puts every original back, lets patch_module do its work, and calls the result.
    placed = []  # type: list[tuple[Any, str, Any, Any]]
    for owner, name in ((md, "entry_points"), (md, "packages_distributions"),
                        (getattr(md, "Distribution", None), "_prefer_valid")):
        original = getattr(owner, "__dict__", {}).get(name)
        if original is not None:
            placed.append((owner, name, original, _stand_in(md, owner, name, original)))
    _deferred[md] = placed
    for owner, name, _original, stand_in in placed:
        setattr(owner, name, stand_in)


def _stand_in(md, owner, name, original):
    # type: (ModuleType, Any, str, Any) -> Any
    function = getattr(original, "__func__", original)

    def stand_in(*args, **kwargs):
        # type: (*Any, **Any) -> Any
        if md in _deferred:
            _patch(md)
        return getattr(owner, name)(*args, **kwargs)

    for attr in ("__doc__", "__name__", "__qualname__", "__module__"):
        setattr(stand_in, attr, getattr(function, attr, None))
    stand_in.__wrapped__ = function  # type: ignore[attr-defined]  # as functools.wraps sets it
    return staticmethod(stand_in) if isinstance(original, staticmethod) else stand_in


def _restore(md):
    # type: (ModuleType) -> None
    # Put back what _defer() replaced, where the stand-in is still in place.
    for owner, name, original, stand_in in _deferred.pop(md, ()):
        if owner.__dict__.get(name) is stand_in:
            setattr(owner, name, original)


def enable(new_mode=None):
    # type: (str | None) -> str | None
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
    if not _saved.get("at_exit"):
        import atexit  # built in: no file to read

        atexit.register(_at_exit)
        _saved["at_exit"] = True
    if mode != new_mode:
        mode = new_mode
        query = loaded("_cache")
        if query is not None:
            query.invalidate()
    for name in MetadataImportHook.watched:
        if name in sys.modules:
            _patch(sys.modules[name])
    return mode


def _at_exit():
    # type: () -> None
    # Take epfinder out before the interpreter tears its modules down. While PathFinder and
    # sys.meta_path hold epfinder's functions, that teardown cannot free what they reach, and the
    # final garbage collections walk it all: +3 M instructions for a process that only imported
    # importlib.metadata (callgrind, 3.11), which is most of what epfinder seemed to cost it.
    # Exit handlers registered earlier run after this one, and get plain answers: correct.
    try:
        disable()
    except Exception:
        pass


def disable():
    # type: () -> None
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
    for md in list(_deferred):
        _restore(md)
    query = loaded("_cache")
    if query is not None:
        query.unpatch_all()
        query.invalidate()


# --- startup hooks --------------------------------------------------------------------------------
# Callables that distributions register in the entry-point group "epfinder.startup", run once per
# process at the end of site.main(); the contract is docs/startup-hooks.md. Everything that runs at
# a start is here, in this one module, because loading a second module costs more than all of this
# code: check the environment's hook table (one stat per site directory and one small file, no
# json), then order and run the hooks it lists. Rescanning a site directory that changed is
# epfinder._startup_table, imported only then.

STARTUP_GROUP = "epfinder.startup"
STARTUP_TABLE = "startup-v2.tsv"  # in CONFIG_DIR of the site directory epfinder is enabled in
OLD_STARTUP_TABLES = ("startup-v1.tsv",)  # removed by uninstall; never read
TABLE_HEADER = "epfinder-startup\t2"
DEFAULT_PRIORITY = 500
OFF = ("0", "off", "no", "false")

_startup_ran = False


def startup_table_file():
    # type: () -> str
    return os.path.join(site_dir or os.path.dirname(os.path.abspath(__file__)), CONFIG_DIR, STARTUP_TABLE)


def startup_site_dirs():
    # type: () -> list[str]
    # The environment's site directories in sys.path order: only these can register hooks, never
    # the current directory, the script's directory or PYTHONPATH.
    site = sys.modules.get("site")
    if site is None:
        return []
    try:
        wanted = set(site.getsitepackages())
        if site.ENABLE_USER_SITE:
            wanted.add(site.getusersitepackages())
    except Exception:
        return []
    ordered = []
    for path in sys.path:
        if path in wanted and path not in ordered:
            ordered.append(path)
    return ordered


# The hook table's entry for one site directory is a list indexed by these names, and a planned
# hook is a dict with the keys of HOOK_KEYS: a class statement here would cost every enabled start
# about 0.1 M instructions (callgrind, 3.11), a tenth of start-up's budget (docs/architecture.md). In the
# type comments an entry is a list[Any] and a planned hook a dict[str, Any]: their items differ in type.
SIGNATURE = 0  # [st_dev, st_ino, st_mtime_ns, st_ctime_ns] of the directory
NAMES = 1  # normalized names of its distributions, tab-joined: split only when shadowing needs it
HOOKS = 2  # [dist, name, value, distribution, version] rows
PROBLEMS = 3  # [dist, entry, reason] rows: hooks ignored, and why
WATCHED = 4  # [relative path, stamp] of the files of entries that may change in place
HOOK_KEYS = (
    "id",  # "dist:label", what users name it by
    "dist",  # the distribution's normalized name
    "label",  # the entry point's name without its "NNN-" priority
    "name",  # the entry point's name
    "value",  # "module:callable"
    "priority",  # 0..999, lowest first
    "priority_from",  # "config", "name" or "default"
    "distribution",  # the distribution's Name, for messages
    "version",
    "site_dir",
    "enabled",
    "why",  # why it does not run (disabled, skipped), or ""
)


def site_entry(signature, names="", hooks=None, problems=None, watched=None):
    # type: (list[int], str, list[list[str]] | None, list[list[str]] | None, list[list[Any]] | None) -> list[Any]
    return [signature, names, hooks or [], problems or [], watched or []]


def _lines(text):
    # type: (str) -> list[str]
    # text.split("\n"), which walks the string a character at a time: 0.54 M instructions at every
    # start for the names line of 5,274 distributions (callgrind, 3.11), where find() skips it.
    lines = []
    start = 0
    end = text.find("\n")
    while end >= 0:
        lines.append(text[start:end])
        start = end + 1
        end = text.find("\n", start)
    lines.append(text[start:])
    return lines


def read_startup_table(file, owner=None):
    # type: (str, int | str | None) -> dict[str, list[Any]] | None
    # {site dir: site_entry()} from the hook table, or None when there is none that can be trusted
    # (see docs/startup-hooks.md for the format and the trust rules): ``owner``, a uid or a path,
    # is trusted besides root and this user, as in open_trusted().
    try:
        lines = _lines(read_trusted(file, owner, 64 << 20).decode("utf-8"))
        if lines[0] != TABLE_HEADER or lines[-2:] != ["end", ""]:
            return None
        tables = {}  # type: dict[str, list[Any]]
        entry = None  # type: list[Any] | None
        for line in lines[1:-2]:
            if line.startswith("names\t") and entry is not None:
                entry[NAMES] = line[6:]
                continue
            fields = line.split("\t")
            kind = fields[0]
            if kind == "dir" and len(fields) == 6:
                entry = tables[fields[1]] = site_entry([int(x) for x in fields[2:]])
            elif entry is None:
                return None
            elif kind == "watch" and len(fields) == 7:
                entry[WATCHED].append([fields[1], [int(x) for x in fields[2:]]])
            elif kind == "hook" and len(fields) == 6:
                entry[HOOKS].append(fields[1:])
            elif kind == "bad" and len(fields) == 4:
                entry[PROBLEMS].append(fields[1:])
            else:
                return None
        return tables
    except (OSError, ValueError):
        return None


def check_startup_tables(dirs):
    # type: (list[str]) -> Checked
    # (signatures, tables, stale): each existing site directory's signature (None when it is
    # world-writable, so never trusted), the table file's entries, and the directories whose entry
    # is missing or out of date.
    file = startup_table_file()
    signatures = {}  # type: dict[str, list[int] | None]
    owner = None  # type: int | None
    for path in dirs:
        try:
            st = os.stat(path)
        except OSError:
            continue
        signatures[path] = None if st.st_mode & 0o002 else dir_signature(st)
        if path == site_dir:
            owner = st.st_uid
    tables = read_startup_table(file, owner) or {}
    stale = [p for p in signatures if signatures[p] is None or p not in tables
             or tables[p][SIGNATURE] != signatures[p] or not _unchanged(p, tables[p][WATCHED])]
    return signatures, tables, stale


def timestamps(st):
    # type: (os.stat_result) -> tuple[int, int]
    # (mtime, ctime) in ns: the one place timestamps are read, so that tests can coarsen the clock.
    return st.st_mtime_ns, st.st_ctime_ns


def stamp(st):
    # type: (os.stat_result) -> list[int]
    # What identifies one version of a file or directory: device, inode, size and both timestamps.
    return [st.st_dev, st.st_ino, st.st_size, *timestamps(st)]


def dir_signature(st):
    # type: (os.stat_result) -> list[int]
    # The freshness key of a directory (caches and hook table). ctime catches an mtime put back by
    # utime, tar or rsync.
    return [st.st_dev, st.st_ino, *timestamps(st)]


def _unchanged(path, watched):
    # type: (str, list[list[Any]]) -> bool
    # The entries of a site directory that may change without its listing changing (see
    # epfinder._startup_entries): none in a directory that only pip, uv or installer write to.
    for name, recorded in watched:
        try:
            st = os.stat(os.path.join(path, name))
        except OSError:
            return False
        if stamp(st) != recorded:
            return False
    return True


def normalize(name):
    # type: (str) -> str
    # importlib.metadata's Prepared.normalize up to 3.14 and in the backport, without re (which
    # start-up does not load): re.sub(r"[-_.]+", "-", name).lower().replace("-", "_"). The one
    # implementation: the scanner (epfinder._scan) and the hook table use it too.
    value = name.replace("_", "-").replace(".", "-")
    while "--" in value:
        value = value.replace("--", "-")
    return value.lower().replace("-", "_")


def parse_hook_name(name):
    # type: (str) -> tuple[int | None, str]
    # (priority or None, label): "NNN-label" with NNN in 0..999 gives a priority.
    head, sep, label = name.partition("-")
    if sep and label and 0 < len(head) <= 3 and all(c in "0123456789" for c in head):
        return int(head), label
    return None, name


def _matches(hook_id, patterns):
    # type: (str, list[str]) -> bool
    for pattern in patterns:
        dist, sep, label = pattern.partition(":")
        pattern = normalize(dist) + sep + label
        if any(c in pattern for c in "*?["):
            # Deferred: fnmatch imports re, which start-up otherwise never loads.
            import fnmatch

            if fnmatch.fnmatchcase(hook_id, pattern):
                return True
        elif pattern == hook_id:
            return True
    return False


def startup_plan(config, skip="", dirs=None, checked=None):
    # type: (dict[str, str], str, list[str] | None, Checked | None) -> tuple[list[dict[str, Any]], list[str]]
    """(hooks in run order, problems): each hook a dict with the keys of HOOK_KEYS, each problem a
    one-line string.

    Imports no hook module: this is also what ``python -m epfinder startup list`` shows. A site
    directory that changed since the table was written is rescanned, and the table rewritten.
    """
    if dirs is None:
        dirs = startup_site_dirs()
    signatures, tables, stale = checked or check_startup_tables(dirs)
    if stale:
        tables = handover("_startup_table").refresh(startup_table_file(), list(signatures), tables, stale)
    disabled = [k[16:] for k, v in config.items() if k.startswith("startup.disable.") and v == "1"]
    skipped = [p.strip() for p in skip.split(",") if p.strip()]
    hooks, problems, seen = [], [], set()  # type: list[dict[str, Any]], list[str], set[str]
    for i, path in enumerate(dirs):
        if path not in signatures or path not in tables:
            continue
        entry = tables[path]
        for dist, name, value, dist_name, version in entry[HOOKS]:
            if dist in seen:
                continue  # shadowed by a distribution of that name earlier on sys.path
            priority, label = parse_hook_name(name)
            hook_id = f"{dist}:{label}"
            override = config.get("startup.priority." + hook_id, "")
            # ASCII digits only: str.isdigit() also accepts "²" (which int() rejects) and "٣".
            source = "config" if override.isascii() and override.isdigit() and int(override) <= 999 else "name" if priority is not None else "default"
            why = ("disabled (python -m epfinder startup enable ID)" if _matches(hook_id, disabled)
                   else "skipped by EPFINDER_STARTUP_SKIP" if _matches(hook_id, skipped) else "")
            hooks.append({
                "id": hook_id, "dist": dist, "label": label, "name": name, "value": value,
                "priority": int(override) if source == "config" else DEFAULT_PRIORITY if priority is None else priority,
                "priority_from": source, "distribution": dist_name or dist, "version": version,
                "site_dir": path, "enabled": not why, "why": why,
            })
        for dist, child, reason in entry[PROBLEMS]:
            if dist not in seen:
                problems.append(f"startup hooks of {child} in {path} ignored: {reason}")
        if i + 1 < len(dirs) and entry[NAMES]:
            seen.update(entry[NAMES].split("\t"))
    hooks.sort(key=lambda h: (h["priority"], h["dist"], h["label"], h["name"]))
    return hooks, problems


def schedule_startup(config):
    # type: (dict[str, str]) -> None
    # Run the hooks at the end of site.main(): after every site directory is on sys.path and after
    # sitecustomize and usercustomize (main() calls execusercustomize last when the user site is
    # enabled). Wrapping them avoids shipping a sitecustomize.py, which Debian's own would shadow.
    site = sys.modules.get("site")
    name = "execusercustomize" if getattr(site, "ENABLE_USER_SITE", False) else "execsitecustomize"
    original = getattr(site, name, None)
    if original is None:
        # A site module without that step: run now. Under PEP 829 (a .start entry, 3.15+) every
        # site directory is on sys.path by now; only the sitecustomize ordering is lost.
        run_startup(config)
        return

    def run_after(*args, **kwargs):
        # type: (*Any, **Any) -> Any
        if getattr(site, name, None) is run_after:
            setattr(site, name, original)
        result = original(*args, **kwargs)
        run_startup(config)
        return result

    setattr(site, name, run_after)


def _say(line):
    # type: (str) -> None
    try:
        sys.stderr.write(f"epfinder: {line}\n")
        sys.stderr.flush()
    except Exception:
        pass  # no usable stderr (pythonw, a closed descriptor): stay silent rather than fail the start


def startup_off(config):
    # type: (dict[str, str]) -> str
    # Why no startup hook runs in this environment's processes, or "" when they run: the one rule
    # for start-up and for `python -m epfinder status` and `startup list`. The environment
    # variables are ignored under -E and -I.
    environ = {} if sys.flags.ignore_environment else os.environ
    if environ.get("EPFINDER_MODE") == "off":
        return "EPFINDER_MODE=off"
    if config.get("mode") == "off" and not environ.get("EPFINDER_MODE"):
        return "mode = off in the config"
    value = environ.get("EPFINDER_STARTUP", "")
    if value.strip().lower() in OFF:
        return f"EPFINDER_STARTUP={value}"
    return ""


def is_epfinder_command():
    # type: () -> bool
    # Whether this process is `python -m epfinder` or the `epfinder` script, which run no hook: the
    # tool that lists and disables hooks must work whatever a hook does. When site runs, sys.argv[0]
    # is the script's path, or "-m" for a module whose name only sys.orig_argv (3.10+) still has.
    argv = getattr(sys, "argv", None) or [""]
    if argv[0] != "-m":
        return os.path.basename(argv[0]) == "epfinder"
    orig = getattr(sys, "orig_argv", None) or []
    module = orig[len(orig) - len(argv)] if len(orig) >= len(argv) else ""
    if module.startswith("-"):
        module = module[module.find("m") + 1:]  # -mepfinder, -Imepfinder
    return module in ("epfinder", "epfinder.__main__")


# True when a fresh hook table shows no site directory holding the importlib_metadata backport
# (read by run_startup); until then, and whenever unsure, False: the import hook stays.
no_backport = False


def _note_backport(signatures, tables, stale):
    # type: (dict[str, list[int] | None], dict[str, list[Any]], list[str]) -> None
    global no_backport
    no_backport = not stale and all(
        signature is not None and path in tables and not _has_name(tables[path][NAMES], "importlib_metadata")
        for path, signature in signatures.items())


def _has_name(names, name):
    # type: (str, str) -> bool
    # Whether the tab-joined ``names`` hold ``name`` itself (not importlib_metadata_cache).
    return names == name or names.startswith(name + "\t") or names.endswith("\t" + name) \
        or "\t" + name + "\t" in names


def run_startup(config):
    # type: (dict[str, str]) -> None
    # Run the environment's startup hooks, once per process. A hook is third-party code run in
    # every process, so nothing it raises (SystemExit and KeyboardInterrupt included) ends the
    # start: each failure is one line on stderr, and the other hooks still run.
    global _startup_ran
    if _startup_ran:
        return
    _startup_ran = True
    environ = {} if sys.flags.ignore_environment else os.environ
    if startup_off(config):
        return
    trace = environ.get("EPFINDER_TRACE", "").strip().lower() not in ("",) + OFF or sys.flags.verbose
    if trace:
        # Deferred: only tracing needs a clock.
        import time

        clock = time.perf_counter_ns
        started = clock()
    try:
        dirs = startup_site_dirs()
        checked = signatures, tables, stale = check_startup_tables(dirs)
        _note_backport(signatures, tables, stale)
        if not (stale or trace or any(tables[p][HOOKS] or tables[p][PROBLEMS] for p in signatures if p in tables)):
            return  # the common case: the table is fresh and lists no hook
        if is_epfinder_command():
            if trace:
                _say("startup: no hook runs in the epfinder command line tool")
            return
        hooks, problems = startup_plan(config, environ.get("EPFINDER_STARTUP_SKIP", ""), dirs, checked)
    except Exception as exc:
        if not isinstance(exc, ImportError):  # the package is gone: stay silent, run nothing
            _say(f"startup hooks not run: {type(exc).__name__}: {exc}")
        return
    for problem in problems:
        _say(problem)
    if trace:
        _say(f"startup: {len(hooks)} hook(s) found in {(clock() - started) / 1e6:.2f} ms")
    ran = failed = 0
    # (id, import ns, call ns, outcome), kept for `startup list` when tracing
    measured = []  # type: list[tuple[str, int, int, str]]
    for hook in hooks:
        hook_id = hook["id"]
        if not hook["enabled"]:
            if trace:
                _say(f"startup: {hook_id} {hook['why']}")
            continue
        ran += 1
        t0 = t1 = clock() if trace else 0
        stage = "was vetoed by an audit hook"
        try:
            sys.audit("epfinder.startup", hook_id, hook["value"])
            stage = "could not be loaded"
            target = load_hook(hook["value"])
            t1 = clock() if trace else 0
            stage = "failed"
            target()
        except BaseException as exc:
            failed += 1
            t2 = clock() if trace else 0
            outcome = "failed" if stage == "failed" else "vetoed" if stage.startswith("was") else "not_loaded"
            try:
                if isinstance(exc, SystemExit):
                    stage += f": sys.exit({exc.code!r}) ignored"
                elif isinstance(exc, KeyboardInterrupt):
                    stage = "was interrupted (KeyboardInterrupt)"
                else:
                    stage += f": {type(exc).__name__}: {exc}"
            except Exception:
                stage += f": {type(exc).__name__}"  # an exception whose str() fails
            _say(f"startup hook {hook_id} ({hook['distribution']} {hook['version'] or '?'}, {hook['value']}) "
                 f"{stage}; skip it with EPFINDER_STARTUP_SKIP={hook_id} or python -m epfinder startup disable {hook_id}")
            if trace:
                loaded = outcome == "failed"
                measured.append((hook_id, (t1 if loaded else t2) - t0, t2 - t1 if loaded else 0, outcome))
                import traceback

                traceback.print_exc()
            continue
        if trace:
            t2 = clock()
            measured.append((hook_id, t1 - t0, t2 - t1, "ok"))
            _say(f"startup: {hook_id} ({hook['priority']}, {hook['distribution']} {hook['version']}) "
                 f"import {(t1 - t0) / 1e6:.2f} ms, call {(t2 - t1) / 1e6:.2f} ms")
    if trace:
        _say(f"startup: ran {ran} hook(s), {failed} failed, {len(hooks) - ran} skipped, "
             f"{(clock() - started) / 1e6:.2f} ms in all")
        try:
            handover("_startup_costs").record(site_dir or os.path.dirname(os.path.abspath(__file__)), measured)
        except Exception:
            pass  # a measurement that cannot be kept is still on stderr


def load_hook(value):
    # type: (str) -> Any
    # EntryPoint.load for "module:attr.path [extras]", without importlib.metadata.
    module, sep, attr = value.partition("[")[0].partition(":")
    module, attr = module.strip(), attr.strip()
    if not sep or not module or not attr:
        raise ValueError(f"{value!r} is not 'module:callable'")
    __import__(module)
    target = sys.modules[module]
    for part in attr.split("."):
        target = getattr(target, part)
    return target
