"""Off-peak windows across the 2026 DST changes, and agreement with Prefect's CronSchedule."""

import asyncio
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from prefect.client.schemas.schedules import CronSchedule
from prefect.server.schemas.schedules import CronSchedule as ServerCronSchedule

from catalog.offpeak import OffPeakWindow, RunPlan, cron_schedule

BERLIN, NEW_YORK = ZoneInfo("Europe/Berlin"), ZoneInfo("America/New_York")
# 2026: Berlin springs forward 03-29 02:00→03:00 and falls back 10-25 03:00→02:00;
# New York springs forward 03-08 02:00→03:00 and falls back 11-01 02:00→01:00.
DST_NIGHTS = {
    "Europe/Berlin": (datetime(2026, 3, 29, tzinfo=BERLIN), datetime(2026, 10, 25, tzinfo=BERLIN)),
    "America/New_York": (datetime(2026, 3, 8, tzinfo=NEW_YORK), datetime(2026, 11, 1, tzinfo=NEW_YORK)),
}
STARTS = [time(22), time(0), time(1, 30), time(2), time(2, 30), time(3)]


def utc(*args):
    return datetime(*args, tzinfo=UTC)


def test_spring_forward_start_in_the_gap_is_read_with_the_new_offset():
    w = OffPeakWindow(time(2, 30), time(6), "Europe/Berlin")
    (start,) = w.window_starts(utc(2026, 3, 28, 12), utc(2026, 3, 29, 12))
    assert start == utc(2026, 3, 29, 0, 30)
    assert start.astimezone(BERLIN).isoformat() == "2026-03-29T01:30:00+01:00"


def test_fall_back_start_is_the_first_occurrence():
    w = OffPeakWindow(time(2, 30), time(6), "Europe/Berlin")
    (start,) = w.window_starts(utc(2026, 10, 24, 12), utc(2026, 10, 25, 12))
    assert start == utc(2026, 10, 25, 0, 30)
    assert start.astimezone(BERLIN).isoformat() == "2026-10-25T02:30:00+02:00"
    # 02:30 CET (the second 02:30) is inside that window, and is no second start
    assert w.contains(utc(2026, 10, 25, 1, 30))
    assert w.next_window_start(utc(2026, 10, 25, 1, 30)) == utc(2026, 10, 25, 1, 30)


@pytest.mark.parametrize("tz", sorted(DST_NIGHTS))
@pytest.mark.parametrize("start", STARTS, ids=str)
def test_one_start_per_night_across_both_dst_changes(tz, start):
    """Seven local days, midnight to midnight, around each change: seven starts."""
    w = OffPeakWindow(start, time(6, 15), tz)
    for night in DST_NIGHTS[tz]:
        begin, end = night - timedelta(days=3), night + timedelta(days=4)  # local wall days
        starts = w.window_starts(begin, end)
        local_days = [s.astimezone(ZoneInfo(tz)).date() for s in starts]
        assert len(starts) == len(set(local_days)) == 7, starts
        gaps = {b - a for a, b in zip(starts, starts[1:], strict=False)}
        assert gaps <= {timedelta(hours=23), timedelta(hours=24), timedelta(hours=25)}


@pytest.mark.parametrize("tz", sorted(DST_NIGHTS))
@pytest.mark.parametrize("start", STARTS, ids=str)
def test_prefect_cron_schedule_gives_the_same_starts(tz, start):
    """Prefect's scheduler service calls the server-side schema's ``get_dates``; the client
    ``CronSchedule`` (what prefect.yaml becomes) has no public date listing."""
    w = OffPeakWindow(start, time(6, 15), tz)
    schedule = CronSchedule(**cron_schedule(w))
    server = ServerCronSchedule.model_validate(schedule.model_dump())
    for night in DST_NIGHTS[tz]:
        begin, end = night - timedelta(days=3), night + timedelta(days=4)
        dates = asyncio.run(server.get_dates(start=begin, end=end - timedelta(microseconds=1)))
        assert [d.astimezone(UTC) for d in dates] == [s.astimezone(UTC) for s in w.window_starts(begin, end)]


def test_cron_schedule_fields():
    assert cron_schedule(OffPeakWindow(time(22, 5), time(6), "Europe/Berlin")) == {
        "cron": "5 22 * * *",
        "timezone": "Europe/Berlin",
    }
    with pytest.raises(ValueError, match="minute resolution"):
        cron_schedule(OffPeakWindow(time(22, 0, 30), time(6), "Europe/Berlin"))


def test_window_crossing_midnight_contains_and_next_start():
    w = OffPeakWindow(time(22), time(6), "Europe/Berlin")
    winter_noon = datetime(2026, 1, 15, 12, tzinfo=BERLIN)
    assert not w.contains(winter_noon)
    assert w.next_window_start(winter_noon) == datetime(2026, 1, 15, 22, tzinfo=BERLIN)
    for inside in (
        datetime(2026, 1, 15, 22, tzinfo=BERLIN),
        datetime(2026, 1, 16, 5, 59, tzinfo=BERLIN),
        datetime(2026, 1, 15, 23, 30, tzinfo=BERLIN),
    ):
        assert w.contains(inside) and w.next_window_start(inside) == inside
    assert not w.contains(datetime(2026, 1, 16, 6, tzinfo=BERLIN))  # end is exclusive
    # an instant in another zone is compared as an instant
    assert w.contains(datetime(2026, 1, 15, 16, 30, tzinfo=NEW_YORK))  # 22:30 in Berlin


def test_window_not_crossing_midnight():
    w = OffPeakWindow(time(1), time(5), "America/New_York")
    assert w.next_window_start(datetime(2026, 7, 1, 6, tzinfo=NEW_YORK)) == datetime(2026, 7, 2, 1, tzinfo=NEW_YORK)
    assert w.next_window_start(datetime(2026, 7, 1, 0, 59, tzinfo=NEW_YORK)) == datetime(2026, 7, 1, 1, tzinfo=NEW_YORK)


def test_window_closes_on_the_first_occurrence_of_an_ambiguous_end():
    # 00:00–01:30 New York on 2026-11-01: closes at 01:30 EDT; 01:10 EST is outside
    w = OffPeakWindow(time(0), time(1, 30), "America/New_York")
    assert w.contains(utc(2026, 11, 1, 5, 10))  # 01:10 EDT
    assert not w.contains(utc(2026, 11, 1, 6, 10))  # 01:10 EST
    assert w.next_window_start(utc(2026, 11, 1, 6, 10)) == datetime(2026, 11, 2, 0, tzinfo=NEW_YORK)


def test_next_window_start_across_spring_forward_is_the_valid_instant():
    w = OffPeakWindow(time(2, 30), time(6), "America/New_York")
    # 2026-03-07 noon → the 03-08 start, 02:30 does not exist: 02:30-04:00 = 06:30 UTC
    assert w.next_window_start(datetime(2026, 3, 7, 12, tzinfo=NEW_YORK)) == utc(2026, 3, 8, 6, 30)


def test_plan_run():
    w = OffPeakWindow(time(22), time(6), "Europe/Berlin")
    day = datetime(2026, 5, 4, 10, tzinfo=BERLIN)
    night = datetime(2026, 5, 4, 23, tzinfo=BERLIN)
    assert w.plan_run(day, 5000, False, 500) == RunPlan(
        datetime(2026, 5, 4, 22, tzinfo=BERLIN), "standard", "5000 SKUs >= 500: next off-peak window"
    )
    assert w.plan_run(night, 5000, False, 500).when == night
    urgent = w.plan_run(day, 5000, True, 500)
    assert (urgent.when, urgent.queue) == (day, "urgent")
    small = w.plan_run(day, 3, False, 500)
    assert (small.when, small.queue) == (day, "standard")
    backfill = w.plan_run(day, 3, False, 500, backfill=True)
    assert (backfill.when, backfill.queue) == (datetime(2026, 5, 4, 22, tzinfo=BERLIN), "backfill")


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="unknown time zone"):
        OffPeakWindow(time(22), time(6), "Europe/Atlantis")
    with pytest.raises(ValueError, match="empty"):
        OffPeakWindow(time(22), time(22), "UTC")
    w = OffPeakWindow(time(22), time(6), "UTC")
    with pytest.raises(ValueError, match="timezone-aware"):
        w.next_window_start(datetime(2026, 1, 1))
    with pytest.raises(ValueError, match="sku_count"):
        w.plan_run(utc(2026, 1, 1), -1, False, 10)
    with pytest.raises(ValueError, match="both urgent and a backfill"):
        w.plan_run(utc(2026, 1, 1), 1, True, 10, backfill=True)
