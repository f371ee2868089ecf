"""Build a cache record for one directory: what a plain importlib.metadata scan of it would yield.

Every value recorded here must be exactly what ``importlib.metadata`` would compute for the same
files, on every supported Python. Where that is not certain (unreadable or undecodable files,
malformed metadata, a field that is missing), the value is recorded as unknown (``None``) and the
distribution object computes it the plain way at query time, raising the same exception at the
same call. This module imports only the standard library and never ``importlib.metadata``, so that
the application API (epfinder._app) can rebuild a cache without it. What it shares with the start-up
rescan of the hook table (name normalization, lookup order, sealed entries, entry_points.txt) is
in epfinder._startup_entries and _epfinder_boot, written once.
"""

from __future__ import annotations

import os

from _epfinder_boot import dir_signature, normalize, stamp

from . import _startup_entries as entry_points_txt
# is_metadata_child, list_metadata, lookup_key and normalize are also this module's to its callers.
from ._startup_entries import SIDE_INPUTS, is_metadata_child, is_sealed, list_metadata, lookup_key  # noqa: F401
from ._startup_entries import normalizes_alike  # noqa: F401
from ._startup_entries import header_values

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, TypedDict

    # One ``[filename, stamp or None]`` pair per file read (lists, as they are stored in JSON).
    Stamps = list[list[Any]]

    class Record(TypedDict):
        """What read_distribution() returns; see docs/cache-format.md for the fields."""

        entry: str
        name: str | None
        version: str | None
        normalized: str | None
        entry_points: list[tuple[str, str, str]] | None
        stamps: Stamps
        watch: bool
        invalid: bool

# The exceptions PathDistribution.read_text swallows (returning None); any other error propagates
# to the caller of importlib.metadata, so the scanner records such a value as unknown instead.
_ABSENT = (FileNotFoundError, IsADirectoryError, KeyError, NotADirectoryError, PermissionError)

def name_from_stem(stem: str) -> str | None:
    """PathDistribution._name_from_stem."""
    filename, ext = os.path.splitext(stem)
    if ext not in (".dist-info", ".egg-info"):
        return None
    return filename.partition("-")[0]


class Unknown(Exception):
    """A value that only the plain code path can compute faithfully."""


def _read_text(entry: str, filename: str, stamps: Stamps) -> str | None:
    """PathDistribution.read_text: None when absent, Unknown for any error it would raise."""
    # pathlib's joinpath('') is the entry itself, where os.path.join would add a slash
    path = os.path.join(entry, filename) if filename else entry
    try:
        with open(path, encoding="utf-8") as f:
            stamps.append([filename, stamp(os.fstat(f.fileno()))])
            return f.read()
    except _ABSENT:
        stamps.append([filename, None])
        return None
    except Exception as exc:  # UnicodeDecodeError, EIO, ...: plain raises it, so do not cache
        raise Unknown from exc


def parse_entry_points(text: str) -> list[tuple[str, str, str]]:
    """(group, name, value) in file order, as importlib.metadata parses entry_points.txt.

    Raises Unknown where Pair.parse would raise (a line without '=').
    """
    try:
        return entry_points_txt.parse(text)
    except entry_points_txt.MalformedLine as exc:
        raise Unknown(exc.line) from exc


def read_distribution(root: str, child: str, install_location: bool = False) -> Record:
    """The record of one metadata entry; see docs/cache-format.md for the fields.

    ``watch`` in the record says that the entry's stamps must be checked at every query: always
    outside an install location (source trees, ``PYTHONPATH`` entries, the current directory, which
    hold few distributions and are edited in place by setuptools and by people), and inside one
    for every entry that is not sealed (see is_sealed).
    """
    path = os.path.join(root, child)
    stamps: Stamps = []
    try:
        stamps.append([".", stamp(os.stat(path))])
    except OSError:
        stamps.append([".", None])
    watch = not (install_location and is_sealed(path, child))

    name = version = None
    try:
        text = (
            _read_text(path, "METADATA", stamps)
            or _read_text(path, "PKG-INFO", stamps)
            or _read_text(path, "", stamps)
        )
        if text is not None:
            values = header_values(text, ("name", "version"))
            name = values.get("name")
            version = values.get("version")
    except Unknown:
        pass

    stem_name = name_from_stem(child)
    normalized = normalize(stem_name) if stem_name else None
    if not normalized and name is not None:
        normalized = normalize(name)  # Distribution._normalized_name, from the metadata
    elif not normalized:
        normalized = None

    try:
        eps = parse_entry_points(_read_text(path, "entry_points.txt", stamps) or "")
    except Unknown:
        eps = None
    if watch:
        for filename in SIDE_INPUTS:
            try:
                stamps.append([filename, stamp(os.stat(os.path.join(path, filename)))])
            except OSError:
                pass  # creating it changes the entry's own stamp, which is watched
    return {
        "entry": child,
        "name": name,
        "version": version,
        "normalized": normalized,
        "entry_points": eps,
        "stamps": stamps,
        "watch": watch,
        # A value the validating libraries (importlib_metadata 8.7+, 3.15) refuse: they are then
        # answered by the plain code, which raises as they do.
        "invalid": eps is not None and not all(entry_points_txt.is_valid_value(v) for _g, _n, v in eps),
    }


def scan(
    root: str, install_location: bool = False
) -> tuple[list[int], list[int], dict[str, list[int]], list[Record]]:
    """Everything the cache records for ``root``, a directory that is neither ``''`` nor an egg.

    Returns (signature before, signature after, lookup index, records in search order).
    Raises OSError when the directory cannot be listed.
    """
    before = dir_signature(os.stat(root))
    ordered, index = list_metadata(root)
    records = [read_distribution(root, child, install_location) for child in ordered]
    after = dir_signature(os.stat(root))
    return before, after, index, records
