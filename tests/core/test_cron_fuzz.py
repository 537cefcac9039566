"""Fuzzing ``CronSchedule``: any text parses or raises ``CronInvalid``; the field-skipping search
agrees with a minute-by-minute walk."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ocikit.core.cron import CronSchedule
from ocikit.core.errors import CronInvalid

from helpers.fuzzing import grammar_text

pytestmark = pytest.mark.fuzz

WINDOW = timedelta(days=2)


def _field(low: int, high: int, names: list[str]) -> st.SearchStrategy[str]:
    value = st.integers(low, high).map(str) | (st.sampled_from(names) if names else st.nothing())
    ranged = st.tuples(st.integers(low, high), st.integers(low, high)).map(lambda t: f"{min(t)}-{max(t)}")
    item = st.one_of(st.just("*"), value, ranged,
                     st.tuples(st.just("*") | ranged, st.integers(1, high + 1)).map(lambda t: f"{t[0]}/{t[1]}"))
    return st.lists(item, min_size=1, max_size=3).map(",".join)


expressions = st.tuples(_field(0, 59, []), _field(0, 23, []), _field(1, 31, []),
                        _field(1, 12, ["JAN", "feb", "Jun", "DEC"]), _field(0, 7, ["SUN", "mon", "Fri"])).map(" ".join)
instants = st.datetimes(min_value=datetime(1970, 1, 1), max_value=datetime(2400, 1, 1)).map(
    lambda d: d.replace(tzinfo=timezone.utc))


@given(grammar_text | st.from_regex(r"[0-9*/,A-Za-z@ -]{0,40}", fullmatch=True))
def test_cron_parse_raises_only_cron_invalid(text):
    try:
        sched = CronSchedule.parse(text)
    except CronInvalid as e:
        assert "\n" not in str(e)
        return
    assert sched.next_after(datetime(2026, 1, 1, tzinfo=timezone.utc)) > datetime(2026, 1, 1, tzinfo=timezone.utc)


@given(expressions, instants)
def test_cron_next_after_is_the_first_matching_minute(text, after):
    try:
        sched = CronSchedule.parse(text)
    except CronInvalid:
        return  # a day that never comes (31 of February, ...)
    got = sched.next_after(after)
    assert got > after and sched.matches(got)
    t = after.replace(second=0, microsecond=0) + timedelta(minutes=1)
    while t < min(got, after + WINDOW):
        assert not sched.matches(t), f"{text}: {t} matches before {got}"
        t += timedelta(minutes=1)
