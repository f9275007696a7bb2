"""Webhook delivery records and the event outbox on SQLite and on a per-run PostgreSQL
database."""

import hashlib
import threading
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import sessionmaker

from catalog.db import get_engine, session_scope
from catalog.models import OutboxEvent, WebhookDelivery
from catalog.webhooks import (
    claim_pending,
    mark_failed,
    mark_sent,
    products_seen_since,
    record_delivery,
    unsent_count,
)

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
T0 = datetime(2026, 3, 1, 11, 0, tzinfo=UTC)


def _record(
    url,
    webhook_id,
    updated_at=T0,
    *,
    product_id="42",
    triggered_at=None,
    shop="a.myshopify.com",
    body=None,
    event_id=None,
    event=None,
):
    body = body if body is not None else webhook_id  # a body of its own unless told
    with session_scope(url) as s:
        return record_delivery(
            s,
            webhook_id=webhook_id,
            shop=shop,
            topic="products/update",
            product_id=product_id,
            triggered_at=triggered_at,
            product_updated_at=updated_at,
            payload_sha256=hashlib.sha256(body.encode()).hexdigest(),
            now=NOW,
            shopify_event_id=event_id,
            event=event,
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


def test_the_version_comes_from_the_payload_only(database_url):
    """X-Shopify-Triggered-At is an unsigned header: it is stored, never compared."""
    assert _record(database_url, "w1", None, triggered_at=T0) == "accepted"
    assert _record(database_url, "w2", None, triggered_at=T0 - timedelta(seconds=5)) == "accepted"
    assert _record(database_url, "w3", T0) == "accepted"
    assert _record(database_url, "w4", T0 - timedelta(seconds=1), triggered_at=T0 + timedelta(days=1)) == "stale"


def test_naive_timestamps_refused(database_url):
    with pytest.raises(ValueError, match="timezone-aware"):
        _record(database_url, "w1", datetime(2026, 3, 1, 11, 0))


def test_same_content_under_a_new_webhook_id_is_a_duplicate(database_url):
    """A captured body re-posted with a fresh X-Shopify-Webhook-Id is not new work."""
    assert _record(database_url, "w1", body="captured") == "accepted"
    assert _record(database_url, "w2", body="captured") == "duplicate"
    assert _record(database_url, "w3", body="captured", shop="b.myshopify.com") == "accepted"  # another shop
    assert _record(database_url, "w4", body="captured", product_id="43") == "accepted"
    assert _record(database_url, "w5", T0 + timedelta(seconds=1), body="captured") == "accepted"
    assert set(_rows(database_url)) == {"w1", "w3", "w4", "w5"}


def test_same_shopify_event_id_is_a_duplicate(database_url):
    assert _record(database_url, "w1", event_id="e-1") == "accepted"
    assert _record(database_url, "w2", event_id="e-1") == "duplicate"
    assert _record(database_url, "w3", event_id="e-1", shop="b.myshopify.com") == "accepted"
    assert _record(database_url, "w4", event_id=None) == "accepted"
    assert _record(database_url, "w5", event_id=None) == "accepted"  # no event id: never a clash


def _event(n):
    return {"id": f"00000000-0000-4000-8000-{n:012d}", "event": "test", "payload": {"n": n}}


def _outbox(url):
    with session_scope(url) as s:
        return [(r.event_id, r.sent_at is not None, r.attempts) for r in s.scalars(select(OutboxEvent).order_by("id"))]


def test_accepted_delivery_and_its_event_are_written_together(database_url):
    assert _record(database_url, "w1", event=_event(1)) == "accepted"
    assert _record(database_url, "w0", T0 - timedelta(hours=1), event=_event(2)) == "stale"  # no event
    assert _record(database_url, "w1", event=_event(1)) == "duplicate"
    assert _rows(database_url) == {"w1": ("accepted", _event(1)["id"]), "w0": ("stale", None)}
    assert _outbox(database_url) == [(_event(1)["id"], False, 0)]
    with pytest.raises(RuntimeError), session_scope(database_url) as s:  # a rolled-back delivery...
        record_delivery(
            s,
            webhook_id="w9",
            shop="a.myshopify.com",
            topic="products/update",
            product_id="9",
            triggered_at=None,
            product_updated_at=T0,
            payload_sha256="9" * 64,
            now=NOW,
            event=_event(9),
        )
        raise RuntimeError("the transaction fails after both writes")
    assert "w9" not in _rows(database_url) and len(_outbox(database_url)) == 1  # ...leaves no event


def test_claim_send_and_mark(database_url):
    for n in range(1, 4):
        _record(database_url, f"w{n}", product_id=str(n), event=_event(n))
    lease = NOW + timedelta(seconds=60)
    with session_scope(database_url) as s:
        first = claim_pending(s, now=NOW, lease_until=lease, limit=2)
    assert [e["payload"]["n"] for _, e in first] == [1, 2]
    with session_scope(database_url) as s:  # a second relay gets what the first did not hold
        second = claim_pending(s, now=NOW, lease_until=lease, limit=10)
    assert [e["payload"]["n"] for _, e in second] == [3]
    with session_scope(database_url) as s:
        mark_sent(s, [i for i, _ in first], NOW)
        mark_failed(s, [i for i, _ in second], error="ConnectError", retry_at=NOW + timedelta(seconds=5))
        assert unsent_count(s) == 1
    with session_scope(database_url) as s:  # not before retry_at
        assert claim_pending(s, now=NOW + timedelta(seconds=1), lease_until=lease, limit=10) == []
    with session_scope(database_url) as s:
        again = claim_pending(s, now=NOW + timedelta(seconds=6), lease_until=lease, limit=10)
    assert [e["payload"]["n"] for _, e in again] == [3]
    with session_scope(database_url) as s:
        mark_sent(s, [i for i, _ in again], NOW)
        assert unsent_count(s) == 0
        assert claim_pending(s, now=NOW + timedelta(hours=1), lease_until=lease, limit=10) == []
    assert [(sent, attempts) for _, sent, attempts in _outbox(database_url)] == [(True, 1), (True, 1), (True, 2)]


def test_an_expired_lease_is_taken_over(database_url):
    """A relay killed after claiming (before sending) holds its events only until the lease
    ends."""
    _record(database_url, "w1", event=_event(1))
    with session_scope(database_url) as s:
        assert len(claim_pending(s, now=NOW, lease_until=NOW + timedelta(seconds=60), limit=10)) == 1
    with session_scope(database_url) as s:
        assert claim_pending(s, now=NOW + timedelta(seconds=59), lease_until=NOW, limit=10) == []
        assert len(claim_pending(s, now=NOW + timedelta(seconds=61), lease_until=NOW, limit=10)) == 1


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
