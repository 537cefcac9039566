"""``CronSchedule``: five-field cron expressions, their next times (UTC), and one-line errors."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

import pytest

from ocikit.core.cron import MACROS, CronSchedule
from ocikit.core.errors import CronInvalid, UsageError


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=timezone.utc)


# (expression, after, the next time strictly after it)
NEXT = [
    # every minute; strictly after, seconds dropped
    ("* * * * *", utc(2026, 12, 3, 15, 30), utc(2026, 12, 3, 15, 31)),
    ("* * * * *", utc(2026, 12, 3, 15, 30, 59, 999999), utc(2026, 12, 3, 15, 31)),
    ("* * * * *", utc(2026, 12, 31, 23, 59, 30), utc(2027, 1, 1, 0, 0)),
    ("30 15 * * *", utc(2026, 12, 3, 15, 30), utc(2026, 12, 4, 15, 30)),
    ("30 15 * * *", utc(2026, 12, 3, 15, 29, 59), utc(2026, 12, 3, 15, 30)),
    # month ends (UTC has no DST): 30- and 31-day months, year end
    ("0 0 31 * *", utc(2026, 1, 31, 0, 0), utc(2026, 3, 31, 0, 0)),
    ("0 0 31 * *", utc(2026, 4, 1), utc(2026, 5, 31)),
    ("0 12 30 * *", utc(2026, 1, 30, 12, 0), utc(2026, 3, 30, 12, 0)),
    ("59 23 31 12 *", utc(2026, 6, 1), utc(2026, 12, 31, 23, 59)),
    ("0 0 1 * *", utc(2026, 12, 31, 23, 59), utc(2027, 1, 1)),
    # leap years: Feb 29 only in them (2100 is not one; 2000 was)
    ("0 0 29 2 *", utc(2026, 12, 3), utc(2028, 2, 29)),
    ("0 0 29 2 *", utc(2028, 2, 29, 0, 0), utc(2032, 2, 29)),
    ("0 0 29 2 *", utc(2096, 3, 1), utc(2104, 2, 29)),
    ("0 0 29 2 *", utc(1999, 1, 1), utc(2000, 2, 29)),
    ("0 0 28-31 2 *", utc(2027, 2, 28, 0, 0), utc(2028, 2, 28)),
    ("0 0 29,30,31 2 *", utc(2026, 1, 1), utc(2028, 2, 29)),
    # weekdays: 0 and 7 are Sunday; 2026-12-03 is a Thursday
    ("0 0 * * 0", utc(2026, 12, 3), utc(2026, 12, 6)),
    ("0 0 * * 7", utc(2026, 12, 3), utc(2026, 12, 6)),
    ("0 0 * * SUN", utc(2026, 12, 3), utc(2026, 12, 6)),
    ("0 9 * * mon-fri", utc(2026, 12, 4, 9, 0), utc(2026, 12, 7, 9, 0)),
    ("0 9 * * 5-7", utc(2026, 12, 5, 9, 0), utc(2026, 12, 6, 9, 0)),
    ("0 9 * * 6,7", utc(2026, 12, 3), utc(2026, 12, 5, 9, 0)),
    # both day fields restricted: either matches (Vixie cron)
    ("0 0 13 * FRI", utc(2026, 12, 3), utc(2026, 12, 4)),
    ("0 0 13 * FRI", utc(2026, 12, 11, 0, 0), utc(2026, 12, 13)),
    ("0 0 1 * MON", utc(2026, 12, 29), utc(2027, 1, 1)),
    ("0 0 31 2 1", utc(2026, 12, 3), utc(2027, 2, 1)),  # Feb never has a 31st, but it has Mondays
    # a field starting with * counts as unrestricted: then both must match
    ("0 0 */2 * MON", utc(2026, 12, 3), utc(2026, 12, 7)),  # Dec 7: odd and a Monday
    ("0 0 */2 * MON", utc(2026, 12, 7, 0, 0), utc(2026, 12, 21)),
    ("0 0 1 * *", utc(2026, 12, 3), utc(2027, 1, 1)),
    # steps
    ("*/15 * * * *", utc(2026, 12, 3, 15, 31), utc(2026, 12, 3, 15, 45)),
    ("*/15 * * * *", utc(2026, 12, 3, 15, 45), utc(2026, 12, 3, 16, 0)),
    ("10-40/10 * * * *", utc(2026, 12, 3, 15, 40), utc(2026, 12, 3, 16, 10)),
    ("50/5 * * * *", utc(2026, 12, 3, 15, 56), utc(2026, 12, 3, 16, 50)),
    ("0 */6 * * *", utc(2026, 12, 3, 19, 0), utc(2026, 12, 4, 0, 0)),
    ("0 0 * */3 *", utc(2026, 12, 3), utc(2027, 1, 1)),
    ("0 0 1 */5 *", utc(2026, 6, 2), utc(2026, 11, 1)),
    # lists mixing forms, months by name
    ("5,10-12,*/30 * * * *", utc(2026, 12, 3, 15, 12), utc(2026, 12, 3, 15, 30)),
    ("0 0 1 JAN,jul *", utc(2026, 2, 1), utc(2026, 7, 1)),
    ("0 0 1 Nov-Dec *", utc(2026, 12, 3), utc(2027, 11, 1)),
    # macros
    ("@hourly", utc(2026, 12, 3, 15, 0), utc(2026, 12, 3, 16, 0)),
    ("@daily", utc(2026, 12, 3, 15, 0), utc(2026, 12, 4)),
    ("@midnight", utc(2026, 12, 3, 23, 59), utc(2026, 12, 4)),
    ("@weekly", utc(2026, 12, 3), utc(2026, 12, 6)),
    ("@monthly", utc(2026, 12, 3), utc(2027, 1, 1)),
    ("@yearly", utc(2026, 12, 3), utc(2027, 1, 1)),
    ("@ANNUALLY", utc(2027, 1, 1), utc(2028, 1, 1)),
    # blanks between fields
    ("  0\t3  * *   * ", utc(2026, 12, 3, 3, 0), utc(2026, 12, 4, 3, 0)),
]


@pytest.mark.parametrize("text,after,expected", NEXT)
def test_next_after(text, after, expected):
    sched = CronSchedule.parse(text)
    got = sched.next_after(after)
    assert got == expected
    assert got.tzinfo is not None and got.utcoffset() == timedelta(0)
    assert sched.matches(got)


def test_the_dow_step_case_by_brute_force():
    """``0 0 * * */2`` is Sun, Tue, Thu, Sat: checked against a walk over every day."""
    sched = CronSchedule.parse("0 0 * * */2")
    assert sched.weekdays == frozenset({0, 2, 4, 6})
    t = utc(2026, 12, 3)
    day = t + timedelta(days=1)
    while (day.isoweekday() % 7) not in (0, 2, 4, 6):
        day += timedelta(days=1)
    assert sched.next_after(t) == day


def test_other_time_zones_and_naive_times_are_read_as_utc():
    sched = CronSchedule.parse("0 3 * * *")
    plus_two = timezone(timedelta(hours=2))
    # 04:30 at +02:00 is 02:30 UTC: the next run is 03:00 UTC the same day
    assert sched.next_after(datetime(2026, 12, 3, 4, 30, tzinfo=plus_two)) == utc(2026, 12, 3, 3, 0)
    assert sched.next_after(datetime(2026, 12, 3, 2, 30)) == utc(2026, 12, 3, 3, 0)


def test_successive_runs_step_strictly_forward():
    sched = CronSchedule.parse("*/20 1,13 * * *")
    t, seen = utc(2026, 12, 3), []
    for _ in range(7):
        t = sched.next_after(t)
        seen.append(t)
    assert seen == [utc(2026, 12, 3, h, m) for h in (1, 13) for m in (0, 20, 40)] + [utc(2026, 12, 4, 1, 0)]


def test_macros_are_their_expressions():
    for macro, expr in MACROS.items():
        a, b = CronSchedule.parse(macro), CronSchedule.parse(expr)
        assert (a.minutes, a.hours, a.days, a.months, a.weekdays) == (b.minutes, b.hours, b.days, b.months, b.weekdays)
        assert str(a) == macro


@pytest.mark.parametrize("text", ["0 0 29 2 MON", "* * * * *", "0 0 31 */2 *", "0 0 29 2 *"])
def test_sparse_expressions_are_found_fast(text):
    """The search skips whole months and days: a year of answers takes well under a second of CPU."""
    sched = CronSchedule.parse(text)
    t = utc(2026, 12, 3)
    start = time.process_time()
    for _ in range(50):
        t = sched.next_after(t)
    assert time.process_time() - start < 1.0, "next_after walked minute by minute"


ERRORS = [
    ("61 * * * *", 'cron "61 * * * *": minute 61 out of range 0-59'),
    ("* 24 * * *", 'cron "* 24 * * *": hour 24 out of range 0-23'),
    ("* * 0 * *", 'cron "* * 0 * *": day-of-month 0 out of range 1-31'),
    ("* * 32 * *", 'cron "* * 32 * *": day-of-month 32 out of range 1-31'),
    ("* * * 13 *", 'cron "* * * 13 *": month 13 out of range 1-12'),
    ("* * * * 8", 'cron "* * * * 8": day-of-week 8 out of range 0-7'),
    ("* * * FOO *", "cron \"* * * FOO *\": month 'FOO': expected a number or a name (JAN, FEB, MAR, APR, MAY, JUN, "
                    "JUL, AUG, SEP, OCT, NOV, DEC)"),
    ("* * * * MONDAY", "cron \"* * * * MONDAY\": day-of-week 'MONDAY': expected a number or a name "
                       "(SUN, MON, TUE, WED, THU, FRI, SAT)"),
    ("x * * * *", "cron \"x * * * *\": minute 'x': expected a number"),
    ("-1 * * * *", "cron \"-1 * * * *\": minute '': expected a number"),
    ("1,,2 * * * *", "cron \"1,,2 * * * *\": minute '': expected a number"),
    ("*/0 * * * *", "cron \"*/0 * * * *\": minute step '0': expected a whole number of at least 1"),
    ("*/ * * * *", "cron \"*/ * * * *\": minute step '': expected a whole number of at least 1"),
    ("*/x * * * *", "cron \"*/x * * * *\": minute step 'x': expected a whole number of at least 1"),
    ("5-1 * * * *", 'cron "5-1 * * * *": minute range 5-1: the start is after the end'),
    ("0 0 * * FRI-MON", 'cron "0 0 * * FRI-MON": day-of-week range FRI-MON: the start is after the end'),
    ("1 2 3", 'cron "1 2 3": expected 5 fields (minute hour day-of-month month day-of-week), got 3'),
    ("0 0 1 1 * 2026", 'cron "0 0 1 1 * 2026": expected 5 fields (minute hour day-of-month month day-of-week), '
                       'got 6'),
    ("", 'cron "": expected 5 fields (minute hour day-of-month month day-of-week), got 0'),
    ("@reboot", 'cron "@reboot": unknown macro (expected one of @yearly, @annually, @monthly, @weekly, @daily, '
                "@midnight, @hourly)"),
    ("0 0 31 2 *", 'cron "0 0 31 2 *": day-of-month 31 never occurs in month 2; the expression would never run'),
    ("0 0 30 2 *", 'cron "0 0 30 2 *": day-of-month 30 never occurs in month 2; the expression would never run'),
    ("0 0 31 4,6,9,11 *", 'cron "0 0 31 4,6,9,11 *": day-of-month 31 never occurs in month 4,6,9,11; '
                          "the expression would never run"),
    ("0 0 30,31 2 */2", 'cron "0 0 30,31 2 */2": day-of-month 30,31 never occurs in month 2; '
                        "the expression would never run"),
    ("١ * * * *", "cron \"١ * * * *\": minute '١': expected a number"),
    ("99999 * * * *", "cron \"99999 * * * *\": minute 99999 out of range 0-59"),
]


@pytest.mark.parametrize("text,message", ERRORS)
def test_bad_expressions_are_one_line_usage_errors(text, message):
    with pytest.raises(CronInvalid) as err:
        CronSchedule.parse(text)
    assert str(err.value) == message
    assert "\n" not in str(err.value)
    assert isinstance(err.value, UsageError)


def test_not_a_string():
    with pytest.raises(CronInvalid, match="expected a string of five fields"):
        CronSchedule.parse(5)  # type: ignore[arg-type]


def test_a_long_expression_is_cut_in_the_message():
    with pytest.raises(CronInvalid) as err:
        CronSchedule.parse("1," * 100 + "x * * * *")
    assert len(str(err.value)) < 200


def test_the_end_of_the_calendar_fails_fast():
    sched = CronSchedule.parse("0 0 29 2 *")
    with pytest.raises(CronInvalid, match="no matching time after"):
        sched.next_after(utc(9996, 3, 1))
    with pytest.raises(CronInvalid, match="no time after"):
        sched.next_after(datetime.max.replace(tzinfo=timezone.utc))
