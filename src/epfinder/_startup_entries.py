"""A site directory's metadata entries as importlib.metadata sees them, read without ``re``.

Shared by the query caches' scanner (epfinder._scan) and by the start-up rescan of the hook table
(epfinder._startup_table), which runs at an interpreter start after a site directory changed and
so may load nothing that start-up has not loaded: this module imports only ``os`` and
_epfinder_boot (for ``normalize``). It holds the one implementation of each of

- the order in which importlib.metadata's Lookup yields the ``*.dist-info``/``*.egg-info`` children;
- which entries can change without their directory's listing changing (written down for
  installers in docs/cache-format.md, "Freshness");
- ``entry_points.txt`` parsed exactly as importlib.metadata does (Sectioned.section_pairs,
  Pair.parse), and the check of a value against ``EntryPoint.pattern``;
- the METADATA header reader.
"""

import os

from _epfinder_boot import normalize

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence  # noqa: F401  (type comments)

# --- lookup order -------------------------------------------------------------------------------


def is_metadata_child(child):
    # type: (str) -> bool
    return child.lower().endswith((".dist-info", ".egg-info"))


def normalize_lowered_first(name):
    # type: (str) -> str
    """Prepared.normalize of Python 3.15, which lowers the case before it replaces separators."""
    value = name.lower().replace("-", "_").replace(".", "_")
    while "__" in value:
        value = value.replace("__", "_")
    return value


def normalizes_alike(name):
    # type: (str) -> bool
    """Whether both normalizations agree: they differ only where lowering depends on the
    neighbours (a final capital sigma next to a separator), which no name on PyPI has; a
    directory holding such a name is left to the plain code, whichever library asks."""
    return "\u03a3" not in name or normalize(name) == normalize_lowered_first(name)


def lookup_key(child):
    # type: (str) -> str
    """The key under which importlib.metadata's Lookup files a ``*.dist-info``/``*.egg-info`` child."""
    return normalize(child.lower().rpartition(".")[0].partition("-")[0])


def list_metadata(root):
    # type: (str) -> tuple[list[str], dict[str, list[int]]]
    """The metadata children of ``root`` in the order importlib.metadata's Lookup yields them.

    Lookup files children by key in first-seen order and yields key by key, so two entries of
    one project are adjacent even when the listing put something between them. Returns (children
    in that order, {key: [first position, count]}).
    """
    groups = {}  # type: dict[str, list[str]]
    for child in os.listdir(root):
        if is_metadata_child(child):
            groups.setdefault(lookup_key(child), []).append(child)
    ordered = []  # type: list[str]
    index = {}
    for key, children in groups.items():
        index[key] = [len(ordered), len(children)]
        ordered.extend(children)
    return ordered, index


# --- sealed or watched --------------------------------------------------------------------------

# Files that packages_distributions() may read (epfinder._packages): a watched entry records their
# stamps too, so that an in-place rewrite of any of them is seen.
SIDE_INPUTS = ("top_level.txt", "RECORD", "installed-files.txt", "SOURCES.txt")


def is_sealed(entry_path, child):
    # type: (str, str) -> bool
    """Whether an installer finished this entry and will only ever replace it whole.

    pip, uv and pypa/installer write ``RECORD`` last, and replace a distribution's ``*.dist-info``
    as a whole (a new directory, which changes the site directory's own timestamps). So a
    ``*.dist-info`` that holds ``RECORD`` is complete, and its contents change only together with
    the directory listing. Anything else (an ``*.egg-info`` that setuptools rewrites in place, a
    ``*.dist-info`` still being written, or one whose ``RECORD`` Debian stripped) may change inside.

    Ask before reading the entry's files: a ``RECORD`` that appears later proves nothing about
    what was read before it.
    """
    if not child.endswith(".dist-info"):
        return False
    try:
        os.stat(os.path.join(entry_path, "RECORD"))
    except OSError:
        return False
    return True


# --- entry_points.txt ---------------------------------------------------------------------------


# --- METADATA headers ---------------------------------------------------------------------------


def header_values(text, fields):
    # type: (str, Sequence[str]) -> dict[str, str]
    """The first value of each of ``fields`` (lower-case names) as ``email``'s compat32 parser gives it.

    A fast path without ``re`` for the usual METADATA shape: a line is a plain header when its
    field name is printable ASCII without spaces (email.feedparser.headerRE, without the "From "
    and continuation alternatives). Anything else before every field is found (a CR, a folded
    value, any other line) goes to the email parser, so that the answer is always that of
    ``email.message_from_string(text)[field]``.
    """
    if "\r" in text:  # never after universal newlines, but email would split there too
        return _header_values_by_email(text, fields)
    found = {}  # type: dict[str, str]
    lines = text.split("\n")
    for i, line in enumerate(lines):
        if len(found) == len(fields):
            return found
        key, sep, value = line.partition(":")
        if not (sep and key and key.isascii() and key.isprintable()) or " " in key:
            return _header_values_by_email(text, fields)
        key = key.lower()
        if key in fields and key not in found:
            following = lines[i + 1] if i + 1 < len(lines) else ""
            if following[:1] in (" ", "\t"):  # folded value: let email do it
                return _header_values_by_email(text, fields)
            found[key] = value.lstrip(" \t")
    return _header_values_by_email(text, fields)


def _header_values_by_email(text, fields):
    # type: (str, Sequence[str]) -> dict[str, str]
    # Deferred: the email package costs milliseconds to import and most files never need it.
    import email

    message = email.message_from_string(text)
    found = {}
    for field in fields:
        value = message.get(field)
        # importlib.metadata re-indents values that span lines (_adapters.Message), differently
        # across versions; those are left to it.
        if type(value) is str and "\n" not in value:
            found[field] = value
    return found


# --- entry_points.txt ---------------------------------------------------------------------------


class MalformedLine(ValueError):
    """A line in a section that has no '=', where importlib.metadata's Pair.parse raises."""

    def __init__(self, number, line):
        # type: (int, str) -> None
        super().__init__(f"line {number} has no '=': {line!r}")
        self.number, self.line = number, line


def parse(text):
    # type: (str) -> list[tuple[str, str, str]]
    """(group, name, value) for each entry point, in file order.

    Lines are stripped; empty lines and lines starting with '#' are skipped; a line between
    brackets starts a group (``line.strip("[]")``); lines before the first group are ignored;
    ``name = value`` is split at the first '=' and both sides stripped.
    """
    result = []
    group = None
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("[") and line.endswith("]"):
            group = line.strip("[]")
            continue
        if group is None:
            continue
        name, sep, value = line.partition("=")
        if not sep:
            raise MalformedLine(number, line)
        result.append((group, name.strip(), value.strip()))
    return result


# EntryPoint.pattern's source, for checking that a library uses the pattern is_valid_value() follows.
PATTERN = r"(?P<module>[\w.]+)\s*(:\s*(?P<attr>[\w.]+)\s*)?((?P<extras>\[.*\])\s*)?$"


def _word(c):
    # type: (str) -> bool
    # [\w.] of a str pattern: str.isalnum() or '_' (sre's SRE_UNI_IS_WORD), or '.'.
    return c == "_" or c == "." or c.isalnum()


def is_valid_value(value):
    # type: (str) -> bool
    """Whether ``EntryPoint.pattern`` matches ``value``, without ``re`` (start-up never loads it).

    The pattern is ``(?P<module>[\\w.]+)\\s*(:\\s*(?P<attr>[\\w.]+)\\s*)?((?P<extras>\\[.*\\])\\s*)?$``.
    importlib_metadata 8.7+ and Python 3.15 refuse to create an EntryPoint whose value it does not
    match, so their entry_points() raises ValueError when any distribution holds one.
    """
    n = len(value)
    i = 0
    while i < n and _word(value[i]):
        i += 1
    if i == 0:
        return False
    while i < n and value[i].isspace():
        i += 1
    if i < n and value[i] == ":":
        j = i + 1
        while j < n and value[j].isspace():
            j += 1
        start = j
        while j < n and _word(value[j]):
            j += 1
        if j > start:  # else the optional group does not match, and ':' is left over
            i = j
            while i < n and value[i].isspace():
                i += 1
    if i < n and value[i] == "[":
        # \[.*\]\s*$: the last character that is not whitespace closes it; '.' stops at a newline.
        end = len(value.rstrip()) - 1
        return end > i and value[end] == "]" and "\n" not in value[i:end]
    return i == n or value[i:] == "\n"
