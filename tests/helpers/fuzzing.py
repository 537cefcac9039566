"""Hypothesis strategies for fuzzing the parsers that take outside input (see the *_fuzz tests)."""

from __future__ import annotations

from hypothesis import strategies as st

# text that looks like the grammars more often than uniform text would
grammar_text = st.one_of(
    st.text(max_size=80),
    st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789._-/:@+=,;\"<> \t", max_size=80),
    st.from_regex(r"(docker://|oci:|oci-archive:|docker-archive:)?[a-z0-9.:/_@-]{0,60}", fullmatch=True),
)
numbers_text = st.one_of(st.text(max_size=30), st.from_regex(r"[0-9²٣ -]{0,30}", fullmatch=True),
                         st.integers(min_value=-10, max_value=10 ** 40).map(str))
json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=20),
                           lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner,
                                                                                       max_size=5),
                           max_leaves=20)
junk = st.none() | st.booleans() | st.integers(min_value=-5, max_value=10 ** 30) | st.floats() \
    | st.text(max_size=12) | st.lists(st.text(max_size=6) | st.integers(), max_size=3)


def shaped(schema):
    """Documents of ``schema``'s shape (key -> sub-schema, ``None`` for a leaf; a list holds one
    item schema), each value either of the right shape or junk, keys optional."""
    if schema is None:
        return junk
    if isinstance(schema, list):
        return junk | st.lists(shaped(schema[0]), max_size=3)
    return junk | st.fixed_dictionaries({}, optional={k: shaped(v) for k, v in schema.items()})
