"""Tasks of the Shopify reconciliation: what the store says changed, what our webhook
deliveries say, replaying what was lost through the receiver's own path (a recorded
delivery plus its ``lightbox.shopify.product.updated`` event in the outbox), and sending
every event still in the outbox (docs/ARCHITECTURE.md#intake)."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta

from prefect import get_run_logger, task

from blocks.shopify import ShopifyStore
from catalog.db import session_scope
from catalog.webhooks import products_seen_since, unsent_count
from tasks.bookkeeping import DB_RETRIES
from tasks.events import PrefectEventSender, record_product_delivery, relay_pending
from tasks.records import Record

PAGE = 25
MEDIA_PER_PRODUCT = 10
REPLAY_TOPIC = "reconcile/products"
PRODUCTS_QUERY = (
    """query LightboxUpdatedProducts($first: Int!, $after: String, $query: String) {
  products(first: $first, after: $after, query: $query, sortKey: UPDATED_AT) {
    nodes {
      id
      legacyResourceId
      updatedAt
      media(first: %d) { nodes { ... on MediaImage { image { url } } } }
    }
    pageInfo { hasNextPage endCursor }
  }
}"""
    % MEDIA_PER_PRODUCT
)


class StoreProduct(Record):
    product_id: str  # the numeric id webhooks carry (legacyResourceId)
    updated_at: datetime
    image_urls: list[str]


class StoreChanges(Record):
    shop: str
    since: datetime
    until: datetime
    products: list[StoreProduct]
    truncated: bool  # more products changed than max_products: the rest wait for the next run


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_product(node: dict) -> StoreProduct:
    urls = [m["image"]["url"] for m in node["media"]["nodes"] if (m.get("image") or {}).get("url")]
    updated = datetime.fromisoformat(node["updatedAt"].replace("Z", "+00:00"))
    return StoreProduct(product_id=str(node["legacyResourceId"]), updated_at=updated.astimezone(UTC), image_urls=urls)


@task(name="list_store_changes", retries=2, retry_delay_seconds=[10, 60])
def list_store_changes(
    store_block: str, lookback_hours: float, grace_minutes: float, max_products: int
) -> StoreChanges:
    """Products whose ``updatedAt`` lies in [now - lookback, now - grace], oldest first.
    The grace period leaves deliveries still in flight to the receiver."""
    now = datetime.now(UTC)
    since, until = now - timedelta(hours=lookback_hours), now - timedelta(minutes=grace_minutes)
    store = ShopifyStore.load(store_block)
    search = f"updated_at:>='{_iso(since)}' AND updated_at:<='{_iso(until)}'"
    products: list[StoreProduct] = []
    after, truncated = None, False
    try:
        while True:
            data = store.graphql(
                PRODUCTS_QUERY, {"first": PAGE, "after": after, "query": search}, what=f"reconcile {store.shop_domain}"
            )
            page = data["products"]
            products += [parse_product(node) for node in page["nodes"]]
            if len(products) >= max_products:
                truncated = page["pageInfo"]["hasNextPage"] or len(products) > max_products
                products = products[:max_products]
                break
            if not page["pageInfo"]["hasNextPage"]:
                break
            after = page["pageInfo"]["endCursor"]
    finally:
        store.close()
    return StoreChanges(shop=store.shop_domain, since=since, until=until, products=products, truncated=truncated)


@task(name="find_missed_products", **DB_RETRIES)
def find_missed_products(database_url: str, changes: StoreChanges) -> list[StoreProduct]:
    """Store products with no accepted delivery at their ``updatedAt`` or newer."""
    with session_scope(database_url) as session:
        seen = products_seen_since(session, changes.shop, changes.since)
    return [p for p in changes.products if p.product_id not in seen or seen[p.product_id] < p.updated_at]


@task(name="replay_missed_products", **DB_RETRIES)
def replay_missed_products(database_url: str, shop: str, missed: list[StoreProduct]) -> dict[str, str]:
    """Record each missed product as a delivery with its pending event, in one transaction
    per product, as the receiver does. Product id -> accepted | duplicate | stale."""
    logger = get_run_logger()
    statuses: dict[str, str] = {}
    for product in missed:
        webhook_id = f"reconcile:{product.product_id}:{_iso(product.updated_at)}"
        payload = {
            "shop": shop,
            "product_id": product.product_id,
            "topic": REPLAY_TOPIC,
            "webhook_id": webhook_id,
            "image_urls": product.image_urls,
            "updated_at": product.updated_at.isoformat(),
            "triggered_at": None,
        }
        body = json.dumps(payload, sort_keys=True).encode()
        with session_scope(database_url) as session:
            status = record_product_delivery(
                session,
                payload,
                product_updated_at=product.updated_at,
                triggered_at=None,
                payload_sha256=hashlib.sha256(body).hexdigest(),
                now=datetime.now(UTC),
            )
        statuses[product.product_id] = status
        logger.info("product %s (updated %s): %s", product.product_id, _iso(product.updated_at), status)
    return statuses


@task(name="send_pending_events", retries=2, retry_delay_seconds=[10, 60])
def send_pending_events(database_url: str) -> dict[str, int]:
    """Send every event still in the outbox (accepted deliveries the receiver's relay has
    not sent: the API was down, the receiver was killed, or this run's replays) and wait
    for the API to accept them. A failure leaves them pending and fails the task."""
    sender = PrefectEventSender()
    try:
        sent = relay_pending(database_url, sender)
    finally:
        sender.close()
    with session_scope(database_url) as session:
        left = unsent_count(session)
    get_run_logger().info("outbox: %d events sent, %d left (leased by a receiver's relay)", sent, left)
    return {"sent": sent, "unsent": left}
