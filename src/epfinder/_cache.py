"""The caches, and everything a metadata query does with them.

This is the one module of the package that a metadata query loads (besides the package itself):
on slow storage every module file costs tens of round trips (path lookups, stat, open, read), and
on every storage the import machinery's own work, so the query path is one file (issue: whole
programs). Its sections, bottom to top, each using only those above it:

- the exceptions epfinder raises on purpose;
- the cache file of one directory: format (docs/cache-format.md), location, freshness, reading
  and writing. ASCII JSON Lines: a header line that gives each following line's offset, length and
  crc32, then one line per table and per entry-point group, so that a query checks and parses only
  the lines it needs. The directory's own signature proves that no entry was added, removed or
  renamed; entries that may change inside (see _scan.is_sealed) are "watched", and their stamps
  are checked at every query too;
- which cache serves a ``sys.path`` entry: ``served_or_none(path)`` answers a DirCache,
  ``NOTHING`` ("only" mode) or None (the library's own scan, ``plain()``); shared by every reader
  (the finders, packages_distributions(), the cached distributions, the application API);
- the cached distribution class: ``name``, ``version``, ``_normalized_name`` and ``entry_points``
  from the cache, everything else (``metadata``, ``files``, ``requires``, ``read_text``) by the
  library's own PathDistribution code reading the real files; a value the cache records as unknown
  is computed by that code too, so it raises what a plain scan would raise;
- the distribution finder put into importlib.metadata (and the backport's), and the patches that
  finish the module once it has run (_epfinder_boot calls patch_module). It answers path by path
  in the library's order: a directory with a usable cache from it, anything else (``''``,
  relative entries, zip files, eggs, unreadable directories) by the library's own ``FastPath``
  search. Any failure inside epfinder
  degrades to that plain search, never to a different answer.

Annotations are strings, not ``from __future__ import annotations``: that statement imports the
``__future__`` module at run time (1.4 M instructions on 3.11, a file), which a query should not
pay. The scanner (_scan) and the writer's helpers (_startup_atomic) are imported only when a cache
is built or discarded; json only to write one.
"""

import itertools
import os
import stat
import sys
import time
import zlib

import _epfinder_boot as _boot

# ``md`` below is importlib.metadata or the importlib_metadata backport: their classes differ, so
# what they make (distributions, contexts, entry points) is Any to the checker.
TYPE_CHECKING = False
if TYPE_CHECKING:
    import pathlib
    from collections.abc import Callable, Iterable, Iterator, Sequence
    from types import ModuleType
    from typing import Any, TypeGuard

    from ._scan import Record, Stamps
    from ._startup_atomic import AtomicFile

    # A table's check: (decoded JSON value, number of distributions) -> whether it has the right shape.
    Validator = Callable[[Any, int], bool]


# --- the exceptions --------------------------------------------------------------------------


class EpfinderError(Exception):
    """Base class of every error epfinder raises on purpose."""


class CacheError(EpfinderError, ValueError):
    """A cache file is unreadable, corrupt, foreign or of another format version."""


class ModeError(EpfinderError, ValueError):
    """An unknown mode was asked for."""


# --- the cache file of one directory ---------------------------------------------------------


FORMAT = "epfinder-cache"
VERSION = 2
SUBDIR = ".epfinder-cache"
FILENAME = "v2.jsonl"
# Earlier formats' names, removed by discard(); never read.
OLD_FILENAMES = ("v1.jsonl",)

# Used when no reference timestamp can be taken on the directory's own filesystem: a cache is
# only trusted when everything it depends on is older than this, which covers FAT's 2 s steps.
WALL_CLOCK_MARGIN_NS = 3_000_000_000

# json is imported where it is used, not by `import importlib.metadata` in an enabled process,
# which loads this module to patch the library but may never ask a question (issue: whole-program
# cost; json is about 5 M instructions).
_encoder: "Callable[[Any], str] | None" = None


def _dumps(value: object) -> str:
    global _encoder
    if _encoder is None:
        import json

        _encoder = json.JSONEncoder(ensure_ascii=True, sort_keys=True, separators=(",", ":")).encode
    return _encoder(value)


_TABLES = ("entry", "name", "version", "entry_points", "normalized", "index", "stamps", "watch")
# Far above any real cache (about 230 bytes per distribution); a larger file is not read.
MAX_SIZE = 256 << 20


class _DecoderSettings:
    # What json.JSONDecoder() hands its scanner, for _loads(): strict strings, no hooks. Any other
    # setting a scanner reads is a hook, and absent (3.15 added array_hook).
    strict = True
    parse_float = float
    parse_int = int

    def __getattr__(self, name: str) -> None:
        return None

    @staticmethod
    def parse_constant(name: str) -> "Any":
        raise ValueError(f"{name} is not in the cache format")


_scan_once: "Callable[[str, int], tuple[Any, int]] | None" = None


def _loads(data: bytes) -> "Any":
    """json.loads() of one line of a cache file, without importing json.

    The json package imports re, enum, functools and collections: about 5 ms in a process that
    has not loaded them (the application API). Its C scanner, _json.make_scanner, is what
    json.loads() runs; it is set up here as JSONDecoder() sets it up. The writer's lines are ASCII
    with no whitespace around the value, so anything else is refused (ValueError), where json.loads()
    would strip it: such a file is not ours, and is rebuilt. Without _json (another implementation
    of Python), json.loads() it is.
    """
    global _scan_once
    if _scan_once is None:
        try:
            from _json import make_scanner

            _scan_once = make_scanner(_DecoderSettings())  # type: ignore[arg-type]  # the settings it reads
        except Exception:  # another implementation, or a scanner that wants what this does not give
            import json

            _scan_once = json.JSONDecoder().scan_once  # type: ignore[attr-defined]  # set by its __init__
    text = data.decode("ascii")
    try:
        value, end = _scan_once(text, 0)
    except StopIteration:
        raise ValueError("not a JSON value") from None
    if end != len(text):
        raise ValueError("extra data after the JSON value")
    return value


def stamps_digest(stamps: "Stamps") -> int:
    """One number for the stat results of a distribution's metadata files (strict mode).

    The crc32 of the stamps' compact JSON, written here without json for the names the scanner
    uses (plain ASCII file names): a query that checks a watched distribution would otherwise
    load json (5 M instructions) for this alone.
    """
    parts = []
    for name, stamp in stamps:
        if type(name) is not str or not name.isascii() or not name.isprintable() or '"' in name or "\\" in name \
                or (stamp is not None and any(type(n) is not int for n in stamp)):
            return zlib.crc32(_dumps(stamps).encode("ascii"))
        parts.append(f'["{name}",null]' if stamp is None else f'["{name}",[{",".join(map(str, stamp))}]]')
    return zlib.crc32(f"[{','.join(parts)}]".encode("ascii"))


def encode(path: str, signature: "list[int]", index: "dict[str, list[int]]", records: "list[Record]") -> bytes:
    """The bytes of the cache file for ``path`` (see docs/cache-format.md)."""
    groups: "dict[str, dict[str, list[int | str]]]" = {}
    for i, record in enumerate(records):
        for seq, (group, name, value) in enumerate(record["entry_points"] or ()):
            columns = groups.setdefault(group, {"dist": [], "seq": [], "name": [], "value": []})
            columns["dist"].append(i)
            columns["seq"].append(seq)
            columns["name"].append(name)
            columns["value"].append(value)
    normalized = [r["normalized"] for r in records]
    shadowed = []
    seen = set()
    for i, n in enumerate(normalized):
        if n in seen:
            shadowed.append(i)
        seen.add(n)
    tables: "dict[str, Any]" = {
        "entry": [r["entry"] for r in records],
        "name": [r["name"] for r in records],
        "version": [r["version"] for r in records],
        "entry_points": [r["entry_points"] is not None for r in records],
        "normalized": normalized,
        "index": index,
        "stamps": {
            "files": [[name for name, _ in r["stamps"]] for r in records],
            "digest": [stamps_digest(r["stamps"]) for r in records],
        },
        "watch": [[i, [name for name, _ in r["stamps"]], stamps_digest(r["stamps"])]
                  for i, r in enumerate(records) if r["watch"]],
    }
    body = []
    offset = 0

    def add(value: object) -> "list[int]":
        nonlocal offset
        line = _dumps(value).encode("ascii")
        body.append(line + b"\n")
        span = [offset, len(line), zlib.crc32(line)]
        offset += len(line) + 1
        return span

    from . import _scan  # deferred: reading a cache needs no scanner

    table_spans = {name: add(tables[name]) for name in _TABLES}
    group_spans = {g: add(groups[g]) for g in sorted(groups)}
    header = {
        "format": FORMAT,
        "version": VERSION,
        "path": path,
        "signature": signature,
        "count": len(records),
        "fast": None not in normalized and all(r["entry_points"] is not None for r in records),
        "ambiguous": not all(_scan.normalizes_alike(r["entry"]) and _scan.normalizes_alike(r["name"] or "")
                             for r in records),
        "shadowed": shadowed,
        "watched": len(tables["watch"]),
        "invalid": [i for i, r in enumerate(records) if r["invalid"]],
        "tables": table_spans,
        "groups": group_spans,
    }
    return _dumps(header).encode("ascii") + b"\n" + b"".join(body)


class DirCache:
    """A parsed cache file. Each table is read, checked and decoded on first use.

    ``data`` is the whole file. It is read at once and no descriptor is kept: a process that
    closes descriptors it does not know (a daemon) must not have ours closed under it, or reuse
    the number for a file of its own.
    """

    __slots__ = ("path", "signature", "count", "groups", "shadowed", "fast", "ambiguous", "trusted", "watched",
                 "invalid", "generation", "_data", "_body", "_tables", "_parsed", "_index_line", "_dist_eps",
                 "_normset", "_watch")

    def __init__(self, path: str, data: bytes) -> None:
        end = data.find(b"\n")
        if end < 0:
            raise CacheError("no header line")
        try:
            header = _loads(data[:end])
        except (ValueError, RecursionError):
            raise CacheError("the header is not JSON") from None
        if not isinstance(header, dict) or header.get("format") != FORMAT:
            raise CacheError("not an epfinder cache")
        if header.get("version") != VERSION:
            raise CacheError(f"format version {header.get('version')!r}, expected {VERSION}")
        if header.get("path") != path:
            raise CacheError(f"written for {header.get('path')!r}")
        count = header.get("count")
        tables = header.get("tables")
        groups = header.get("groups")
        signature = header.get("signature")
        shadowed = header.get("shadowed")
        invalid = header.get("invalid")
        watched = header.get("watched")
        body = len(data) - end - 1
        if (
            type(count) is not int
            or type(watched) is not int
            or not isinstance(tables, dict)
            or not isinstance(groups, dict)
            or set(tables) != set(_TABLES)
            or not all(_valid_span(s, body) for s in tables.values())
            or not all(_valid_span(s, body) for s in groups.values())
            or not _is_int_list(signature, 4)
            or not _is_int_list(shadowed)
            or not _is_int_list(invalid)
        ):
            raise CacheError("malformed header")
        self.path = path
        self.signature = signature
        self.count = count
        self.groups: "dict[str, list[int]]" = groups
        self.shadowed = frozenset(shadowed)
        self.invalid = invalid
        self.watched = watched
        self.fast = header.get("fast") is True
        self.ambiguous = header.get("ambiguous") is not False
        self.trusted = True
        # Names this version of the file: a side file computed from it records this number.
        self.generation = zlib.crc32(data[:end])
        self._data = data
        self._body = end + 1
        self._tables: "dict[str, list[int]]" = tables
        self._parsed: "dict[str, Any]" = {}
        self._index_line: "bytes | None" = None  # checked once, searched by each lookup
        self._dist_eps: "dict[int, list[tuple[str, str, str]]] | None" = None
        self._normset: "frozenset[str | None] | None" = None
        self._watch: "dict[int, tuple[list[str], int]] | None" = None

    def _line(self, span: "list[int]", what: str) -> bytes:
        start = self._body + span[0]
        line = self._data[start : start + span[1]]
        if zlib.crc32(line) != span[2]:
            raise CacheError(f"checksum mismatch in {what}")
        return line

    def _decode(self, span: "list[int]", what: str, valid: "Validator") -> "Any":
        line = self._line(span, what)
        try:
            value = _loads(line)
        except (ValueError, RecursionError):
            raise CacheError(f"{what} is not JSON") from None
        if not valid(value, self.count):
            raise CacheError(f"{what} has the wrong shape")
        return value

    def _table(self, name: str, valid: "Validator") -> "Any":
        try:
            return self._parsed[name]
        except KeyError:
            value = self._parsed[name] = self._decode(self._tables[name], name, valid)
            return value

    def entry(self, i: int) -> str:
        return self._table("entry", _valid_strings)[i]

    def name(self, i: int) -> "str | None":
        return self._table("name", _valid_optional_strings)[i]

    def version(self, i: int) -> "str | None":
        return self._table("version", _valid_optional_strings)[i]

    def entry_points_known(self, i: int) -> bool:
        return self._table("entry_points", _valid_flags)[i]

    def normalized(self) -> "list[str | None]":
        return self._table("normalized", _valid_optional_strings)

    def unnamed(self) -> "list[int]":
        """Indices of the distributions whose name is unknown (possibly without any metadata)."""
        return [i for i, name in enumerate(self._table("name", _valid_optional_strings)) if name is None]

    def normset(self) -> "frozenset[str | None]":
        if self._normset is None:
            self._normset = frozenset(self.normalized())
        return self._normset

    def index_keys(self) -> "list[str]":
        return list(self._table("index", _valid_mapping))

    def lookup(self, key: str) -> "range":
        """Indices of the distributions Lookup files under ``key``, in search order."""
        if "index" not in self._parsed and key.isascii() and key.isprintable() and '"' not in key \
                and "\\" not in key:
            span = self._index_entry(key)
        else:
            span = self._table("index", _valid_mapping).get(key)
        if span is None:
            return range(0)
        if not _is_int_list(span, 2) or not 0 <= span[0] < span[0] + span[1] <= self.count:
            raise CacheError("index entry out of range")
        return range(span[0], span[0] + span[1])

    def _index_entry(self, key: str) -> "list[int] | None":
        """The index's value for one key, without decoding the others.

        version() among thousands of distributions needs one name, and decoding the whole index
        cost more than reading the file (1.7 ms against 0.6 ms at 5,274 distributions). The
        writer's compact, sorted, ASCII JSON (docs/cache-format.md) puts a key that JSON does not
        escape at ``"key":[start,count]`` right after ``{`` or ``,``, and nowhere else: a quote
        inside another key is escaped, so it follows a backslash.
        """
        line = self._index_line
        if line is None:
            line = self._index_line = self._line(self._tables["index"], "index")
        needle = b'"' + key.encode("ascii") + b'":['
        found = line.find(needle)
        while found > 0 and line[found - 1] not in b"{,":
            found = line.find(needle, found + 1)
        if found < 0:
            return None
        start = found + len(needle)
        fields = line[start : line.find(b"]", start)].split(b",")
        if len(fields) != 2 or not all(f.isdigit() for f in fields):
            raise CacheError("index entry is not [start, count]")
        return [int(fields[0]), int(fields[1])]

    def group(self, name: str) -> "Iterator[tuple[int, int, str, str]]":
        """An iterator of (dist, seq, name, value) over one group, in search order.

        ``dist`` is the distribution's index; ``seq`` its position among that distribution's
        entry points, in file order.
        """
        key = "group " + name
        try:
            return zip(*self._parsed[key])
        except KeyError:
            pass
        span = self.groups.get(name)
        if span is None:
            value = ((), (), (), ())
        else:
            columns = self._decode(span, f"group {name!r}", _valid_group)
            value = (columns["dist"], columns["seq"], columns["name"], columns["value"])
        self._parsed[key] = value
        return zip(*value)

    def all_entry_points(self) -> "list[tuple[int, int, str, str, str]]":
        """Every entry point as (dist, seq, group, name, value), in search and file order."""
        merged = [
            (d, seq, group, name, value)
            for group in self.groups
            for d, seq, name, value in self.group(group)
        ]
        merged.sort(key=lambda e: (e[0], e[1]))
        return merged

    def entry_points_of(self, i: int) -> "Sequence[tuple[str, str, str]]":
        """(group, name, value) triples of distribution ``i`` in file order."""
        if self._dist_eps is None:
            by_dist: "dict[int, list[tuple[str, str, str]]]" = {}
            for d, _seq, group, name, value in self.all_entry_points():
                by_dist.setdefault(d, []).append((group, name, value))
            self._dist_eps = by_dist
        return self._dist_eps.get(i, ())

    def _stamps_unchanged(self, i: int, files: "list[str]", digest: int) -> bool:
        entry = os.path.join(self.path, self.entry(i))
        current: "Stamps" = []
        for name in files:
            path = entry if name in (".", "") else os.path.join(entry, name)
            try:
                current.append([name, _boot.stamp(os.stat(path))])
            except OSError:
                current.append([name, None])
        return stamps_digest(current) == digest

    def stamps_match(self) -> bool:
        """strict mode: every metadata file the record was read from is unchanged."""
        stamps = self._table("stamps", _valid_stamps)
        return all(self._stamps_unchanged(i, files, digest)
                   for i, (files, digest) in enumerate(zip(stamps["files"], stamps["digest"])))

    def _watch_table(self) -> "dict[int, tuple[list[str], int]]":
        if self._watch is None:
            self._watch = {i: (files, digest) for i, files, digest in self._table("watch", _valid_watch)}
        return self._watch

    def watched_match(self) -> bool:
        """auto mode: every watched entry (see _scan.read_distribution) is as it was scanned."""
        if not self.watched:
            return True
        return all(self._stamps_unchanged(i, files, digest) for i, (files, digest) in self._watch_table().items())

    def current(self, mode: "str | None", index: "int | None" = None) -> bool:
        """Whether this cache still describes its directory, as the mode checks it.

        With ``index``, only what that one distribution's answers depend on: the directory's
        listing and, when watched (or in strict mode), its own files. Costs one stat of the
        directory, plus one per file checked.
        """
        if mode in ("trust", "only"):
            return True
        try:
            if _boot.dir_signature(os.stat(self.path)) != self.signature:
                return False
        except OSError:
            return False
        if index is None:
            return self.stamps_match() if mode == "strict" else self.watched_match()
        if mode == "strict":
            stamps = self._table("stamps", _valid_stamps)
            return self._stamps_unchanged(index, stamps["files"][index], stamps["digest"][index])
        if not self.watched:
            return True
        watched = self._watch_table().get(index)
        return watched is None or self._stamps_unchanged(index, *watched)


_STR: "set[type]" = {str}
_STR_OR_NONE: "set[type]" = {str, type(None)}


def _types(values: "Any", allowed: "set[type]") -> bool:
    # map/set run in C: this checks thousands of values in well under a millisecond.
    return type(values) is list and set(map(type, values)) <= allowed


def _valid_span(span: "Any", body: int) -> bool:
    return _is_int_list(span, 3) and 0 <= span[0] and 0 <= span[1] and span[0] + span[1] < body


def _valid_strings(value: "Any", count: int) -> bool:
    return type(value) is list and len(value) == count and _types(value, _STR)


def _valid_optional_strings(value: "Any", count: int) -> bool:
    return type(value) is list and len(value) == count and _types(value, _STR_OR_NONE)


def _valid_flags(value: "Any", count: int) -> bool:
    return type(value) is list and len(value) == count and _types(value, {bool})


def _valid_mapping(value: "Any", count: int) -> bool:
    return type(value) is dict


def _valid_stamps(value: "Any", count: int) -> bool:
    return (
        type(value) is dict
        and type(value.get("files")) is list
        and type(value.get("digest")) is list
        and len(value["files"]) == len(value["digest"]) == count
        and _types(value["digest"], {int})
    )


def _valid_watch(value: "Any", count: int) -> bool:
    return type(value) is list and all(
        type(w) is list and len(w) == 3 and type(w[0]) is int and 0 <= w[0] < count
        and type(w[1]) is list and _types(w[1], _STR) and type(w[2]) is int
        for w in value
    )


def _valid_group(value: "Any", count: int) -> bool:
    if type(value) is not dict or value.keys() != {"dist", "seq", "name", "value"}:
        return False
    dists, seqs, names, values = value["dist"], value["seq"], value["name"], value["value"]
    return (
        type(dists) is type(seqs) is type(names) is type(values) is list
        and len(dists) == len(seqs) == len(names) == len(values) > 0
        and set(map(type, dists)) == {int}
        and set(map(type, seqs)) == {int}
        and set(map(type, names)) == _STR
        and set(map(type, values)) == _STR
        and min(dists) >= 0
        and max(dists) < count
    )


def _is_int_list(value: object, length: "int | None" = None) -> "TypeGuard[list[int]]":
    return (
        isinstance(value, list)
        and (length is None or len(value) == length)
        and all(type(v) is int for v in value)
    )


# --- locations --------------------------------------------------------------------------------

_site_dirs: "set[str] | None" = None
_base_site_dirs: "set[str] | None" = None


def _site_module() -> "ModuleType | None":
    # Deferred: site is imported at start unless -S; without it there are no site dirs.
    return sys.modules.get("site")


def site_directories() -> "set[str]":
    """This environment's own install locations, where a cache may live inside the directory.

    In a virtual environment made with --system-site-packages, the base interpreter's site
    directories are not among them (docs/security.md, rule 8): a query in the venv never writes
    into them, and the base's own caches are read only after this user's.
    """
    global _site_dirs
    if _site_dirs is None:
        found = set()
        site = _site_module()
        if site is not None:
            try:
                # sys.prefix is the venv in a venv, where site.PREFIXES may add the base's prefix.
                found.update(site.getsitepackages([sys.prefix]) if sys.prefix != sys.base_prefix
                             else site.getsitepackages())
            except Exception:
                pass
            if getattr(site, "ENABLE_USER_SITE", False):
                try:
                    found.add(site.getusersitepackages())
                except Exception:
                    pass
        _site_dirs = {os.path.normcase(os.path.abspath(p)) for p in found}
    return _site_dirs


def base_site_directories() -> "set[str]":
    """The base interpreter's site directories that a venv with --system-site-packages includes.

    Install locations too (their entries are sealed as in any site directory), but another
    environment's: nothing is written into them from here, even where they hold a cache folder.
    """
    global _base_site_dirs
    if _base_site_dirs is None:
        found = set()
        site = _site_module()
        if site is not None and sys.prefix != sys.base_prefix:
            try:
                found.update(site.getsitepackages())
            except Exception:
                pass
        _base_site_dirs = {os.path.normcase(os.path.abspath(p)) for p in found} - site_directories()
    return _base_site_dirs


_installation: "str | None" = None


def installation_tag() -> str:
    """The per-user folder name of this installation of epfinder (the directory it is installed in).

    Each installation keeps its per-user caches apart, so that uninstalling one removes exactly
    the caches it wrote, and none that another environment uses.
    """
    global _installation
    if _installation is None:
        import _epfinder_boot

        home = os.path.dirname(os.path.abspath(_epfinder_boot.__file__))
        tag = zlib.crc32(os.fsencode(home)) & 0xFFFFFFFF
        readable = "".join(c if c.isalnum() or c in "-." else "_" for c in home)[-48:].strip("_")
        _installation = f"{readable}-{tag:08x}"
    return _installation


_NO_USER_CACHE = os.path.join(os.devnull, "epfinder")  # nothing can be made or read under a device
_passwd_home: "str | None" = None


def user_cache_base() -> str:
    """The per-user cache folder of every installation: ``$XDG_CACHE_HOME/epfinder``, else ``~/.cache/epfinder``.

    Under -E and -I the environment chooses nothing (an isolated interpreter must not be pointed
    at a planted cache): XDG_CACHE_HOME and HOME are not read, and the home directory comes from
    the password database. With no absolute home at all, there is no per-user location: the path
    returned is under os.devnull, where no file can be created or found.
    """
    if not sys.flags.ignore_environment:
        base = os.environ.get("XDG_CACHE_HOME")
        if base and os.path.isabs(base):
            return os.path.join(base, "epfinder")
        home = os.environ.get("HOME")
        if home and os.path.isabs(home):
            return os.path.join(home, ".cache", "epfinder")
    global _passwd_home
    if _passwd_home is None:
        try:
            import pwd

            _passwd_home = pwd.getpwuid(os.getuid()).pw_dir
        except (ImportError, KeyError):
            _passwd_home = ""
    if not os.path.isabs(_passwd_home):
        return _NO_USER_CACHE
    return os.path.join(_passwd_home, ".cache", "epfinder")


def user_cache_root() -> str:
    """This installation's per-user cache folder: ``user_cache_base()/<installation_tag()>``."""
    return os.path.join(user_cache_base(), installation_tag())


def make_user_cache_root() -> str:
    """Make the per-user cache folder if it is missing: its missing parents 0700, itself 0755.

    Checked as every cache folder (epfinder._startup_atomic.open_dir); OSError when it cannot be made or
    is refused.
    """
    from . import _startup_atomic

    root = user_cache_root()
    _startup_atomic.make_parents(root)
    _startup_atomic.make_dir(root)
    return root


def in_directory_file(path: str) -> str:
    return os.path.join(path, SUBDIR, FILENAME)


def per_user_file(path: str) -> str:
    # crc32, not hashlib (which loads OpenSSL): the header names the directory, so a collision
    # costs a rescan, never a wrong answer.
    tag = zlib.crc32(os.fsencode(path)) & 0xFFFFFFFF
    base = "".join(c if c.isalnum() or c in "-_." else "_" for c in os.path.basename(path))[:64]
    return os.path.join(user_cache_root(), f"{base}-{tag:08x}.jsonl")


def candidate_files(path: str) -> "tuple[str, str]":
    """Where the cache of ``path`` may be, the likelier first (a site directory keeps its own)."""
    if os.path.normcase(os.path.abspath(path)) in site_directories():
        return (in_directory_file(path), per_user_file(path))
    return (per_user_file(path), in_directory_file(path))


def caches_in_directory(path: str) -> bool:
    """A site directory of this environment, or one opted in with ``refresh``, keeps its cache inside itself.

    A base interpreter's site directory seen from a venv never does, though it has a cache folder
    of its own (docs/security.md, rule 8).
    """
    norm = os.path.normcase(os.path.abspath(path))
    if norm in site_directories():
        return True
    return os.path.isdir(os.path.join(path, SUBDIR)) and norm not in base_site_directories()


def writable_files(path: str) -> "tuple[str, ...]":
    """Where this interpreter may write (or delete) the cache of ``path``, the preferred first."""
    if caches_in_directory(path):
        return (in_directory_file(path), per_user_file(path))
    return (per_user_file(path),)


def load(path: str, dir_uid: "int | None" = None) -> "DirCache | None":
    """The cache recorded for ``path``, or None when there is none that parses and may be trusted.

    Each candidate is read whole by _epfinder_boot.read_trusted (docs/security.md, rule 3): opened
    with O_NONBLOCK|O_NOFOLLOW, refused unless its descriptor shows a regular file that only its
    owner can write, owned by root, this user or the directory's owner, and at most MAX_SIZE
    bytes. No descriptor is kept.
    """
    import _epfinder_boot

    for file in candidate_files(path):
        if dir_uid is None:
            try:
                dir_uid = os.stat(path).st_uid
            except OSError:
                return None
        try:
            data = _epfinder_boot.read_trusted(file, dir_uid, MAX_SIZE)
        except OSError:
            continue
        try:
            return DirCache(path, data)
        except CacheError:
            continue
    return None


# --- building and writing ---------------------------------------------------------------------


class _Target:
    """A temporary file beside the cache file, whose birth time is the racy-check reference.

    Made by epfinder._startup_atomic (a random name, O_EXCL|O_NOFOLLOW in a checked folder, 0644): a
    cache folder that is a symlink or another user's is refused, and the next place is tried.
    """

    file: "AtomicFile | None"
    final: "str | None"

    def __init__(self, path: str) -> None:
        from . import _startup_atomic

        self.file = self.final = None
        # Taken before the directory is listed: anything stamped before it was seen by the scan.
        self.reference_ns = time.time_ns() - WALL_CLOCK_MARGIN_NS
        inside = in_directory_file(path)
        for final in writable_files(path):
            try:
                if final != inside:
                    _startup_atomic.make_parents(os.path.dirname(final))
                file = _startup_atomic.AtomicFile(final, create_dir=True)
            except OSError:
                continue
            self.file, self.final = file, final
            if final == inside:
                # Same filesystem, same clock: a strict "older than" on its timestamps is enough.
                try:
                    self.reference_ns = _boot.timestamps(os.fstat(file.fd))[0]  # type: ignore[arg-type]  # still open
                except OSError:
                    pass
            return

    @property
    def fd(self) -> "int | None":
        return None if self.file is None else self.file.fd

    def commit(self, data: bytes) -> None:
        try:
            self.file.commit(data)  # type: ignore[union-attr]  # build() commits only when a file was made
        finally:
            self.close()

    def close(self) -> None:
        if self.file is not None:
            self.file.abort()
            self.file = None


def _older_than(reference_ns: int, signature: "list[int]", records: "list[Record]") -> bool:
    """git's racy-clean rule: trust only what changed strictly before the reference time."""
    if signature[2] >= reference_ns or signature[3] >= reference_ns:
        return False
    for record in records:
        for _name, st in record["stamps"]:
            if st is not None and (st[3] >= reference_ns or st[4] >= reference_ns):
                return False
    return True


def side_file(cache_file: str, tag: str) -> str:
    """The packages_distributions() side file (epfinder._packages) of one flavour beside a cache file."""
    folder, name = os.path.split(cache_file)
    if name == FILENAME:
        return os.path.join(folder, f"top-level-{tag}.json")
    return os.path.join(folder, f"{name[:-len('.jsonl')]}.top-level-{tag}.json")


def side_files(path: str, cache_files: "Sequence[str] | None" = None) -> "list[str]":
    """Every side file of ``path`` that may exist beside ``cache_files`` (default: every candidate),
    for discard(): none in a refused folder."""
    from . import _startup_atomic

    found = []
    for cache_file in candidate_files(path) if cache_files is None else cache_files:
        folder, name = os.path.split(cache_file)
        prefix = "top-level-" if name == FILENAME else f"{name[:-len('.jsonl')]}.top-level-"
        try:
            fd = _startup_atomic.open_dir(folder)  # a symlinked or foreign folder is never listed for deletion
        except OSError:
            continue
        try:
            found += [os.path.join(folder, f) for f in os.listdir(fd) if f.startswith(prefix)]
        finally:
            os.close(fd)
    return found


def discard(path: str, everywhere: bool = True) -> "list[str]":
    """Remove the cache files of ``path`` (side files included); returns the ones removed.

    Only by name in a folder that epfinder._startup_atomic.open_dir accepts: nothing is deleted through a
    symlinked or foreign folder. ``everywhere`` False: only where this interpreter may write the
    cache (writable_files), never a base interpreter's folder from a venv.
    """
    from . import _startup_atomic

    removed = []
    places = candidate_files(path) if everywhere else writable_files(path)
    old = [os.path.join(path, SUBDIR, name) for name in OLD_FILENAMES] if in_directory_file(path) in places else []
    for file in [*places, *side_files(path, places), *old]:
        try:
            if _startup_atomic.remove(file):
                removed.append(file)
        except OSError:
            pass
    return removed


def build(path: str, write: bool = True) -> "DirCache":
    """Scan ``path``, write its cache where it may, and return it as a DirCache.

    ``trusted`` on the result says whether the scan may be reused later: it is False when the
    directory changed during the scan or too recently to tell a later change apart (then nothing
    is written either). Raises OSError when the directory cannot be listed.
    """
    from . import _scan  # deferred: reading a cache needs no scanner

    target = _Target(path) if write else None
    try:
        norm = os.path.normcase(os.path.abspath(path))
        install_location = norm in site_directories() or norm in base_site_directories()
        before, after, index, records = _scan.scan(path, install_location)
        reference_ns = target.reference_ns if target else time.time_ns() - WALL_CLOCK_MARGIN_NS
        data = encode(path, before, index, records)
        cache = DirCache(path, data)
        cache.trusted = before == after and _older_than(reference_ns, before, records)
        if cache.trusted and target is not None and target.file is not None:
            try:
                target.commit(data)
            except OSError:
                pass  # ENOSPC, EACCES...: the answer is right, only the next start is slower
        elif write:
            # Whatever cache file is there was found stale by the caller: the next reader must
            # scan rather than trust it. Only where this interpreter writes its caches.
            discard(path, everywhere=False)
        return cache
    finally:
        if target is not None:
            target.close()


# --- which cache serves a path ---------------------------------------------------------------


# path -> DirCache that may be reused while the directory's signature is unchanged
_states: "dict[str, DirCache]" = {}

# What served() returns in "only" mode for a directory without a cache: no distributions.
# Typed Any: callers tell it apart by identity, on which the checker cannot narrow a plain object.
NOTHING: "Any" = object()


def invalidate() -> None:
    """Forget every cache read in this process (importlib.invalidate_caches, fork, mode change)."""
    _states.clear()


os.register_at_fork(after_in_child=invalidate)


def debug() -> bool:
    return not sys.flags.ignore_environment and os.environ.get("EPFINDER_DEBUG") == "1"


def served(path: str, recheck: bool = False, names_only: bool = False) -> "DirCache | None":
    """The DirCache that answers for ``path``, or None when the plain scan must answer.

    ``names_only``: the caller looks distributions up by name and reads them only through the
    cached distribution class, which checks each one's own files before answering (_read). Which
    entries a name finds depends on the listing alone (importlib.metadata's Lookup files entries
    by their directory names), so the directory's signature is all that is checked here, not the
    stamps of every watched entry: in a `pip install --target` folder on PYTHONPATH every entry is
    watched, and checking them all cost version() more than the plain scan it replaces.
    """
    if type(path) is not str or not os.path.isabs(path):
        return None
    mode = _boot.mode
    state = _states.get(path)
    if state is not None and mode in ("trust", "only") and not recheck:
        return state
    try:
        st = os.stat(path)
    except OSError:
        _states.pop(path, None)
        return None
    if not stat.S_ISDIR(st.st_mode) or os.path.basename(path).lower().endswith(".egg"):
        return None
    signature = _boot.dir_signature(st)
    if state is not None and _usable(state, signature, mode, recheck, names_only):
        return state
    cache = load(path, st.st_uid)
    if cache is not None and _usable(cache, signature, mode, recheck, names_only):
        _states[path] = cache
        return cache
    if mode == "only":
        return NOTHING
    try:
        cache = build(path)
    except OSError:
        return None
    # A scan too close to the directory's last change is answered but not reused, except in the
    # modes that by contract check nothing.
    if cache.trusted or mode in ("trust", "only"):
        _states[path] = cache
    else:
        _states.pop(path, None)
    return cache


def _usable(cache: "DirCache", signature: "list[int]", mode: "str | None", recheck: bool, names_only: bool = False) -> bool:
    if mode in ("trust", "only") and not recheck:
        return True
    if cache.signature != signature:
        return False
    if names_only:
        return True  # each distribution found checks its own files (_read)
    try:
        return cache.stamps_match() if mode == "strict" else cache.watched_match()
    except CacheError:
        return False  # a corrupt stamps table: rebuilt, like any cache that cannot be checked


def forget(path: str) -> None:
    """A cache found unusable while reading it: drop it here and on disk, so the next query rebuilds."""
    _states.pop(path, None)
    try:
        discard(path)
    except Exception:
        pass


def served_or_none(path: str, recheck: bool = False, names_only: bool = False) -> "DirCache | None":
    try:
        state = served(path, recheck, names_only)
        # Names that the stdlib of 3.15 and the backport normalize differently: plain code only.
        return None if state is not None and state is not NOTHING and state.ambiguous else state
    except Exception:
        if debug():
            raise
        _states.pop(path, None)
        return None


def metadata_module() -> "ModuleType":
    # Deferred: only reached from importlib.metadata itself, which is loaded by then.
    import importlib.metadata

    return importlib.metadata


def plain(md: "ModuleType", path: str, prepared: "Any") -> "Iterable[Any]":
    if type(path) is str and os.path.isabs(path):
        try:
            os.stat(path)
        except FileNotFoundError:
            # FastPath finds nothing there either, but only after failing to open it as a zip
            # archive, which makes the backport import zipp and zipfile (milliseconds).
            return ()
    return map(md.PathDistribution, md.FastPath(path).search(prepared))


def plain_discovery(md: "ModuleType") -> "tuple[object, ...]":
    """What plain entry_points() relies on; if any of it is replaced, it is answered plainly."""
    return (
        md.distributions,
        md.Distribution.__dict__.get("discover"),
        md.Distribution.__dict__.get("_discover_resolvers"),
        getattr(md, "_unique", None),
        getattr(md, "unique_everseen", None),
    )


MISSING = object()  # a parameter entry_points() was not given


class Dedup:
    """unique_everseen over _normalized_name, where cached directories count as sets of names."""

    def __init__(self) -> None:
        self.names: "set[str]" = set()
        self.caches: "list[DirCache]" = []

    def __bool__(self) -> bool:
        return bool(self.names or self.caches)

    def seen(self, name: "str | None") -> bool:
        return name in self.names or any(name in c.normset() for c in self.caches)


def group_entries(
    state: "DirCache", group: object, name: object, wanted: "Callable[[str, str], bool]", dedup: "Dedup"
) -> "list[tuple[int, str, str, str]]":
    """(dist index, group, name, value) of the entries of one cached directory that
    entry_points(**params) would collect, in its order."""
    shadowed = state.shadowed
    norms = state.normalized() if dedup else None
    if type(group) is str and name is MISSING and not shadowed and norms is None:
        # The common query: one group, nothing to deduplicate, no test per entry.
        return [(d, group, n, v) for d, _seq, n, v in state.group(group)]
    if type(group) is str:
        entries = [(e[0], group, e[2], e[3]) for e in state.group(group)]
    else:
        entries = [(e[0], e[2], e[3], e[4]) for e in state.all_entry_points()]
    return [
        (d, g, n, v) for d, g, n, v in entries
        if d not in shadowed and wanted(g, n) and (norms is None or not dedup.seen(norms[d]))
    ]


# The importlib_metadata backport's MetadataPathFinder.find_distributions stand-ins that
# serve_backport() installs: function -> the module it serves.
backport_resolvers: "dict[Callable[..., Any], ModuleType]" = {}


def library_of(resolver: "Callable[..., Any]") -> "ModuleType | None":
    """The importlib.metadata flavour a discovery resolver is epfinder's stand-in for, or None."""
    if resolver is _boot.find_distributions:
        return metadata_module()
    return backport_resolvers.get(resolver)


# --- the cached distribution -----------------------------------------------------------------


_classes: "dict[str, type]" = {}
_UNKNOWN = object()


def _read(record: "tuple[DirCache, int]", getter: "Callable[[DirCache, int], Any]", check: bool = True) -> "Any":
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
        forget(cache.path)
        return _UNKNOWN


def _entry(cache: "DirCache", index: int) -> str:
    # Not checked for currency: like a plain distribution's, the path is fixed when it is made.
    value = _read((cache, index), lambda c, i: c.entry(i), check=False)
    if value is _UNKNOWN:
        # The directory is unchanged (its signature matched), so a fresh listing puts the same
        # entry at the same place in search order.
        from ._startup_entries import list_metadata  # deferred: an unknown entry name is rare

        value = list_metadata(cache.path)[0][index]
    return value


def distribution_class(md: "ModuleType") -> type:
    """The cached-distribution class for one importlib.metadata flavour (stdlib or backport)."""
    cls = _classes.get(md.__name__)
    if cls is None or cls.__bases__[0] is not md.PathDistribution:
        cls = _classes[md.__name__] = _make_class(md)
    return cls


def _make_class(md: "ModuleType") -> type:
    # Here, not at the top: the application API (epfinder.entry_points) never needs pathlib, and
    # importlib.metadata, the one caller of this, has loaded it already.
    import pathlib

    base: "Any" = md.PathDistribution  # Any: whichever flavour's class, which the checker cannot know

    class CachedPathDistribution(base):
        """A PathDistribution whose name, version and entry points come from an epfinder cache."""

        def __init__(self, cache: "DirCache", index: int) -> None:
            self._epfinder_record = (cache, index)

        def __getattr__(self, attr: str) -> "pathlib.Path":
            # _path is built on first use: most queries never need it, and pathlib is slow.
            if attr == "_path":
                cache, index = self.__dict__["_epfinder_record"]
                path = pathlib.Path(cache.path, _entry(cache, index))
                self.__dict__["_path"] = path
                return path
            raise AttributeError(attr)

        def __reduce__(self) -> "tuple[Any, tuple[pathlib.Path]]":
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
        def entry_points(self) -> "Any":
            known = _read(self._epfinder_record, lambda c, i: c.entry_points_known(i) and list(c.entry_points_of(i)))
            if known is _UNKNOWN or known is False:
                return super().entry_points
            make = md.EntryPoint
            return md.EntryPoints(make(name=name, value=value, group=group)._for(self) for group, name, value in known)

    def _epfinder_has_metadata(self: "CachedPathDistribution") -> bool:
        # True when the cache proves a metadata file is there: it knows the name read from it.
        known = _read(self._epfinder_record, lambda c, i: c.name(i))
        return known is not None and known is not _UNKNOWN

    CachedPathDistribution._epfinder_has_metadata = _epfinder_has_metadata

    if hasattr(base, "_has_metadata"):
        # importlib_metadata 10.1+ asks every distribution this in entry_points() and
        # distribution(); a known name means its metadata was read, so it is there.
        def _has_metadata(self: "CachedPathDistribution") -> bool:
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


# --- the finder, and patching importlib.metadata ---------------------------------------------


def find_distributions(context: "Any" = None) -> "Iterator[Any]":
    """PathFinder.find_distributions for the stdlib importlib.metadata."""
    return search(metadata_module(), context)


_replaced_finders: "dict[type[Any], object]" = {}  # MetadataPathFinder class -> the find_distributions it had


def serve_backport(md: "ModuleType") -> None:
    """Answer the importlib_metadata backport's path discovery from the caches too.

    Importing the backport removes PathFinder.find_distributions (ours included) and appends its
    own MetadataPathFinder to sys.meta_path; from then on every caller, stdlib or backport, gets
    its distributions from that finder. Its find_distributions is replaced by one that answers as
    search() does, with the backport's own classes.
    """
    finder = getattr(md, "MetadataPathFinder", None)
    current = getattr(finder, "__dict__", {}).get("find_distributions")
    if current is None or finder in _replaced_finders:
        return
    if not all(hasattr(md, a) for a in ("FastPath", "Prepared", "PathDistribution", "DistributionFinder")):
        return  # a shape this module does not know: the backport scans as usual

    def find_distributions(context: "Any" = None) -> "Iterator[Any]":
        return search(md, context)

    backport_resolvers[find_distributions] = md
    # finder is not None: it had a find_distributions of its own.
    _replaced_finders[finder] = current  # type: ignore[index]
    finder.find_distributions = staticmethod(find_distributions)  # type: ignore[union-attr]


def search(md: "ModuleType", context: "Any" = None) -> "Iterator[Any]":
    """MetadataPathFinder.find_distributions(context) of ``md``, served from caches."""
    if context is None:
        context = md.DistributionFinder.Context()
    paths = context.path
    prepared = md.Prepared(context.name)
    return itertools.chain.from_iterable(_search_path(md, path, prepared) for path in paths)


def _search_path(md: "ModuleType", path: str, prepared: "Any") -> "Iterable[Any]":
    found = _search_cache(md, path, prepared)
    # Outside any except block: an exception of the plain code reaches the caller as it is.
    return plain(md, path, prepared) if found is None else found


def _search_cache(md: "ModuleType", path: str, prepared: "Any") -> "Sequence[Any] | None":
    """The distributions the cache of ``path`` answers, or None when the plain search must."""
    # A search by name reads its distributions only through the cached class, which checks each
    # one's own files (_read): the watched entries it does not find need no check (see served).
    state = served_or_none(path, names_only=bool(prepared))
    if state is None:
        return None
    if state is NOTHING:
        return ()
    try:
        if prepared:
            indices = state.lookup(prepared.normalized)
            if not indices and _boot.mode == "trust":
                # trust: a name the cache does not know may have been installed since.
                state = served_or_none(path, recheck=True)
                if state is None or state is NOTHING:
                    return None if state is None else ()
                indices = state.lookup(prepared.normalized)
        else:
            indices = range(state.count)
        cls = distribution_class(md)
        return [cls(state, i) for i in indices]
    except CacheError:
        if debug():
            raise
        forget(path)
        return None


# --- entry_points() answered from the group index ---------------------------------------------

# The shapes of entry_points() this module knows how to answer faster, by the globals they use:
# the stdlib's in 3.10 and 3.11 (both end in SelectableGroups.load(eps).select()), in 3.12 and
# later and in the backport up to 10.0 (EntryPoints(eps).select()), and the backport's from 10.1,
# which first moves distributions without metadata to the end (Distribution._prefer_valid).
_SELECTABLE, _ENTRYPOINTS, _PREFER_VALID = "selectable", "entrypoints", "prefer-valid"
_SHAPES = {
    frozenset({"operator", "attrgetter", "functools", "partial", "unique_everseen", "itertools",
               "chain", "from_iterable", "distributions", "SelectableGroups", "load", "select"}): _SELECTABLE,
    frozenset({"itertools", "chain", "from_iterable", "_unique", "distributions",
               "SelectableGroups", "load", "select"}): _SELECTABLE,
    frozenset({"itertools", "chain", "from_iterable", "_unique", "distributions", "EntryPoints",
               "select"}): _ENTRYPOINTS,
    frozenset({"itertools", "chain", "from_iterable", "_unique", "Distribution", "_prefer_valid",
               "distributions", "EntryPoints", "select"}): _PREFER_VALID,
}

# module -> (original entry_points, the function put in its place)
_patched: "dict[ModuleType, tuple[Callable[..., Any], Callable[..., Any]]]" = {}


def patch_module(md: "ModuleType") -> None:
    """Serve ``md`` (importlib.metadata or the backport) from the caches as far as its shape allows.

    Its entry_points() is replaced by one that reads the group index, if its shape is a known one.
    """
    if _boot.mode is None:
        return
    if md.__name__ == "importlib_metadata":
        serve_backport(md)
    if md in _patched:
        return
    _patch_packages_distributions(md)
    _patch_prefer_valid(md)
    original = md.entry_points
    names = frozenset(getattr(getattr(original, "__code__", None), "co_names", ()))
    shape = _SHAPES.get(names)
    if shape is None:
        return
    replacement = _make_entry_points(md, original, shape)
    _patched[md] = (original, replacement)
    md.entry_points = replacement  # type: ignore[attr-defined]  # patching the library


# module -> (original packages_distributions, the function put in its place)
_patched_packages: "dict[ModuleType, tuple[Callable[..., Any], Callable[..., Any]]]" = {}


def _patch_packages_distributions(md: "ModuleType") -> None:
    """Put a stand-in in place that loads epfinder._packages on its first call only.

    `import importlib.metadata` patches the library, and many programs never call
    packages_distributions(): they should not pay for loading what answers it.
    """
    original = getattr(md, "packages_distributions", None)
    if original is None or md in _patched_packages:
        return
    discovery = plain_discovery(md)
    answer: "list[Callable[[], dict[str, list[str]]]]" = []

    def packages_distributions() -> "dict[str, list[str]]":
        if not answer:
            # Through _epfinder_boot.handover, the one way up: _packages reads the caches through
            # this module, so a plain import here would close a cycle (tests/test_layers.py).
            _packages = _boot.handover("_packages")
            shape = _packages.shape_of(md, original)
            answer.append(original if shape is None else
                          _packages.make_packages_distributions(md, original, shape, discovery))
        return answer[0]()

    for attr in ("__doc__", "__name__", "__qualname__", "__module__"):
        setattr(packages_distributions, attr, getattr(original, attr))
    packages_distributions.__wrapped__ = original  # type: ignore[attr-defined]  # as functools.wraps sets it
    _patched_packages[md] = (original, packages_distributions)
    md.packages_distributions = packages_distributions  # type: ignore[attr-defined]  # patching the library


# Distribution._prefer_valid of CPython 3.15, by the globals it uses: it reads `metadata` of each
# distribution in turn until one has it, which for version() and distribution() means parsing a
# METADATA file with email (milliseconds) where 3.14 parsed nothing.
_PREFER_VALID_BY_METADATA = frozenset({"ExceptionTrap", "MetadataNotFound", "passes", "operator",
                                       "attrgetter", "bucket", "itertools", "chain"})
# Distribution class -> (original staticmethod, the one put in its place)
_patched_prefer_valid: "dict[type[Any], tuple[object, object]]" = {}


def _patch_prefer_valid(md: "ModuleType") -> None:
    """Answer 3.15's _prefer_valid without parsing the METADATA of a cached distribution.

    A cached distribution whose name the cache knows had a metadata file when it was scanned (and
    the cache is current), so `metadata` would not raise MetadataNotFound: it goes to the front
    bucket without being read. Any other distribution is asked as the original asks it.
    """
    cls = md.Distribution
    original = cls.__dict__.get("_prefer_valid")
    func = getattr(original, "__func__", None)
    if cls in _patched_prefer_valid or not isinstance(original, staticmethod) or \
            frozenset(getattr(getattr(func, "__code__", None), "co_names", ())) != _PREFER_VALID_BY_METADATA:
        return
    names = func.__globals__  # type: ignore[union-attr]  # not None: its code names matched above
    trap, missing, bucket = names["ExceptionTrap"], names["MetadataNotFound"], names["bucket"]

    def _prefer_valid(dists: "Iterable[Any]") -> "Iterator[Any]":
        from operator import attrgetter  # here: importlib.metadata has loaded it

        has_metadata = trap(missing).passes(attrgetter("metadata"))

        def check(dist: "Any") -> bool:
            known = getattr(dist, "_epfinder_has_metadata", None)
            return True if known is not None and known() else has_metadata(dist)

        buckets = bucket(dists, check)
        return itertools.chain(buckets[True], buckets[False])

    _prefer_valid.__doc__ = func.__doc__
    _prefer_valid.__wrapped__ = func  # type: ignore[attr-defined]  # as functools.wraps sets it
    replacement = staticmethod(_prefer_valid)
    _patched_prefer_valid[cls] = (original, replacement)
    cls._prefer_valid = replacement


def unpatch_all() -> None:
    """Put back everything patch_module() and serve_backport() replaced (disable(), and at exit)."""
    # The cached-distribution classes too: distributions handed out keep theirs, and a later
    # enable() makes new ones. One kept alive into the interpreter's teardown costs that teardown
    # 3.5 M instructions (callgrind, 3.11, a process that called version() once), more than the
    # whole query; the exit handler in _epfinder_boot runs this before it.
    _classes.clear()
    for cls, (original, replacement) in list(_patched_prefer_valid.items()):
        if cls.__dict__.get("_prefer_valid") is replacement:
            cls._prefer_valid = original
    _patched_prefer_valid.clear()
    for md, (original, replacement) in list(_patched.items()):
        if md.entry_points is replacement:
            md.entry_points = original  # type: ignore[attr-defined]  # patching the library back
    _patched.clear()
    for md, (original, replacement) in list(_patched_packages.items()):
        if md.packages_distributions is replacement:
            md.packages_distributions = original  # type: ignore[attr-defined]  # patching the library back
    _patched_packages.clear()
    for finder, original in list(_replaced_finders.items()):
        current = finder.__dict__.get("find_distributions")
        if isinstance(current, staticmethod) and current.__func__ in backport_resolvers:
            finder.find_distributions = original
    _replaced_finders.clear()
    backport_resolvers.clear()


def _make_entry_points(md: "ModuleType", original: "Callable[..., Any]", shape: str) -> "Callable[..., Any]":
    discovery = plain_discovery(md)
    prefer_valid = md.Distribution.__dict__.get("_prefer_valid") if shape == _PREFER_VALID else None

    def entry_points(**params: "Any") -> "Any":
        if _boot.mode is None or discovery != plain_discovery(md) or (
            prefer_valid is not None and md.Distribution.__dict__.get("_prefer_valid") is not prefer_valid
        ):
            return original(**params)
        try:
            eps = _collect(md, params, require_metadata=shape == _PREFER_VALID)
        except Exception:
            if debug():
                raise
            eps = None
        if eps is None:
            # Whatever went wrong, the plain function gives the plain answer, or raises the plain
            # exception: from here, outside the except block, so that nothing is chained to it.
            return original(**params)
        if type(params.get("group")) is str and params.keys() <= {"group", "name"}:
            # Every entry collected already matches, and one group needs no regrouping: this
            # is what the select() below would return, without testing each entry again.
            return md.EntryPoints(eps)
        if shape == _SELECTABLE:
            return md.SelectableGroups.load(eps).select(**params)
        return md.EntryPoints(eps).select(**params)

    entry_points.__doc__ = original.__doc__
    entry_points.__name__ = original.__name__
    entry_points.__qualname__ = original.__qualname__
    entry_points.__module__ = original.__module__
    entry_points.__wrapped__ = original  # type: ignore[attr-defined]  # as functools.wraps sets it
    return entry_points


class _MetadataMissing(Exception):
    """A distribution without metadata, which _prefer_valid would move: answer plainly."""


class _InvalidValue(Exception):
    """An entry point the library would refuse to create: answer plainly, which raises."""


_validating: "dict[type[Any], bool | None]" = {}  # EntryPoint class -> whether it checks its value on creation


def validates_values(lib: "ModuleType") -> bool:
    """Whether ``lib`` raises ValueError when an EntryPoint with an invalid value is created.

    importlib_metadata 8.7+ and CPython 3.15 do; then plain entry_points() raises when any
    distribution it reads holds one, in whatever group. The scanner flags such distributions
    with the same pattern; a library with another pattern is never answered from the index.
    """
    cls = lib.EntryPoint
    known = _validating.get(cls)
    if known is None:
        try:
            cls(name="n", value="not a valid value!", group="g")
            known = False
        except ValueError:
            pattern = getattr(getattr(cls, "pattern", None), "pattern", None)
            from ._startup_entries import PATTERN

            known = True if pattern == PATTERN else None
        except Exception:
            known = None
        _validating[cls] = known
    if known is None:
        raise _InvalidValue
    return known


def _has_metadata(lib: "ModuleType", dist: "Any") -> bool:
    check = getattr(lib, "_safe_has_metadata", None)
    return check(dist) if check is not None else dist._has_metadata()


def _collect(md: "ModuleType", params: "dict[str, Any]", require_metadata: bool = False) -> "list[Any]":
    """The entry points plain entry_points() would select from, in its order, for ``params``.

    Entries that cannot match the group or name asked for are left out early, with the same
    comparison select() makes, so the result is a superset of the answer in the plain order.
    With ``require_metadata`` (the backport from 10.1, whose entry_points() first moves every
    distribution without metadata to the end), it raises _MetadataMissing on meeting one, since
    then the order differs; such environments are answered by the plain function.
    """
    from operator import eq  # here: importlib.metadata has loaded it; the application API needs none

    group = params.get("group", MISSING)
    name = params.get("name", MISSING)

    def wanted(ep_group: str, ep_name: str) -> bool:
        return (group is MISSING or eq(group, ep_group)) and (name is MISSING or eq(name, ep_name))

    result: "list[Any]" = []
    dedup = Dedup()

    def addplain(dists: "Iterable[Any]") -> None:
        for dist in dists:
            if require_metadata and not _has_metadata(md, dist):
                raise _MetadataMissing
            norm = dist._normalized_name
            if dedup.seen(norm):
                continue
            dedup.names.add(norm)
            result.extend(ep for ep in dist.entry_points if wanted(ep.group, ep.name))

    context = md.DistributionFinder.Context()
    for resolver in md.Distribution._discover_resolvers():
        # The distributions come from the resolver's library (after the backport is imported,
        # even stdlib callers get the backport's objects), so its classes build the answer.
        lib = library_of(resolver)
        if lib is None:
            addplain(resolver(context))
            continue
        everything = lib.Prepared(None)
        cls = distribution_class(lib)
        for path in context.path:
            state = served_or_none(path)
            if state is NOTHING:
                continue
            if state is None:
                addplain(plain(lib, path, everything))
                continue
            if require_metadata and any(not cls(state, i)._has_metadata() for i in state.unnamed()):
                raise _MetadataMissing
            if state.invalid and validates_values(lib) and not all(
                    i in state.shadowed or dedup.seen(state.normalized()[i]) for i in state.invalid):
                raise _InvalidValue
            if not state.fast:
                addplain(cls(state, i) for i in range(state.count))
                continue
            try:
                found = _from_group_index(lib, state, group, name, wanted, dedup, cls)
            except CacheError:
                if debug():
                    raise
                forget(path)
                addplain(plain(lib, path, everything))
                continue
            result.extend(found)
            dedup.caches.append(state)
    return result


def _from_group_index(
    md: "ModuleType", state: "DirCache", group: object, name: object, wanted: "Callable[[str, str], bool]",
    dedup: "Dedup", cls: type,
) -> "list[Any]":
    """The entry points of one cached directory that entry_points(**params) would collect."""
    make = md.EntryPoint
    found = []
    dists: "dict[int, Any]" = {}
    for d, g, n, v in group_entries(state, group, name, wanted, dedup):
        dist = dists.get(d)
        if dist is None:
            dist = dists[d] = cls(state, d)
        found.append(make(name=n, value=v, group=g)._for(dist))
    return found
