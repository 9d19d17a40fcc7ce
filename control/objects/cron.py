"""Cron schedules as a CronJob's `spec.schedule` reads them (the standard
five fields of robfig/cron, which Kubernetes uses), and their times in a zone.

Fields: minute, hour, day of month, month, day of week; each a list of `*`,
`?`, values, ranges `a-b` and steps `*/n`, `a-b/n`, `a/n`; months and weekdays
also by name (`JAN`, `MON`). Or a descriptor: `@yearly`, `@annually`,
`@monthly`, `@weekly`, `@daily`, `@midnight`, `@hourly`. As in cron, when
neither day field is `*` or `?`, a day matches either one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


class CronError(ValueError):
    """A schedule that does not parse; the message says why."""


_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
_DAYS = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")
# (low, high, names by value starting at low)
_BOUNDS: tuple[tuple[int, int, dict[str, int]], ...] = (
    (0, 59, {}),
    (0, 23, {}),
    (1, 31, {}),
    (1, 12, {n: i + 1 for i, n in enumerate(_MONTHS)}),
    (0, 6, {n: i for i, n in enumerate(_DAYS)}),
)
_DESCRIPTORS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
# Beyond this a schedule that never matches (`0 0 30 2 *`) has no next time.
_SEARCH_YEARS = 5


@dataclass(frozen=True, slots=True)
class Schedule:
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 is Sunday
    any_day: bool  # the day-of-month field is `*` or `?`
    any_weekday: bool

    def _day_matches(self, t: datetime) -> bool:
        dom = t.day in self.days
        dow = (t.isoweekday() % 7) in self.weekdays
        if self.any_day or self.any_weekday:
            return dom and dow
        return dom or dow

    def next_after(self, after: datetime, zone: tzinfo) -> datetime | None:
        """The first scheduled time strictly after `after` (aware), in `zone`;
        None when there is none within a few years."""
        t = after.astimezone(zone).replace(second=0, microsecond=0, tzinfo=None)
        t += timedelta(minutes=1)
        end = t.replace(year=t.year + _SEARCH_YEARS)
        while t < end:
            if t.month not in self.months:
                t = (t.replace(day=1) + timedelta(days=32)).replace(day=1, hour=0, minute=0)
            elif not self._day_matches(t):
                t = (t + timedelta(days=1)).replace(hour=0, minute=0)
            elif t.hour not in self.hours:
                t = (t + timedelta(hours=1)).replace(minute=0)
            elif t.minute not in self.minutes:
                t += timedelta(minutes=1)
            else:
                found = t.replace(tzinfo=zone)
                if found > after:
                    return found
                t += timedelta(minutes=1)
        return None


def parse_schedule(text: str) -> Schedule:
    """A schedule from its text; CronError says what is wrong."""
    spec = text.strip()
    if spec.startswith("@"):
        expanded = _DESCRIPTORS.get(spec.lower())
        if expanded is None:
            raise CronError(f"unrecognized descriptor: {spec}")
        spec = expanded
    fields = spec.split()
    if len(fields) != 5:
        raise CronError(f"expected exactly 5 fields, found {len(fields)}: {text}")
    parsed = [_field(f, *bounds) for f, bounds in zip(fields, _BOUNDS, strict=True)]
    return Schedule(
        minutes=parsed[0][0],
        hours=parsed[1][0],
        days=parsed[2][0],
        months=parsed[3][0],
        weekdays=parsed[4][0],
        any_day=parsed[2][1],
        any_weekday=parsed[4][1],
    )


def _field(text: str, low: int, high: int, names: dict[str, int]) -> tuple[frozenset[int], bool]:
    """The values of one field, and whether it is a bare `*` or `?`."""
    values: set[int] = set()
    star = False
    for part in text.split(","):
        got, part_star = _range(part, low, high, names)
        values |= got
        star = star or part_star
    return frozenset(values), star


def _range(text: str, low: int, high: int, names: dict[str, int]) -> tuple[set[int], bool]:
    span, slash, step_text = text.partition("/")
    star = span in ("*", "?")
    if star:
        start, end = low, high
    else:
        first, dash, last = span.partition("-")
        start = _value(first, names)
        end = _value(last, names) if dash else (high if slash else start)
    step = 1
    if slash:
        step = _number(step_text)
        if step <= 0:
            raise CronError(f"step of range should be a positive number: {text}")
        star = star and step == 1
    if start < low:
        raise CronError(f"beginning of range ({start}) below minimum ({low}): {text}")
    if end > high:
        raise CronError(f"end of range ({end}) above maximum ({high}): {text}")
    if start > end:
        raise CronError(f"beginning of range ({start}) beyond end of range ({end}): {text}")
    return set(range(start, end + 1, step)), star


def _value(text: str, names: dict[str, int]) -> int:
    named = names.get(text.upper())
    return named if named is not None else _number(text)


def _number(text: str) -> int:
    if not text.isdigit():
        raise CronError(f"failed to parse int from {text}")
    return int(text)


def zone(name: str | None) -> tzinfo:
    """A CronJob's `spec.timeZone` (None: the control plane's own zone, as the
    controller manager's, which pilothouse takes to be UTC)."""
    if not name:
        return ZoneInfo("UTC")
    if name.startswith(("/", ".")) or ".." in name:
        raise CronError(f"unknown time zone {name}")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as e:
        raise CronError(f"unknown time zone {name}") from e
