"""Business hours (`HANDOFF_BUSINESS_HOURS`): when the support team works, in one line.

Format: one or more spans separated by commas, then an IANA time zone:
`Mon-Fri 09:00-17:00 Europe/Madrid`, `Mon-Fri 09:00-13:00, Mon-Thu 15:00-18:00, Sat 10:00-14:00 America/Bogota`.
A span is a day (`Mon`…`Sun`) or a range of days (`Mon-Fri`; `Fri-Mon` wraps over the weekend) and
a time range `HH:MM-HH:MM` in the zone's local time, the end after the start (`24:00` is the
end of the day). Empty: always open. `parse` raises ValueError saying what is wrong.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from functools import cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
EXAMPLE = "Mon-Fri 09:00-17:00 Europe/Madrid"
_SPAN = re.compile(r"^(?P<days>[A-Za-z]{3}(?:-[A-Za-z]{3})?)\s+(?P<start>\d{2}:\d{2})-(?P<end>\d{2}:\d{2})$")


@dataclass(frozen=True)
class BusinessHours:
    """Opening spans `(weekday 0=Mon, start minute, end minute)` in local time of `zone`."""

    zone: ZoneInfo
    spans: tuple[tuple[int, int, int], ...]

    def is_open(self, at: datetime) -> bool:
        """Whether `at` (timezone-aware) falls in a span."""
        local = at.astimezone(self.zone)
        minute = local.hour * 60 + local.minute
        return any(day == local.weekday() and start <= minute < end for day, start, end in self.spans)

    def next_opening(self, at: datetime) -> datetime:
        """The first opening strictly after `at` (timezone-aware), in the zone's time."""
        local = at.astimezone(self.zone)
        for ahead in range(8):
            date = local.date() + timedelta(days=ahead)
            starts = sorted(start for day, start, _ in self.spans if day == date.weekday())
            for start in starts:
                opening = datetime.combine(date, time(start // 60, start % 60), tzinfo=self.zone)
                if opening > local:
                    return opening
        raise AssertionError("a week always holds an opening")  # parse refuses an empty list


@cache
def parse(text: str) -> BusinessHours | None:
    """The business hours a setting describes, None for an empty one (always open); ValueError
    naming the fault and giving an example otherwise."""
    text = " ".join(text.split())
    if not text:
        return None
    body, _, zone_name = text.rpartition(" ")
    if not body:
        raise ValueError(f"expected days, hours and a time zone, e.g. {EXAMPLE!r}")
    try:
        zone = ZoneInfo(zone_name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {zone_name!r} (an IANA name such as Europe/Madrid)") from None
    spans: list[tuple[int, int, int]] = []
    for part in body.split(","):
        match = _SPAN.match(part.strip())
        if not match:
            raise ValueError(f"{part.strip()!r} is not 'Days HH:MM-HH:MM' (e.g. {EXAMPLE!r})")
        start, end = _minute(match["start"]), _minute(match["end"])
        if end <= start:
            raise ValueError(f"{part.strip()!r}: the end must be after the start (use 24:00 for midnight)")
        spans.extend((day, start, end) for day in _days(match["days"]))
    return BusinessHours(zone, tuple(spans))


def _minute(text: str) -> int:
    hours, minutes = int(text[:2]), int(text[3:])
    if minutes > 59 or hours > 24 or (hours == 24 and minutes):
        raise ValueError(f"{text!r} is not a time of day (00:00 to 24:00)")
    return hours * 60 + minutes


def _days(text: str) -> list[int]:
    names = [name.capitalize() for name in text.split("-")]
    for name in names:
        if name not in DAYS:
            raise ValueError(f"unknown day {name!r} (one of {', '.join(DAYS)})")
    first, last = DAYS.index(names[0]), DAYS.index(names[-1])
    return [(first + i) % 7 for i in range((last - first) % 7 + 1)]
