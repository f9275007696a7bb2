"""The relay (tasks.events.relay_pending) against the session's real Prefect server
(prefect_test_harness): events the API accepts are marked sent and land in its event
store; an event the API refuses (422) stays pending with the reason and does not hold
back the events queued around it."""

import hashlib
import time
import uuid
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from catalog.db import session_scope
from catalog.models import OutboxEvent
from catalog.webhooks import record_delivery
from tasks.events import PrefectEventSender, record_product_delivery, relay_pending

pytestmark = pytest.mark.usefixtures("prefect_harness")

SHOP = "lightbox-demo.myshopify.com"


def queue_product(url: str, product_id: str) -> str:
    payload = {
        "shop": SHOP,
        "product_id": product_id,
        "topic": "products/update",
        "webhook_id": f"wh-{uuid.uuid4()}",  # the harness server outlives this test
        "image_urls": [],
        "updated_at": "2026-11-20T10:00:00+00:00",
        "triggered_at": None,
    }
    now = datetime.now(UTC)
    with session_scope(url) as session:
        digest = hashlib.sha256(payload["webhook_id"].encode()).hexdigest()
        assert (
            record_product_delivery(
                session, payload, product_updated_at=now, triggered_at=None, payload_sha256=digest, now=now
            )
            == "accepted"
        )
        return session.scalars(select(OutboxEvent.event_id).order_by(OutboxEvent.id.desc())).first()


def queue_refused(url: str) -> str:
    """An outbox row the API will not take (no resource, no occurred): what a bug or an
    older version could have left behind."""
    event_id = str(uuid.uuid4())
    with session_scope(url) as session:
        record_delivery(
            session,
            webhook_id=f"wh-bad-{event_id}",
            shop=SHOP,
            topic="products/update",
            product_id="666",
            triggered_at=None,
            product_updated_at=datetime.now(UTC),
            payload_sha256="6" * 64,
            now=datetime.now(UTC),
            event={"id": event_id, "event": "lightbox.shopify.product.updated"},
        )
    return event_id


def outbox(url: str) -> dict[str, tuple[bool, int, str | None]]:
    with session_scope(url) as session:
        return {
            r.event_id: (r.sent_at is not None, r.attempts, r.last_error) for r in session.scalars(select(OutboxEvent))
        }


def stored(event_ids: list[str]) -> set[str]:
    from prefect.client.orchestration import get_client

    deadline = time.monotonic() + 30
    while True:
        with get_client(sync_client=True) as client:
            page = client.request("POST", "/events/filter", json={"filter": {"id": {"id": event_ids}}, "limit": 50})
        found = {e["id"] for e in page.json()["events"]}
        if found == set(event_ids) or time.monotonic() > deadline:
            return found
        time.sleep(0.5)


def test_a_refused_event_does_not_hold_back_the_others(database_url):
    first = queue_product(database_url, "1")
    bad = queue_refused(database_url)
    last = queue_product(database_url, "2")
    sender = PrefectEventSender()
    try:
        assert relay_pending(database_url, sender) == 2
        rows = outbox(database_url)
        assert rows[first][:2] == (True, 1) and rows[last][:2] == (True, 1)
        assert rows[bad] == (False, 1, "PrefectHTTPStatusError (HTTP 422)")
        assert stored([first, last]) == {first, last}
        assert relay_pending(database_url, sender) == 0  # held: not retried at once
        assert outbox(database_url)[bad] == (False, 1, "PrefectHTTPStatusError (HTTP 422)")
    finally:
        sender.close()
