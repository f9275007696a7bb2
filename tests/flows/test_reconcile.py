"""reconcile-shopify against the loopback fake Admin API (tests/fakes/shopify_admin.py):
products the store changed without a recorded delivery are replayed, once."""

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from catalog.db import session_scope
from catalog.models import WebhookDelivery
from catalog.webhooks import record_delivery
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


@pytest.fixture
def emitted(monkeypatch):
    """The events the flow emits, in place of Prefect's events client."""
    events = []

    def emit(payload):
        events.append(payload)
        return f"00000000-0000-4000-8000-{len(events):012d}"

    monkeypatch.setattr("tasks.reconcile.emit_product_event", emit)
    return events


def test_lost_deliveries_are_replayed_once(shopify_admin, database_url, emitted):  # noqa: F811
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
    by_product = {e["product_id"]: e for e in emitted}
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
    assert again["missed"] == [] and again["replayed"] == {}
    assert len(emitted) == 2


def test_pages_through_many_products_and_says_when_it_stops(
    shopify_admin,
    database_url,  # noqa: F811
    emitted,
):
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
