"""reconcile-shopify against the loopback fake Admin API (tests/fakes/shopify_admin.py):
products the store changed without a recorded delivery are replayed, once, through the
outbox; events accepted but never sent are sent. The events land in the session
harness's real Prefect server (its event store is read back)."""

import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from blocks.catalog_db import CatalogDatabase
from catalog.db import session_scope
from catalog.models import OutboxEvent, WebhookDelivery
from catalog.webhooks import record_delivery
from tasks.events import record_product_delivery
from tests.fakes.shopify_admin import (  # noqa: F401  (shopify_admin is a fixture)
    SHOP_DOMAIN,
    shopify_admin,
    shopify_store,
)

pytestmark = pytest.mark.usefixtures("prefect_harness")


def stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def legacy(gid: str) -> str:
    return gid.rsplit("/", 1)[1]


def deliver(database_url: str, product_id: str, version: datetime, webhook_id: str) -> None:
    with session_scope(database_url) as session:
        record_delivery(
            session,
            webhook_id=webhook_id,
            shop=SHOP_DOMAIN,
            topic="products/update",
            product_id=product_id,
            triggered_at=None,
            product_updated_at=version,
            payload_sha256="0" * 64,
            now=datetime.now(UTC),
        )


def stored_events(database_url: str) -> list[dict]:
    """The events of this catalog's outbox that are in the harness server's event store
    (the persister writes in batches: poll until all are there, or 30 s)."""
    from prefect.client.orchestration import get_client

    with session_scope(database_url) as session:
        ids = [r.event_id for r in session.scalars(select(OutboxEvent))]
    deadline = time.monotonic() + 30
    while True:
        with get_client(sync_client=True) as client:
            page = client.request("POST", "/events/filter", json={"filter": {"id": {"id": ids}}, "limit": 50})
        found = page.json()["events"]
        if len(found) >= len(ids) or time.monotonic() > deadline:
            return found
        time.sleep(0.5)


def outbox(database_url: str) -> dict[str, bool]:
    """Outbox event payloads' product id -> sent."""
    with session_scope(database_url) as session:
        return {r.event["payload"]["product_id"]: r.sent_at is not None for r in session.scalars(select(OutboxEvent))}


def test_lost_deliveries_are_replayed_once(shopify_admin, database_url):  # noqa: F811
    from flows.reconcile import reconcile_shopify

    fake = shopify_admin
    now = datetime.now(UTC).replace(microsecond=0)
    delivered_at, lost_at, newer_at = (now - timedelta(minutes=m) for m in (120, 90, 60))
    delivered = fake.add_product("Delivered", stamp(delivered_at), ("https://cdn.example/d.png",))
    lost = fake.add_product("Lost", stamp(lost_at), ("https://cdn.example/l1.png", "https://cdn.example/l2.png"))
    outdated = fake.add_product("Seen before its last edit", stamp(newer_at))
    fake.add_product("Still in flight", stamp(now - timedelta(minutes=2)))  # inside the grace
    fake.add_product("Too old", stamp(now - timedelta(days=3)))  # before the lookback
    deliver(database_url, legacy(delivered), delivered_at, "wh-delivered")
    deliver(database_url, legacy(outdated), newer_at - timedelta(hours=5), "wh-outdated-old")
    shopify_store(fake).save("reconcile-test", overwrite=True)

    result = reconcile_shopify(
        database_url=database_url, store_block="reconcile-test", lookback_hours=26, grace_minutes=15
    )

    assert result["shop"] == SHOP_DOMAIN and result["checked"] == 3 and not result["truncated"]
    assert result["missed"] == [legacy(lost), legacy(outdated)]  # oldest change first
    assert result["replayed"] == {legacy(lost): "accepted", legacy(outdated): "accepted"}
    assert result["events_sent"] == 2 and outbox(database_url) == {legacy(lost): True, legacy(outdated): True}
    events = stored_events(database_url)
    by_product = {e["payload"]["product_id"]: e["payload"] for e in events}
    assert len(events) == 2
    assert by_product[legacy(lost)]["image_urls"] == ["https://cdn.example/l1.png", "https://cdn.example/l2.png"]
    assert by_product[legacy(lost)]["shop"] == SHOP_DOMAIN
    assert by_product[legacy(lost)]["webhook_id"].startswith(f"reconcile:{legacy(lost)}:")
    searches = [c.variables["query"] for c in fake.calls if c.operation == "products"]
    assert searches and all(q.startswith("updated_at:>='") and " AND updated_at:<='" in q for q in searches)
    with session_scope(database_url) as session:
        replays = session.scalars(select(WebhookDelivery).where(WebhookDelivery.topic == "reconcile/products")).all()
        assert {r.product_id for r in replays} == {legacy(lost), legacy(outdated)}
        assert all(r.status == "accepted" and r.event_id for r in replays)

    again = reconcile_shopify(
        database_url=database_url, store_block="reconcile-test", lookback_hours=26, grace_minutes=15
    )
    assert again["missed"] == [] and again["replayed"] == {} and again["events_sent"] == 0
    assert len(stored_events(database_url)) == 2


def test_accepted_but_unsent_events_are_sent(shopify_admin, database_url):  # noqa: F811
    """A delivery the receiver acknowledged while the Prefect API was down (its event still
    in the outbox) counts as seen, and the reconciliation sends its event."""
    from flows.reconcile import reconcile_shopify

    fake = shopify_admin
    now = datetime.now(UTC).replace(microsecond=0)
    changed_at = now - timedelta(minutes=45)
    gid = fake.add_product("Acknowledged, never sent", stamp(changed_at))
    payload = {
        "shop": SHOP_DOMAIN,
        "product_id": legacy(gid),
        "topic": "products/update",
        "webhook_id": f"wh-unsent-{uuid.uuid4()}",  # the harness server outlives this test
        "image_urls": [],
        "updated_at": changed_at.isoformat(),
        "triggered_at": None,
    }
    with session_scope(database_url) as session:
        status = record_product_delivery(
            session, payload, product_updated_at=changed_at, triggered_at=None, payload_sha256="1" * 64, now=now
        )
    assert status == "accepted" and outbox(database_url) == {legacy(gid): False}
    shopify_store(fake).save("reconcile-unsent", overwrite=True)
    catalog = f"reconcile-catalog-{uuid.uuid4().hex[:8]}"  # the deployment names the catalog's block
    CatalogDatabase(url=database_url).save(catalog)

    result = reconcile_shopify(catalog_block=catalog, store_block="reconcile-unsent")

    assert result["missed"] == [] and result["events_sent"] == 1
    assert outbox(database_url) == {legacy(gid): True}
    (event,) = stored_events(database_url)
    assert event["payload"] == payload


def test_pages_through_many_products_and_says_when_it_stops(shopify_admin, database_url):  # noqa: F811
    from tasks.reconcile import PAGE, list_store_changes

    fake = shopify_admin
    now = datetime.now(UTC).replace(microsecond=0)
    for i in range(PAGE + 5):
        fake.add_product(f"P{i}", stamp(now - timedelta(minutes=30 + i)))
    shopify_store(fake).save("reconcile-pages", overwrite=True)

    everything = list_store_changes.fn("reconcile-pages", 26, 15, 1000)
    assert len(everything.products) == PAGE + 5 and not everything.truncated
    assert [p.updated_at for p in everything.products] == sorted(p.updated_at for p in everything.products)
    capped = list_store_changes.fn("reconcile-pages", 26, 15, PAGE + 1)
    assert len(capped.products) == PAGE + 1 and capped.truncated
