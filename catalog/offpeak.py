"""Off-peak window: when a batch runs, and on which work queue (no Prefect here).

A window is a wall-clock span in one IANA time zone, e.g. 22:00–06:00 Europe/Berlin; it
may cross midnight. Each local calendar day D opens one window at (D, start), which
closes at (D, end) or, when it crosses midnight, at (D+1, end). Wall times that
daylight-saving changes make odd are resolved the way Prefect's ``CronSchedule`` resolves
them, so the schedule in prefect.yaml and ``plan_run`` agree to the second:

* a wall time that does not exist (spring forward, e.g. 02:30 on 2026-03-29 in
  Europe/Berlin, where clocks jump 02:00→03:00) is read with the UTC offset in force
  *after* the change (PEP 495 ``fold=1``): 02:30+02:00 = 00:30 UTC, which the wall
  clock shows as 01:30 CET — one gap-length earlier;
* a wall time that occurs twice (fall back, e.g. 02:30 on 2026-10-25 in Europe/Berlin)
  is its first occurrence (``fold=0``): 02:30 CEST = 00:30 UTC.

So every night has exactly one start, never none and never two. Instants come back in
UTC: an aware datetime inside a repeated hour compares unequal (``==``) to every
datetime in another zone (PEP 495), a trap UTC values do not set.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

Queue = Literal["urgent", "standard", "backfill"]


def _aware(name: str, value: datetime) -> datetime:
    if value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got naive {value.isoformat()}")
    return value


@dataclass(frozen=True)
class RunPlan:
    when: datetime
    queue: Queue
    reason: str


@dataclass(frozen=True)
class OffPeakWindow:
    start: time
    end: time
    tz: str

    def __post_init__(self) -> None:
        if self.start.tzinfo is not None or self.end.tzinfo is not None:
            raise ValueError("start and end are wall-clock times: give them without tzinfo")
        if self.start == self.end:
            raise ValueError(f"empty off-peak window: start and end are both {self.start}")
        try:
            ZoneInfo(self.tz)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {self.tz!r}") from exc

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.tz)

    @property
    def crosses_midnight(self) -> bool:
        return self.end < self.start

    def resolve(self, day: date, wall: time) -> datetime:
        """The instant of ``wall`` on local ``day`` (DST rules as above), in UTC."""
        naive = datetime.combine(day, wall)
        first = naive.replace(tzinfo=self.zone, fold=0)
        roundtrip = first.astimezone(UTC).astimezone(self.zone)
        if roundtrip.replace(tzinfo=None) != naive:  # in a spring-forward gap
            first = naive.replace(tzinfo=self.zone, fold=1)
        return first.astimezone(UTC)

    def night(self, day: date) -> tuple[datetime, datetime]:
        """[opens, closes) of the window that opens on local ``day``."""
        end_day = day + timedelta(days=1) if self.crosses_midnight else day
        return self.resolve(day, self.start), self.resolve(end_day, self.end)

    def contains(self, now: datetime) -> bool:
        now = _aware("now", now)
        today = now.astimezone(self.zone).date()
        return any(
            opens <= now < closes for opens, closes in (self.night(today - timedelta(days=1)), self.night(today))
        )

    def next_window_start(self, now: datetime) -> datetime:
        """``now`` when inside the window, else the next opening (in UTC)."""
        now = _aware("now", now)
        if self.contains(now):
            return now
        today = now.astimezone(self.zone).date()
        return min(
            opens for opens in (self.resolve(today + timedelta(days=d), self.start) for d in (0, 1, 2)) if opens > now
        )

    def window_starts(self, from_: datetime, to: datetime) -> list[datetime]:
        """Every opening in ``[from_, to)`` (in UTC), oldest first."""
        from_, to = _aware("from_", from_), _aware("to", to)
        day = from_.astimezone(self.zone).date() - timedelta(days=1)
        last = to.astimezone(self.zone).date() + timedelta(days=1)
        starts = []
        while day <= last:
            opens = self.resolve(day, self.start)
            if from_ <= opens < to:
                starts.append(opens)
            day += timedelta(days=1)
        return starts

    def plan_run(
        self,
        now: datetime,
        sku_count: int,
        urgent: bool,
        large_batch_threshold: int,
        *,
        backfill: bool = False,
    ) -> RunPlan:
        """When and on which queue to run a batch of ``sku_count`` SKUs.

        Urgent → now, ``urgent`` queue (whatever the size). A backfill (re-shooting a
        catalog) → the window, ``backfill`` queue. A batch of at least
        ``large_batch_threshold`` SKUs → the window (now if already inside it), ``standard``
        queue. Anything smaller → now, ``standard`` queue.
        """
        now = _aware("now", now)
        if sku_count < 0:
            raise ValueError(f"sku_count must be >= 0, got {sku_count}")
        if large_batch_threshold < 1:
            raise ValueError(f"large_batch_threshold must be >= 1, got {large_batch_threshold}")
        if urgent and backfill:
            raise ValueError("a run cannot be both urgent and a backfill")
        if urgent:
            return RunPlan(now, "urgent", "urgent: run now on the urgent queue")
        if backfill:
            when = self.next_window_start(now)
            return RunPlan(when, "backfill", f"backfill of {sku_count} SKUs: off-peak window")
        if sku_count >= large_batch_threshold:
            when = self.next_window_start(now)
            where = "inside the off-peak window" if when == now else "next off-peak window"
            return RunPlan(when, "standard", f"{sku_count} SKUs >= {large_batch_threshold}: {where}")
        return RunPlan(now, "standard", f"{sku_count} SKUs < {large_batch_threshold}: run now")


def cron_schedule(window: OffPeakWindow) -> dict[str, str]:
    """The prefect.yaml schedule that starts a run at each opening of ``window``.

    ``{"cron": "0 22 * * *", "timezone": "Europe/Berlin"}``; Prefect resolves DST
    exactly as ``OffPeakWindow.resolve`` does (tests/deployments/test_offpeak.py).
    """
    if window.start.second or window.start.microsecond:
        raise ValueError(f"cron has minute resolution; window start {window.start} has seconds")
    return {"cron": f"{window.start.minute} {window.start.hour} * * *", "timezone": window.tz}
