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
