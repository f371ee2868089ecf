"""The scanner's readers agree with importlib.metadata on any input they accept."""

import email
import importlib.metadata as md
import importlib.metadata._adapters  # noqa: F401 - loaded on demand from 3.13; the test reads it
import warnings

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from epfinder import _scan, _startup_entries

# Characters that matter to the parsers: separators, brackets, comment marks, odd line breaks.
TEXT = st.text(alphabet=st.sampled_from(list("abAB.-_ :=[]#\t\n\x0b\x0c\x1c\x85\u2028é")) , max_size=200)
HEADER_LINES = st.lists(
    st.one_of(
        st.sampled_from(["Name: pkg", "name:x", "NAME:  spaced  ", "Version: 1.0", "Version:",
                         "version: 2 ", "Summary: s", "  folded", "\tfolded", "", "From x",
                         ":novalue", "no colon here", "Name : bad", "Metadata-Version: 2.1"]),
        TEXT.filter(lambda t: "\n" not in t),
    ),
    max_size=8,
)


def plain_header(text, field):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        message = md._adapters.Message(email.message_from_string(text))
        return message[field]


@settings(max_examples=400)
@given(HEADER_LINES, st.booleans())
@example(["Name: pkg", "Version: 1.0", "  continued"], True)
@example(["From me", "Name: pkg", "Version: 1"], False)
def test_header_values_match_importlib_metadata(lines, trailing_newline):
    text = "\n".join(lines) + ("\n" if trailing_newline else "")
    found = _startup_entries.header_values(text, ("name", "version"))
    for field in ("name", "version"):
        if field in found:  # a value epfinder would cache
            assert found[field] == plain_header(text, field.capitalize())


def test_header_fast_path_covers_ordinary_metadata():
    text = "Metadata-Version: 2.1\nName: pkg\nVersion: 1.0\nSummary: x\n\nLong\ndescription: yes\n"
    assert _startup_entries.header_values(text, ("name", "version")) == {"name": "pkg", "version": "1.0"}


@settings(max_examples=400)
@given(TEXT)
@example("[g]\na = b\nno equals\n")
@example("x = y\n[g]\n a = b = c \n[g2]\n#c\n[ g ]\nk=v")
def test_entry_points_parse_matches_importlib_metadata(text):
    try:
        plain = [(ep.group, ep.name, ep.value) for ep in md.EntryPoints._from_text(text)]
    except Exception as exc:
        plain = type(exc)
    try:
        ours = as_entry_points(_scan.parse_entry_points(text))
    except _scan.Unknown as unknown:
        # A line without '=': left to importlib.metadata, whose Pair.parse raises TypeError there,
        # unless it rejected an earlier value first (3.15 validates values in file order).
        before = "\n".join(text.splitlines()[: unknown.__cause__.number - 1])
        ours = as_entry_points(_scan.parse_entry_points(before))
        ours = TypeError if isinstance(ours, list) else ours
    assert ours == plain


def as_entry_points(triples):
    """The triples made into the running library's own EntryPoint objects, as epfinder serves
    cached entry points: the library's answer, or the type of the exception it raises (3.15
    validates each value on creation and raises ValueError; earlier versions accept any value)."""
    try:
        return [(ep.group, ep.name, ep.value) for ep in
                (md.EntryPoint(name=name, value=value, group=group) for group, name, value in triples)]
    except Exception as exc:
        return type(exc)


@given(st.text(alphabet=st.sampled_from(list("aA.-_9é")), min_size=1, max_size=20))
def test_lookup_key_and_stem_match_importlib_metadata(name):
    child = f"{name}-1.0.dist-info"
    assert _scan.normalize(name) == md.Prepared.normalize(name)
    assert _scan.name_from_stem(child) == md.PathDistribution._name_from_stem(child)


@settings(max_examples=2000, deadline=None)
@given(st.text(alphabet=st.sampled_from("ab_.:[] \t\n\x0b\x85\u00a0\u2028é9]-=#"), max_size=12) | st.text(max_size=12))
def test_entry_point_values_are_judged_as_entry_point_pattern_judges_them(value):
    import re

    from epfinder import _startup_entries

    assert _startup_entries.is_valid_value(value) == bool(re.compile(_startup_entries.PATTERN).match(value))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(min_size=1, max_size=10), min_size=1, max_size=25, unique=True), st.text(max_size=10))
@example(["a", 'x"a', "x,\"a", "b\\a", "é"], "a")
@example(["foo", "xfoo", "foox"], "oo")
def test_one_key_of_the_cache_index_is_read_as_the_whole_index_gives_it(keys, other):
    # version() reads one key of the index without decoding the rest: for every key, present or
    # not, it must get what decoding the whole index gives.
    from epfinder import _cache

    records = [{"entry": f"d{i}.dist-info", "name": key, "version": "1", "normalized": key, "entry_points": [],
                "stamps": [], "watch": False, "invalid": False} for i, key in enumerate(keys)]
    index = {key: [i, 1] for i, key in enumerate(keys)}
    data = _cache.encode("/some/dir", [1, 2, 3, 4], index, records)
    for key in [*keys, other]:
        one_key = _cache.DirCache("/some/dir", data).lookup(key)
        whole = _cache.DirCache("/some/dir", data)
        whole.index_keys()  # decoded whole: lookup() then reads the decoded index
        assert one_key == whole.lookup(key) == (range(keys.index(key), keys.index(key) + 1) if key in keys else range(0))


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=8), inner, max_size=5),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(JSON_VALUES)
def test_cache_lines_decode_as_json_loads_decodes_them(value):
    # The cache reader decodes its lines with json's C scanner, without importing json.
    import json

    from epfinder import _cache

    line = _cache._dumps(value).encode("ascii")
    assert _cache._loads(line) == json.loads(line) == value


@pytest.mark.parametrize("line", [b"", b" [1]", b"[1] ", b"[1,", b"[1]x", b"NaN", '["\xc3\xa9"]'.encode("latin-1"),
                                  b'{"a":}'])
def test_a_cache_line_that_is_not_the_writers_json_is_refused(line):
    from epfinder import _cache

    with pytest.raises(ValueError):
        _cache._loads(line)


STAMP_NAMES = st.sampled_from([".", "METADATA", "PKG-INFO", "entry_points.txt", "RECORD", "top_level.txt"]) | st.text(max_size=6)
STAMPS = st.lists(st.tuples(STAMP_NAMES, st.none() | st.lists(st.integers(-1, 2**64) | st.booleans(), max_size=5)),
                  max_size=6).map(lambda pairs: [list(pair) for pair in pairs])


@settings(max_examples=300, deadline=None)
@given(STAMPS)
def test_the_stamps_digest_is_the_crc_of_their_json_written_without_json(stamps):
    # A watched distribution's stamps are checked at every query; their digest is written without
    # json (5 M instructions to load), and must stay the crc32 of the cache writer's JSON of them.
    import zlib

    from epfinder import _cache

    assert _cache.stamps_digest(stamps) == zlib.crc32(_cache._dumps(stamps).encode("ascii"))
