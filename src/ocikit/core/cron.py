"""Cron expressions: the five fields of crontab(5), parsed and searched, with no I/O.

``minute hour day-of-month month day-of-week``, each field ``*``, a number, a range ``a-b``,
a step ``*/n``, ``a-b/n`` or ``a/n`` (``a`` to the field's end), or a list of those joined by
``,``. Months may be named ``JAN``..``DEC`` and weekdays ``SUN``..``SAT`` (any case); weekday
``0`` and ``7`` are both Sunday. The macros ``@hourly``, ``@daily`` (``@midnight``),
``@weekly``, ``@monthly`` and ``@yearly`` (``@annually``) stand for their usual expressions.

Day-of-month and day-of-week follow Vixie cron: when both fields are restricted, a day matches
when *either* does (``0 0 13 * FRI`` runs on every 13th and every Friday); a field counts as
unrestricted when it starts with ``*`` (so ``*/2`` in one field still ANDs with the other).

Times are UTC: :meth:`CronSchedule.next_after` converts an aware datetime to UTC (a naive one
is taken as UTC) and answers an aware UTC datetime. There is no time-zone support (no DST
gaps or repeated hours to reason about).

An expression no date can ever match (``0 0 31 2 *``, ``0 0 30 2 *``) is refused by
:meth:`CronSchedule.parse`; ``0 0 29 2 *`` is valid (leap years only). The search skips
field by field — a month, then a day, then an hour that cannot match is passed over whole —
and gives up after one full 400-year Gregorian cycle, so it always ends.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from .errors import CronInvalid

__all__ = ["CronSchedule", "MACROS"]

MACROS = {
    "@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0", "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@hourly": "0 * * * *",
}
"""The ``@`` shorthands and the expressions they stand for."""

_MONTHS = {name.upper(): i for i, name in enumerate(calendar.month_abbr) if name}
_DAYS = {"SUN": 0, "MON": 1, "TUE": 2, "WED": 3, "THU": 4, "FRI": 5, "SAT": 6}
_FIELDS = (  # name, lowest, highest, names
    ("minute", 0, 59, {}), ("hour", 0, 23, {}), ("day-of-month", 1, 31, {}),
    ("month", 1, 12, _MONTHS), ("day-of-week", 0, 7, _DAYS),
)
_MAX_DAYS = {1: 31, 2: 29, 3: 31, 4: 30, 5: 31, 6: 30, 7: 31, 8: 31, 9: 30, 10: 31, 11: 30, 12: 31}
_CYCLE_YEARS = 400
"""The Gregorian calendar repeats itself (weekdays included) every 400 years."""


@dataclass(frozen=True)
class CronSchedule:
    """A parsed cron expression: the sets of values each field allows."""

    text: str
    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    days: frozenset[int]
    months: tuple[int, ...]
    weekdays: frozenset[int]
    """0 = Sunday .. 6 = Saturday (a ``7`` in the expression is stored as 0)."""
    days_restricted: bool
    weekdays_restricted: bool

    @classmethod
    def parse(cls, text: str) -> CronSchedule:
        """Parse ``text``; raise :class:`~ocikit.core.errors.CronInvalid` (one line, naming the field)."""
        if not isinstance(text, str):
            raise CronInvalid(f"cron {text!r}: expected a string of five fields")
        source = " ".join(text.split())
        expr = source
        if expr.startswith("@"):
            if expr.lower() not in MACROS:
                raise CronInvalid(f'cron "{_short(source)}": unknown macro (expected one of {", ".join(MACROS)})')
            expr = MACROS[expr.lower()]
        parts = expr.split(" ")
        if len(parts) != 5:
            raise CronInvalid(f'cron "{_short(source)}": expected 5 fields (minute hour day-of-month month '
                              f"day-of-week), got {len(parts) if expr else 0}")
        values = [_field(source, part, *spec) for part, spec in zip(parts, _FIELDS)]
        minutes, hours, days, months, weekdays = values
        sched = cls(source, tuple(sorted(minutes)), tuple(sorted(hours)), frozenset(days),
                    tuple(sorted(months)), frozenset(d % 7 for d in weekdays),
                    not parts[2].startswith("*"), not parts[4].startswith("*"))
        if not (sched.days_restricted and sched.weekdays_restricted) and \
                not any(d <= _MAX_DAYS[m] for m in sched.months for d in sched.days):
            raise CronInvalid(f'cron "{_short(source)}": day-of-month {parts[2]} never occurs in month '
                              f"{parts[3]}; the expression would never run")
        return sched

    def matches(self, when: datetime) -> bool:
        """Whether the minute of ``when`` (UTC; naive taken as UTC) is one this schedule runs at."""
        t = _utc(when)
        return (t.minute in self.minutes and t.hour in self.hours and t.month in self.months
                and self._day_matches(t.year, t.month, t.day))

    def next_after(self, after: datetime) -> datetime:
        """The first matching minute strictly after ``after``, as an aware UTC datetime."""
        start = _utc(after).replace(second=0, microsecond=0)
        try:
            start += timedelta(minutes=1)
        except OverflowError:
            raise CronInvalid(f'cron "{_short(self.text)}": no time after {after.isoformat()}') from None
        first_day = (start.year, start.month, start.day)
        for year in range(start.year, min(start.year + _CYCLE_YEARS, 9999) + 1):
            for month in self.months:
                if (year, month) < (start.year, start.month):
                    continue
                day_from = start.day if (year, month) == (start.year, start.month) else 1
                for day in range(day_from, calendar.monthrange(year, month)[1] + 1):
                    if not self._day_matches(year, month, day):
                        continue
                    today = (year, month, day) == first_day
                    for hour in self.hours:
                        if today and hour < start.hour:
                            continue
                        for minute in self.minutes:
                            if today and hour == start.hour and minute < start.minute:
                                continue
                            return datetime(year, month, day, hour, minute, tzinfo=timezone.utc)
        raise CronInvalid(f'cron "{_short(self.text)}": no matching time after {after.isoformat()}')

    def _day_matches(self, year: int, month: int, day: int) -> bool:
        in_days = day in self.days
        in_weekdays = (calendar.weekday(year, month, day) + 1) % 7 in self.weekdays
        if self.days_restricted and self.weekdays_restricted:
            return in_days or in_weekdays
        return in_days and in_weekdays

    def __str__(self) -> str:
        return self.text


def _utc(when: datetime) -> datetime:
    if when.tzinfo is None:
        return when.replace(tzinfo=timezone.utc)
    return when.astimezone(timezone.utc)


def _short(text: str) -> str:
    return text if len(text) <= 80 else text[:77] + "..."


def _field(source: str, text: str, name: str, low: int, high: int, names: dict[str, int]) -> set[int]:
    """The values one field allows."""
    where = f'cron "{_short(source)}": {name}'
    out: set[int] = set()
    for item in text.split(","):
        body, slash, step_text = item.partition("/")
        step = 1
        if slash:
            if not (step_text.isascii() and step_text.isdigit()) or len(step_text) > 4 or int(step_text) == 0:
                raise CronInvalid(f"{where} step {step_text[:20]!r}: expected a whole number of at least 1")
            step = int(step_text)
        if body == "*":
            first, last = low, high if name != "day-of-week" else 6  # 7 is Sunday again
        elif "-" in body:
            a, _, b = body.partition("-")
            first, last = _value(where, a, low, high, names), _value(where, b, low, high, names)
            if first > last:
                raise CronInvalid(f"{where} range {body[:20]}: the start is after the end")
        else:
            first = _value(where, body, low, high, names)
            last = (high if name != "day-of-week" else max(first, 6)) if slash else first
        out.update(range(first, last + 1, step))
    return out


def _value(where: str, text: str, low: int, high: int, names: dict[str, int]) -> int:
    if text.upper() in names:
        return names[text.upper()]
    if not (text.isascii() and text.isdigit()):
        hint = f" or a name ({', '.join(names)})" if names else ""
        raise CronInvalid(f"{where} {text[:20]!r}: expected a number{hint}")
    if len(text) > 4 or not low <= int(text) <= high:
        raise CronInvalid(f"{where} {text[:20]} out of range {low}-{high}")
    value = int(text)
    return value
