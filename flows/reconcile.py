"""reconcile-shopify: catch the products whose webhooks were lost.

    the store's recently updated products -> minus the deliveries the catalog recorded ->
    replay each missed one through the receiver's path (record + outbox event) -> send
    every event still in the outbox (-> shopify-refresh)

Shopify retries a failed delivery for a while and then drops it (and removes a
subscription that keeps failing), so a receiver that was down loses updates. This runs on
a schedule (prefect.yaml) and closes the gap; the replayed deliveries are recorded, so
the next run does not replay them again. Events accepted but never sent (the Prefect API
was down, the receiver was killed) are sent here too (docs/ARCHITECTURE.md#intake).
"""

from __future__ import annotations

from prefect import flow, get_run_logger
from prefect.artifacts import create_table_artifact

from tasks.reconcile import find_missed_products, list_store_changes, replay_missed_products, send_pending_events
from tasks.settings import load_catalog_url


@flow(name="reconcile-shopify", flow_run_name="reconcile-{store_block}", log_prints=False)
def reconcile_shopify(
    database_url: str | None = None,
    store_block: str = "store",
    lookback_hours: float = 26.0,
    grace_minutes: float = 15.0,
    max_products: int = 2500,
    catalog_block: str | None = None,
) -> dict:
    """``catalog_block`` (a saved CatalogDatabase, loaded when the run starts; what the
    deployment names) or ``database_url``: the catalog, one way."""
    logger = get_run_logger()
    database_url = load_catalog_url(database_url, catalog_block)
    changes = list_store_changes(store_block, lookback_hours, grace_minutes, max_products)
    if changes.truncated:
        logger.warning(
            "more than %s products changed in %s; the rest wait for the next run", max_products, changes.shop
        )
    missed = find_missed_products(database_url, changes)
    statuses = replay_missed_products(database_url, changes.shop, missed)
    outbox = send_pending_events(database_url)
    rows = [
        {
            "product": p.product_id,
            "updated_at": p.updated_at.isoformat(),
            "images": len(p.image_urls),
            "replay": statuses[p.product_id],
        }
        for p in missed
    ]
    create_table_artifact(
        rows,
        key="shopify-reconcile",
        description=f"{changes.shop}: {len(changes.products)} products changed "
        f"between {changes.since:%Y-%m-%d %H:%M} and "
        f"{changes.until:%Y-%m-%d %H:%M} UTC; {len(missed)} had no "
        "delivery and were replayed",
    )
    logger.info(
        "%s: %s changed, %s missed, %s replayed, %s events sent",
        changes.shop,
        len(changes.products),
        len(missed),
        sum(s == "accepted" for s in statuses.values()),
        outbox["sent"],
    )
    return {
        "shop": changes.shop,
        "checked": len(changes.products),
        "truncated": changes.truncated,
        "missed": [p.product_id for p in missed],
        "replayed": statuses,
        "events_sent": outbox["sent"],
    }
