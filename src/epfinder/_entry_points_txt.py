"""Parse ``entry_points.txt`` exactly as importlib.metadata does (Sectioned.section_pairs, Pair.parse).

It imports nothing, because the start-up rescan of a changed site directory
(epfinder._startup_table) uses it as well as the scanner.
"""


class MalformedLine(ValueError):
    """A line in a section that has no '=', where importlib.metadata's Pair.parse raises."""

    def __init__(self, number, line):
        super().__init__(f"line {number} has no '=': {line!r}")
        self.number, self.line = number, line


def parse(text):
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
    # [\w.] of a str pattern: str.isalnum() or '_' (sre's SRE_UNI_IS_WORD), or '.'.
    return c == "_" or c == "." or c.isalnum()


def is_valid_value(value):
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
