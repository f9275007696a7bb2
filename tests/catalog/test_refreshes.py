"""catalog/refreshes.py on SQLite and PostgreSQL: deferred refreshes collect per shop and
window with the newest version of each product, and a shop's batch takes them once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from catalog.db import session_scope
from catalog.refreshes import finish_pending, pending_rows, record_pending, take_pending

SHOP, OTHER = "acme.myshopify.com", "other.myshopify.com"
NOW = datetime(2026, 12, 2, 14, 0, tzinfo=UTC)
TONIGHT, TOMORROW = NOW.replace(hour=21), NOW.replace(hour=21) + timedelta(days=1)


def record(url, product, version_min, image, window=TONIGHT, shop=SHOP):
    with session_scope(url) as session:
        return record_pending(
            session,
            shop=shop,
            product_id=product,
            window_start=window,
            image_urls=[image],
            product_updated_at=NOW - timedelta(minutes=60 - version_min),
            webhook_id=f"wh-{product}-{version_min}",
            now=NOW,
        )


def take(url, run, window=TONIGHT, now=NOW):
    with session_scope(url) as session:
        return take_pending(session, shop=SHOP, window_start=window, run_id=run, now=now)


def test_a_product_updated_twice_keeps_its_newest_image(database_url):
    assert record(database_url, "1", 10, "https://cdn/1-old.png") == "recorded"
    assert record(database_url, "1", 20, "https://cdn/1-new.png") == "recorded"
    assert record(database_url, "1", 15, "https://cdn/1-late.png") == "older"  # delivered out of order
    assert record(database_url, "2", 10, "https://cdn/2.png") == "recorded"
    assert record(database_url, "9", 10, "https://cdn/9.png", shop=OTHER) == "recorded"
    with session_scope(database_url) as session:
        rows = pending_rows(session, SHOP)
    assert [(r.product_id, r.image_urls) for r in rows] == [
        ("1", ["https://cdn/1-new.png"]),
        ("2", ["https://cdn/2.png"]),
    ]

    taken = take(database_url, "run-a")
    assert [(p.product_id, p.image_urls) for p in taken] == [
        ("1", ("https://cdn/1-new.png",)),
        ("2", ("https://cdn/2.png",)),
    ]
    assert take(database_url, "run-b") == []  # taken: another run of the window gets nothing
    assert [p.product_id for p in take(database_url, "run-a")] == ["1", "2"]  # the same run, retried
    assert record(database_url, "1", 30, "https://cdn/1-newest.png") == "taken"


def test_a_batch_takes_earlier_windows_too_and_stale_claims(database_url):
    record(database_url, "1", 10, "https://cdn/1-missed.png")  # tonight's batch never runs
    record(database_url, "1", 20, "https://cdn/1-new.png", window=TOMORROW)
    record(database_url, "3", 10, "https://cdn/3.png", window=TOMORROW + timedelta(days=1))
    assert [(p.product_id, p.image_urls) for p in take(database_url, "tomorrow", TOMORROW)] == [
        ("1", ("https://cdn/1-new.png",))
    ]
    record(database_url, "4", 10, "https://cdn/4.png", window=TOMORROW)
    # the run that took product 1 died; half a day later its product is free again
    later = take(database_url, "later", TOMORROW, now=NOW + timedelta(hours=13))
    assert {p.product_id for p in later} == {"1", "4"}


def test_finished_products_are_not_taken_again(database_url):
    record(database_url, "1", 10, "https://cdn/1.png")
    record(database_url, "2", 10, "https://cdn/2.png")
    take(database_url, "run-a")
    with session_scope(database_url) as session:
        assert finish_pending(session, run_id="run-a", outcomes={"1": ("exported", None), "2": ("failed", "bad")}) == 2
    with session_scope(database_url) as session:
        rows = pending_rows(session, SHOP)
    ended = [(r.outcome, r.reason, r.batch_run) for r in rows]
    assert ended == [("exported", None, "run-a"), ("failed", "bad", "run-a")]
    assert take(database_url, "run-a", now=NOW + timedelta(days=2)) == []
