"""Webhook delivery records on SQLite and on a per-run PostgreSQL database."""

import threading
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import sessionmaker

from catalog.db import get_engine, session_scope
from catalog.models import WebhookDelivery
from catalog.webhooks import products_seen_since, record_delivery, set_event_id

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
T0 = datetime(2026, 3, 1, 11, 0, tzinfo=UTC)


def _record(url, webhook_id, updated_at=T0, *, product_id="42", triggered_at=None, shop="a.myshopify.com"):
    with session_scope(url) as s:
        return record_delivery(
            s,
            webhook_id=webhook_id,
            shop=shop,
            topic="products/update",
            product_id=product_id,
            triggered_at=triggered_at,
            product_updated_at=updated_at,
            payload_sha256="0" * 64,
            now=NOW,
        )


def _rows(url):
    with session_scope(url) as s:
        return {r.webhook_id: (r.status, r.event_id) for r in s.scalars(select(WebhookDelivery))}


def test_first_delivery_accepted_then_duplicate(database_url):
    assert _record(database_url, "w1") == "accepted"
    assert _record(database_url, "w1", T0 + timedelta(hours=1)) == "duplicate"
    assert _rows(database_url) == {"w1": ("accepted", None)}


def test_older_version_is_stale_and_stored(database_url):
    assert _record(database_url, "w1", T0) == "accepted"
    assert _record(database_url, "w0", T0 - timedelta(seconds=1)) == "stale"
    assert _record(database_url, "w2", T0) == "accepted"  # equal versions are not stale
    assert _record(database_url, "w3", T0 + timedelta(minutes=5)) == "accepted"
    assert _rows(database_url) == {
        "w1": ("accepted", None),
        "w0": ("stale", None),
        "w2": ("accepted", None),
        "w3": ("accepted", None),
    }


def test_staleness_is_per_shop_and_product(database_url):
    assert _record(database_url, "w1", T0) == "accepted"
    assert _record(database_url, "w2", T0 - timedelta(hours=1), product_id="43") == "accepted"
    assert _record(database_url, "w3", T0 - timedelta(hours=1), shop="b.myshopify.com") == "accepted"


def test_offsets_compare_as_instants(database_url):
    """12:30+02:00 is 10:30 UTC, older than 11:00 UTC, although its wall clock is later."""
    berlin = timezone(timedelta(hours=2))
    assert _record(database_url, "w1", T0) == "accepted"
    assert _record(database_url, "w2", datetime(2026, 3, 1, 12, 30, tzinfo=berlin)) == "stale"
    with session_scope(database_url) as s:
        row = s.scalars(select(WebhookDelivery).where(WebhookDelivery.webhook_id == "w1")).one()
        assert row.product_updated_at.replace(tzinfo=None) == T0.replace(tzinfo=None)


def test_triggered_at_is_the_fallback_version(database_url):
    assert _record(database_url, "w1", None, triggered_at=T0) == "accepted"
    assert _record(database_url, "w2", None, triggered_at=T0 - timedelta(seconds=5)) == "stale"
    assert _record(database_url, "w3", None, triggered_at=None) == "accepted"  # nothing to compare


def test_naive_timestamps_refused(database_url):
    with pytest.raises(ValueError, match="timezone-aware"):
        _record(database_url, "w1", datetime(2026, 3, 1, 11, 0))


def test_set_event_id(database_url):
    _record(database_url, "w1")
    _record(database_url, "w0", T0 - timedelta(hours=1))
    with session_scope(database_url) as s:
        set_event_id(s, "w1", "evt-1")
    assert _rows(database_url)["w1"] == ("accepted", "evt-1")
    with pytest.raises(LookupError, match="no webhook delivery"):
        with session_scope(database_url) as s:
            set_event_id(s, "nope", "evt-2")
    with pytest.raises(ValueError, match="is stale"):
        with session_scope(database_url) as s:
            set_event_id(s, "w0", "evt-3")


def test_products_seen_since(database_url):
    _record(database_url, "w1", T0 - timedelta(days=2), product_id="1")
    _record(database_url, "w2", T0, product_id="2")
    _record(database_url, "w3", T0 + timedelta(minutes=1), product_id="2")
    _record(database_url, "w4", T0 - timedelta(minutes=1), product_id="2")  # stale
    _record(database_url, "w5", T0, product_id="3", shop="b.myshopify.com")
    with session_scope(database_url) as s:
        seen = products_seen_since(s, "a.myshopify.com", T0 - timedelta(days=1))
    assert seen == {"2": T0 + timedelta(minutes=1)}
    assert all(v.tzinfo is not None for v in seen.values())


def test_concurrent_same_webhook_id_is_one_row(database_url):
    """The second writer blocks on the first's uncommitted row, then sees a duplicate."""
    factory = sessionmaker(get_engine(database_url), expire_on_commit=False)
    first = factory()
    first.begin()
    assert (
        record_delivery(
            first,
            webhook_id="w1",
            shop="a.myshopify.com",
            topic="products/update",
            product_id="42",
            triggered_at=None,
            product_updated_at=T0,
            payload_sha256="0" * 64,
            now=NOW,
        )
        == "accepted"
    )
    result = {}
    second = threading.Thread(target=lambda: result.setdefault("status", _record(database_url, "w1")))
    second.start()
    second.join(timeout=1.0)
    assert second.is_alive(), "the second insert should wait for the first transaction"
    first.commit()
    first.close()
    second.join(timeout=30)
    assert result == {"status": "duplicate"}
    with session_scope(database_url) as s:
        assert s.scalar(select(func.count()).select_from(WebhookDelivery)) == 1
