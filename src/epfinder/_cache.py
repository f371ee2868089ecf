"""The cache file of one directory: format, location, freshness, and atomic read and write.

The format is specified in docs/cache-format.md. In short: ASCII JSON Lines, a header line that
gives each following line's offset, length and crc32, then one line per table and per entry-point
group, so that a query checks and parses only the lines it needs (a group query reads the header
and that group's line, whatever the number of distributions).
"""

import json
import os
import sys
import time
import zlib

from . import _scan
from .errors import CacheError

FORMAT = "epfinder-cache"
VERSION = 1
SUBDIR = ".epfinder-cache"
FILENAME = "v1.jsonl"

# Used when no reference timestamp can be taken on the directory's own filesystem: a cache is
# only trusted when everything it depends on is older than this, which covers FAT's 2 s steps.
WALL_CLOCK_MARGIN_NS = 3_000_000_000

_dumps = json.JSONEncoder(ensure_ascii=True, sort_keys=True, separators=(",", ":")).encode
_TABLES = ("entry", "name", "version", "entry_points", "normalized", "index", "stamps")
# A real header is about 40 bytes per entry-point group; a file without a newline in this many
# bytes is not a cache, and must not be read whole.
_MAX_HEADER = 32 << 20


def stamps_digest(stamps):
    """One number for the stat results of a distribution's metadata files (strict mode)."""
    return zlib.crc32(_dumps(stamps).encode("ascii"))


def encode(path, signature, index, records):
    """The bytes of the cache file for ``path`` (see docs/cache-format.md)."""
    groups = {}
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
    tables = {
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
    }
    body = []
    offset = 0

    def add(value):
        nonlocal offset
        line = _dumps(value).encode("ascii")
        body.append(line + b"\n")
        span = [offset, len(line), zlib.crc32(line)]
        offset += len(line) + 1
        return span

    table_spans = {name: add(tables[name]) for name in _TABLES}
    group_spans = {g: add(groups[g]) for g in sorted(groups)}
    header = {
        "format": FORMAT,
        "version": VERSION,
        "path": path,
        "signature": signature,
        "count": len(records),
        "fast": None not in normalized and all(r["entry_points"] is not None for r in records),
        "shadowed": shadowed,
        "tables": table_spans,
        "groups": group_spans,
    }
    return _dumps(header).encode("ascii") + b"\n" + b"".join(body)


class DirCache:
    """A parsed cache file. Each table is read, checked and decoded on first use.

    ``source`` is the whole file as bytes, or an open descriptor of it. A descriptor stays open
    for the life of the object and lines are read from it with pread: a group query then reads
    the header and one line, not the whole file, and since writers replace the file by rename,
    the descriptor keeps seeing the version whose header was checked.
    """

    __slots__ = ("path", "signature", "count", "groups", "shadowed", "fast", "trusted",
                 "_data", "_fd", "_body", "_tables", "_parsed", "_dist_eps", "_normset")

    def __init__(self, path, source):
        self._fd = None
        if isinstance(source, int):
            data = os.pread(source, 65536, 0)
            # A short read is the whole file, and saves the fstat a large one needs.
            size = len(data) if len(data) < 65536 else os.fstat(source).st_size
            while b"\n" not in data and len(data) < size:
                if len(data) > _MAX_HEADER:
                    raise CacheError("no header line in the first 32 MiB")
                data += os.pread(source, 1 << 20, len(data))
            end = data.find(b"\n")
        else:
            data = source
            size = len(data)
            end = data.find(b"\n")
        if end < 0:
            raise CacheError("no header line")
        try:
            header = json.loads(data[:end])
        except ValueError:
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
        body = size - end - 1
        if (
            type(count) is not int
            or not isinstance(tables, dict)
            or not isinstance(groups, dict)
            or set(tables) != set(_TABLES)
            or not all(_valid_span(s, body) for s in tables.values())
            or not all(_valid_span(s, body) for s in groups.values())
            or not _is_int_list(signature, 4)
            or not _is_int_list(shadowed)
        ):
            raise CacheError("malformed header")
        self.path = path
        self.signature = signature
        self.count = count
        self.groups = groups
        self.shadowed = frozenset(shadowed)
        self.fast = header.get("fast") is True
        self.trusted = True
        if isinstance(source, int):
            self._data = None
            self._fd = source
        else:
            self._data = data
        self._body = end + 1
        self._tables = tables
        self._parsed = {}
        self._dist_eps = None
        self._normset = None

    def __del__(self):
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def _decode(self, span, what, valid):
        start = self._body + span[0]
        if self._fd is not None:
            line = os.pread(self._fd, span[1], start)
        else:
            line = self._data[start : start + span[1]]
        if zlib.crc32(line) != span[2]:
            raise CacheError(f"checksum mismatch in {what}")
        try:
            value = json.loads(line)
        except ValueError:
            raise CacheError(f"{what} is not JSON") from None
        if not valid(value, self.count):
            raise CacheError(f"{what} has the wrong shape")
        return value

    def _table(self, name, valid):
        try:
            return self._parsed[name]
        except KeyError:
            value = self._parsed[name] = self._decode(self._tables[name], name, valid)
            return value

    def entry(self, i):
        return self._table("entry", _valid_strings)[i]

    def name(self, i):
        return self._table("name", _valid_optional_strings)[i]

    def version(self, i):
        return self._table("version", _valid_optional_strings)[i]

    def entry_points_known(self, i):
        return self._table("entry_points", _valid_flags)[i]

    def normalized(self):
        return self._table("normalized", _valid_optional_strings)

    def unnamed(self):
        """Indices of the distributions whose name is unknown (possibly without any metadata)."""
        return [i for i, name in enumerate(self._table("name", _valid_optional_strings)) if name is None]

    def normset(self):
        if self._normset is None:
            self._normset = frozenset(self.normalized())
        return self._normset

    def index_keys(self):
        return list(self._table("index", _valid_mapping))

    def lookup(self, key):
        """Indices of the distributions Lookup files under ``key``, in search order."""
        span = self._table("index", _valid_mapping).get(key)
        if span is None:
            return range(0)
        if not _is_int_list(span, 2) or not 0 <= span[0] < span[0] + span[1] <= self.count:
            raise CacheError("index entry out of range")
        return range(span[0], span[0] + span[1])

    def group(self, name):
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

    def all_entry_points(self):
        """Every entry point as (dist, seq, group, name, value), in search and file order."""
        merged = [
            (d, seq, group, name, value)
            for group in self.groups
            for d, seq, name, value in self.group(group)
        ]
        merged.sort(key=lambda e: (e[0], e[1]))
        return merged

    def entry_points_of(self, i):
        """(group, name, value) triples of distribution ``i`` in file order."""
        if self._dist_eps is None:
            by_dist = {}
            for d, _seq, group, name, value in self.all_entry_points():
                by_dist.setdefault(d, []).append((group, name, value))
            self._dist_eps = by_dist
        return self._dist_eps.get(i, ())

    def stamps_match(self):
        """strict mode: every metadata file the record was read from is unchanged."""
        stamps = self._table("stamps", _valid_stamps)
        for i, (files, digest) in enumerate(zip(stamps["files"], stamps["digest"])):
            entry = os.path.join(self.path, self.entry(i))
            current = []
            for name in files:
                path = entry if name in (".", "") else os.path.join(entry, name)
                try:
                    current.append([name, _scan.stamp(os.stat(path))])
                except OSError:
                    current.append([name, None])
            if stamps_digest(current) != digest:
                return False
        return True


_STR = {str}
_STR_OR_NONE = {str, type(None)}


def _types(values, allowed):
    # map/set run in C: this checks thousands of values in well under a millisecond.
    return type(values) is list and set(map(type, values)) <= allowed


def _valid_span(span, body):
    return _is_int_list(span, 3) and 0 <= span[0] and 0 <= span[1] and span[0] + span[1] < body


def _valid_strings(value, count):
    return type(value) is list and len(value) == count and _types(value, _STR)


def _valid_optional_strings(value, count):
    return type(value) is list and len(value) == count and _types(value, _STR_OR_NONE)


def _valid_flags(value, count):
    return type(value) is list and len(value) == count and _types(value, {bool})


def _valid_mapping(value, count):
    return type(value) is dict


def _valid_stamps(value, count):
    return (
        type(value) is dict
        and type(value.get("files")) is list
        and type(value.get("digest")) is list
        and len(value["files"]) == len(value["digest"]) == count
        and _types(value["digest"], {int})
    )


def _valid_group(value, count):
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


def _is_int_list(value, length=None):
    return (
        isinstance(value, list)
        and (length is None or len(value) == length)
        and all(type(v) is int for v in value)
    )


# --- locations --------------------------------------------------------------------------------

_site_dirs = None


def site_directories():
    """The install locations of this interpreter, where a cache may live inside the directory."""
    global _site_dirs
    if _site_dirs is None:
        found = set()
        # Deferred: site is imported at start unless -S; without it there are no site dirs.
        import sys

        site = sys.modules.get("site")
        if site is not None:
            try:
                found.update(site.getsitepackages())
            except Exception:
                pass
            if getattr(site, "ENABLE_USER_SITE", False):
                try:
                    found.add(site.getusersitepackages())
                except Exception:
                    pass
        _site_dirs = {os.path.normcase(os.path.abspath(p)) for p in found}
    return _site_dirs


_installation = None


def installation_tag():
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


def user_cache_root():
    base = os.environ.get("XDG_CACHE_HOME")
    if not base or not os.path.isabs(base):
        base = os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "epfinder", installation_tag())


def in_directory_file(path):
    return os.path.join(path, SUBDIR, FILENAME)


def per_user_file(path):
    # crc32, not hashlib (which loads OpenSSL): the header names the directory, so a collision
    # costs a rescan, never a wrong answer.
    tag = zlib.crc32(os.fsencode(path)) & 0xFFFFFFFF
    base = "".join(c if c.isalnum() or c in "-_." else "_" for c in os.path.basename(path))[:64]
    return os.path.join(user_cache_root(), f"{base}-{tag:08x}.jsonl")


def candidate_files(path):
    """Where the cache of ``path`` may be, the likelier first (a site directory keeps its own)."""
    if os.path.normcase(os.path.abspath(path)) in site_directories():
        return (in_directory_file(path), per_user_file(path))
    return (per_user_file(path), in_directory_file(path))


def caches_in_directory(path):
    """A site directory, or one opted in with ``refresh``, keeps its cache inside itself."""
    return (
        os.path.normcase(os.path.abspath(path)) in site_directories()
        or os.path.isdir(os.path.join(path, SUBDIR))
    )


def trusted_file(st, dir_uid):
    """Whether a cache file may be believed: it grants no more trust than the directory it describes.

    Not writable by everyone, and owned by root, by this user or by the directory's owner (who could
    put a .pth file there anyway). Anyone else's file is ignored and the directory scanned.
    """
    return not st.st_mode & 0o002 and st.st_uid in (0, os.getuid(), dir_uid)


def load(path, dir_uid=None):
    """The cache recorded for ``path``, or None when there is none that parses and may be trusted."""
    for file in candidate_files(path):
        try:
            fd = os.open(file, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        except OSError:
            continue
        try:
            if dir_uid is None:
                dir_uid = os.stat(path).st_uid
            if not trusted_file(os.fstat(fd), dir_uid):
                raise CacheError(f"{file} is writable by others or owned by another user")
            return DirCache(path, fd)
        except (CacheError, OSError):
            os.close(fd)
            continue
    return None


# --- building and writing ---------------------------------------------------------------------


class _Target:
    """A temporary file beside the cache file, whose birth time is the racy-check reference."""

    def __init__(self, path):
        self.fd = self.tmp = self.final = None
        # Taken before the directory is listed: anything stamped before it was seen by the scan.
        self.reference_ns = time.time_ns() - WALL_CLOCK_MARGIN_NS
        for final in self._finals(path):
            folder = os.path.dirname(final)
            tmp = os.path.join(folder, f".tmp-{os.getpid()}-{os.urandom(4).hex()}")
            try:
                try:
                    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
                except FileNotFoundError:
                    os.makedirs(folder, exist_ok=True)
                    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except OSError:
                continue
            self.fd, self.tmp, self.final = fd, tmp, final
            if final == in_directory_file(path):
                # Same filesystem, same clock: a strict "older than" on its timestamps is enough.
                self.reference_ns = _scan.timestamps(os.fstat(fd))[0]
            return

    @staticmethod
    def _finals(path):
        if caches_in_directory(path):
            yield in_directory_file(path)
        yield per_user_file(path)

    def commit(self, data):
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(self.fd, view) :]
            os.close(self.fd)
            self.fd = None
            os.replace(self.tmp, self.final)
            self.tmp = None
        finally:
            self.close()

    def close(self):
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
        if self.tmp is not None:
            try:
                os.unlink(self.tmp)
            except OSError:
                pass
            self.tmp = None


def _older_than(reference_ns, signature, records):
    """git's racy-clean rule: trust only what changed strictly before the reference time."""
    if signature[2] >= reference_ns or signature[3] >= reference_ns:
        return False
    for record in records:
        for _name, st in record["stamps"]:
            if st is not None and (st[3] >= reference_ns or st[4] >= reference_ns):
                return False
    return True


def settle_ns():
    """How long a metadata entry must be left alone before a scan of it is written down.

    EPFINDER_SETTLE, in seconds (default 3): raise it on a network filesystem whose server clock
    drifts from this machine's; 0 trusts any completed scan at once (the test suite's setting).
    """
    if not sys.flags.ignore_environment:
        try:
            return max(0, int(float(os.environ.get("EPFINDER_SETTLE", "")) * 1e9))
        except ValueError:
            pass
    return WALL_CLOCK_MARGIN_NS


def _entries_settled(limit_ns, records):
    """Whether every metadata entry read is older than ``limit_ns`` (wall clock minus a margin).

    An installer creates a ``*.dist-info`` folder (which changes the directory) and then writes
    its files one by one (which does not). A scan between the two sees a half-written
    distribution, and the directory's signature would never tell; so a scan is trusted only once
    every entry it read has been left alone for a few seconds. ``"."``, the entry's own stamp,
    moves with each file added to a folder, and its ctime with a rename into place.
    """
    for record in records:
        for name, st in record["stamps"]:
            if name == "." and st is not None and (st[3] >= limit_ns or st[4] >= limit_ns):
                return False
    return True


def discard(path):
    """Remove the cache files of ``path`` (side files included); returns the ones removed."""
    from ._packages import side_files

    removed = []
    for file in [*candidate_files(path), *side_files(path)]:
        try:
            os.unlink(file)
            removed.append(file)
        except OSError:
            pass
    return removed


def build(path, write=True):
    """Scan ``path``, write its cache where it may, and return it as a DirCache.

    ``trusted`` on the result says whether the scan may be reused later: it is False when the
    directory changed during the scan or too recently to tell a later change apart (then nothing
    is written either). Raises OSError when the directory cannot be listed.
    """
    settled_before = time.time_ns() - settle_ns()
    target = _Target(path) if write else None
    try:
        before, after, index, records = _scan.scan(path)
        reference_ns = target.reference_ns if target else time.time_ns() - WALL_CLOCK_MARGIN_NS
        data = encode(path, before, index, records)
        cache = DirCache(path, data)
        cache.trusted = (before == after and _older_than(reference_ns, before, records)
                         and _entries_settled(settled_before, records))
        if cache.trusted and target is not None and target.fd is not None:
            try:
                target.commit(data)
            except OSError:
                pass  # ENOSPC, EACCES...: the answer is right, only the next start is slower
        elif write:
            # Whatever cache file is there was found stale by the caller: the next reader must
            # scan rather than trust it.
            discard(path)
        return cache
    finally:
        if target is not None:
            target.close()
