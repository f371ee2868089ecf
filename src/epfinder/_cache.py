"""The cache file of one directory: format, location, freshness, and atomic read and write.

The format is specified in docs/cache-format.md. In short: UTF-8 JSON Lines, a header line, then
one line per table, so that a query parses only the lines it needs (a group query reads the header
and that group's line, whatever the number of distributions).
"""

import json
import os
import time
import zlib

from . import _scan
from .errors import CacheError

FORMAT = "epfinder-cache"
VERSION = 1
SUBDIR = ".epfinder-cache"
FILENAME = "v1.jsonl"

# Lines after the header, in file order; the group lines follow them.
_DISTS, _NORMALIZED, _INDEX, _STAMPS = 1, 2, 3, 4
_FIRST_GROUP = 5

# Used when no reference timestamp can be taken on the directory's own filesystem: a cache is
# only trusted when everything it depends on is older than this, which covers FAT's 2 s steps.
WALL_CLOCK_MARGIN_NS = 3_000_000_000

_dumps = json.JSONEncoder(ensure_ascii=True, sort_keys=True, separators=(",", ":")).encode


def encode(path, signature, index, records):
    """The text of the cache file for ``path`` (see docs/cache-format.md)."""
    groups = {}
    for i, record in enumerate(records):
        for seq, (group, name, value) in enumerate(record["entry_points"] or ()):
            groups.setdefault(group, []).append([i, seq, name, value])
    names = sorted(groups)
    normalized = [r["normalized"] for r in records]
    shadowed = []
    seen = set()
    for i, n in enumerate(normalized):
        if n in seen:
            shadowed.append(i)
        seen.add(n)
    fast = all(n is not None for n in normalized) and all(
        r["entry_points"] is not None for r in records
    )
    body = [
        _dumps([[r["entry"], r["name"], r["version"], r["entry_points"] is not None] for r in records]),
        _dumps(normalized),
        _dumps(index),
        _dumps([r["stamps"] for r in records]),
    ]
    body.extend(_dumps(groups[g]) for g in names)
    body_text = "\n".join(body) + "\n"
    header = {
        "format": FORMAT,
        "version": VERSION,
        "path": path,
        "signature": signature,
        "count": len(records),
        "groups": names,
        "shadowed": shadowed,
        "fast": fast,
        "crc32": zlib.crc32(body_text.encode("utf-8")),
    }
    return _dumps(header) + "\n" + body_text


class DirCache:
    """A parsed cache file. Lines are decoded on first use and checked for shape then."""

    __slots__ = ("path", "signature", "count", "groups", "shadowed", "fast", "trusted",
                 "_lines", "_parsed", "_dist_eps", "_normset")

    def __init__(self, path, text):
        lines = text.split("\n")
        try:
            header = json.loads(lines[0])
        except ValueError:
            raise CacheError("the header is not JSON") from None
        if not isinstance(header, dict) or header.get("format") != FORMAT:
            raise CacheError("not an epfinder cache")
        if header.get("version") != VERSION:
            raise CacheError(f"format version {header.get('version')!r}, expected {VERSION}")
        if header.get("path") != path:
            raise CacheError(f"written for {header.get('path')!r}")
        groups = header.get("groups")
        count = header.get("count")
        if (
            not isinstance(groups, list)
            or not all(type(g) is str for g in groups)
            or type(count) is not int
            or len(lines) != _FIRST_GROUP + len(groups) + 1
            or lines[-1] != ""
        ):
            raise CacheError("truncated or malformed")
        body = text[len(lines[0]) + 1 :]
        if header.get("crc32") != zlib.crc32(body.encode("utf-8", "surrogatepass")):
            raise CacheError("checksum mismatch")
        signature = header.get("signature")
        shadowed = header.get("shadowed")
        if not _is_int_list(signature, 4) or not _is_int_list(shadowed):
            raise CacheError("malformed header")
        self.path = path
        self.signature = signature
        self.count = count
        self.groups = {g: _FIRST_GROUP + i for i, g in enumerate(groups)}
        self.shadowed = frozenset(shadowed)
        self.fast = header.get("fast") is True
        self.trusted = True
        self._lines = lines
        self._parsed = {}
        self._dist_eps = None
        self._normset = None

    def _line(self, number, valid):
        try:
            return self._parsed[number]
        except KeyError:
            pass
        try:
            value = json.loads(self._lines[number])
        except ValueError:
            raise CacheError(f"line {number + 1} is not JSON") from None
        if not valid(value, self.count):
            raise CacheError(f"line {number + 1} has the wrong shape")
        self._parsed[number] = value
        return value

    def dist(self, i):
        """[entry, name, version, entry points known]."""
        return self._line(_DISTS, _valid_dists)[i]

    def normalized(self):
        return self._line(_NORMALIZED, _valid_normalized)

    def normset(self):
        if self._normset is None:
            self._normset = frozenset(self.normalized())
        return self._normset

    def lookup(self, key):
        """Indices of the distributions Lookup files under ``key``, in search order."""
        span = self._line(_INDEX, _valid_index).get(key)
        if span is None:
            return range(0)
        return range(span[0], span[0] + span[1])

    def stamps(self):
        return self._line(_STAMPS, _valid_stamps)

    def group(self, name):
        """[[dist index, position in its entry_points.txt, name, value], ...] in search order."""
        number = self.groups.get(name)
        if number is None:
            return []
        return self._line(number, _valid_group)

    def all_entry_points(self):
        """Every entry point as [dist, seq, group, name, value], in search and file order."""
        merged = [
            [d, seq, group, name, value]
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
        for i, files in enumerate(self.stamps()):
            entry = os.path.join(self.path, self.dist(i)[0])
            for name, recorded in files:
                path = entry if name == "." or name == "" else os.path.join(entry, name)
                try:
                    current = _scan.stamp(os.stat(path))
                except OSError:
                    current = None
                if current != recorded:
                    return False
        return True


def _valid_dists(value, count):
    return (
        type(value) is list
        and len(value) == count
        and all(
            type(d) is list
            and len(d) == 4
            and type(d[0]) is str
            and (d[1] is None or type(d[1]) is str)
            and (d[2] is None or type(d[2]) is str)
            and type(d[3]) is bool
            for d in value
        )
    )


def _valid_normalized(value, count):
    return (
        type(value) is list
        and len(value) == count
        and all(n is None or type(n) is str for n in value)
    )


def _valid_index(value, count):
    return type(value) is dict and all(
        _is_int_list(span, 2) and 0 <= span[0] and 0 < span[1] and span[0] + span[1] <= count
        for span in value.values()
    )


def _valid_stamps(value, count):
    return type(value) is list and len(value) == count


def _valid_group(value, count):
    return type(value) is list and all(
        type(e) is list
        and len(e) == 4
        and type(e[0]) is int
        and 0 <= e[0] < count
        and type(e[1]) is int
        and type(e[2]) is str
        and type(e[3]) is str
        for e in value
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


def user_cache_root():
    base = os.environ.get("XDG_CACHE_HOME")
    if not base or not os.path.isabs(base):
        base = os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "epfinder")


def in_directory_file(path):
    return os.path.join(path, SUBDIR, FILENAME)


def per_user_file(path):
    # Deferred: hashlib is only needed for directories that hold no cache of their own.
    import hashlib

    digest = hashlib.sha256(os.fsencode(path)).hexdigest()[:32]
    return os.path.join(user_cache_root(), digest + ".jsonl")


def candidate_files(path):
    """Where the cache of ``path`` may be, in the order they are read."""
    return (in_directory_file(path), per_user_file(path))


def caches_in_directory(path):
    """A site directory, or one opted in with ``refresh``, keeps its cache inside itself."""
    return (
        os.path.normcase(os.path.abspath(path)) in site_directories()
        or os.path.isdir(os.path.join(path, SUBDIR))
    )


def load(path):
    """The cache recorded for ``path``, or None when there is none that parses."""
    for file in candidate_files(path):
        try:
            with open(file, encoding="utf-8", errors="surrogateescape") as f:
                text = f.read()
        except OSError:
            continue
        try:
            return DirCache(path, text)
        except CacheError:
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
                self.reference_ns = os.fstat(fd).st_mtime_ns
            return

    @staticmethod
    def _finals(path):
        if caches_in_directory(path):
            yield in_directory_file(path)
        yield per_user_file(path)

    def commit(self, text):
        try:
            data = text.encode("utf-8", "surrogatepass")
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


def build(path, write=True):
    """Scan ``path``, write its cache where it may, and return it as a DirCache.

    ``trusted`` on the result says whether the scan may be reused later: it is False when the
    directory changed during the scan or too recently to tell a later change apart (then nothing
    is written either). Raises OSError when the directory cannot be listed.
    """
    target = _Target(path) if write else None
    try:
        before, after, index, records = _scan.scan(path)
        reference_ns = target.reference_ns if target else time.time_ns() - WALL_CLOCK_MARGIN_NS
        text = encode(path, before, index, records)
        cache = DirCache(path, text)
        cache.trusted = before == after and _older_than(reference_ns, before, records)
        if cache.trusted and target is not None and target.fd is not None:
            try:
                target.commit(text)
            except OSError:
                pass  # ENOSPC, EACCES...: the answer is right, only the next start is slower
        return cache
    finally:
        if target is not None:
            target.close()
