"""The Prefect event a Shopify product delivery becomes, and its emission.

Shared by the webhook receiver (deployments/webhook.py, an edge) and the reconciliation
task (tasks/reconcile.py), so tasks/ imports nothing from deployments/
(docs/ARCHITECTURE.md, "Layers"). ``emit_event`` only queues in memory: see
docs/ARCHITECTURE.md, "Intake".
"""

from __future__ import annotations

from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from prefect.events import emit_event as prefect_emit_event
from prefect.events.worker import EventsWorker

EVENT_NAME = "lightbox.shopify.product.updated"


def event_uuid(shop: str, webhook_id: str) -> UUID:
    """The Prefect event id for one delivery: the same on every retry of that delivery."""
    return uuid5(NAMESPACE_URL, f"lightbox:shopify-webhook:{shop}:{webhook_id}")


def product_event_fields(payload: dict[str, Any]) -> dict[str, Any]:
    """The keyword arguments of ``prefect.events.emit_event`` for one product delivery."""
    shop, product_id = payload["shop"], payload["product_id"]
    return {
        "event": EVENT_NAME,
        "resource": {
            "prefect.resource.id": f"shopify.product.{shop}.{product_id}",
            "prefect.resource.name": f"{shop} product {product_id}",
            "shopify.shop": shop,
            "shopify.product-id": product_id,
        },
        "payload": payload,
        "id": event_uuid(shop, payload["webhook_id"]),
    }


def emit_product_event(payload: dict[str, Any]) -> str:
    """Emit ``lightbox.shopify.product.updated`` for one product; return the event id."""
    event = prefect_emit_event(**product_event_fields(payload))
    if event is None:  # prefect returns None when events are off or the emit failed
        raise RuntimeError(
            f"Prefect did not emit {EVENT_NAME} for webhook {payload['webhook_id']!r}: events "
            "are disabled or failed (is PREFECT_API_URL set to the Prefect server?)"
        )
    return str(event.id)


def drain_prefect_events(timeout: float = 10.0) -> None:
    """Send the events still queued in this process (call once the server has stopped)."""
    EventsWorker.drain_all(timeout=timeout)
