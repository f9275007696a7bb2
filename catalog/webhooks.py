"""Shopify webhook deliveries: payload parsing, exactly-once recording, staleness, reads.

``parse_product`` reads the fields we use from a products/create|update body. The other
functions take an open ``Session`` (see ``catalog.db.session_scope``) and never commit
themselves: the caller's transaction decides. All timestamps must be timezone-aware;
they are stored in UTC (SQLite keeps no offset, so anything else would be misread).

A delivery's *version* is the product's ``updated_at`` from the payload, or Shopify's
``X-Shopify-Triggered-At`` when the payload has none. A delivery is **stale** when an
accepted delivery for the same shop and product already carries a strictly newer
version: Shopify does not deliver in order, and re-shooting an old state of the product
would overwrite a newer one. Equal versions are accepted (Shopify's ``updated_at`` has
one-second resolution, so two real edits can share one); downstream work is idempotent.
The stale check is a read before the insert, so two deliveries of different versions
that race each other can both be accepted; the webhook id dedupe cannot be raced.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import urlsplit

from sqlalchemy import func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from catalog.models import WebhookDelivery

DeliveryStatus = Literal["accepted", "duplicate", "stale"]
MAX_URL_LENGTH = 2048


class InvalidDelivery(ValueError):
    """A webhook delivery we cannot take; the message says why (the receiver sends 400)."""


@dataclass(frozen=True)
class ProductPayload:
    product_id: str
    updated_at: datetime | None
    image_urls: tuple[str, ...]  # http(s) only, payload order, no repeats
    refused_urls: int  # image URLs left out because they were not http(s)


def parse_timestamp(name: str, value: Any) -> datetime | None:
    """An ISO 8601 timestamp with an offset, in UTC; None for None or ""."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise InvalidDelivery(f"{name} is not a string")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise InvalidDelivery(f"{name} is not an ISO 8601 timestamp: {value[:40]!r}") from exc
    if parsed.utcoffset() is None:
        raise InvalidDelivery(f"{name} has no UTC offset: {value[:40]!r}")
    return parsed.astimezone(UTC)


def is_http_url(value: Any) -> bool:
    if not isinstance(value, str) or len(value) > MAX_URL_LENGTH or not value.isprintable():
        return False
    parts = urlsplit(value)
    return parts.scheme in ("http", "https") and bool(parts.hostname) and " " not in value


def image_urls(product: dict[str, Any]) -> tuple[list[str], int]:
    """(http(s) image URLs in payload order without repeats, count of refused ones)."""
    images, media, image = product.get("images") or [], product.get("media") or [], product.get("image")
    if not isinstance(images, list) or not isinstance(media, list):
        raise InvalidDelivery("product images/media are not lists")
    found = [i.get("src") for i in images if isinstance(i, dict)]
    if isinstance(image, dict):
        found.append(image.get("src"))
    for item in media:
        if isinstance(item, dict) and item.get("media_content_type", "IMAGE") == "IMAGE":
            preview = item.get("preview_image") or item.get("image")
            if isinstance(preview, dict):
                found.append(preview.get("src"))
    found = [url for url in found if url is not None]
    good = [url for url in found if is_http_url(url)]
    return list(dict.fromkeys(good)), len(found) - len(good)


def parse_product(body: bytes) -> ProductPayload:
    """The fields we use from a products/create|update body (REST Admin API JSON)."""
    try:
        product = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidDelivery(f"body is not JSON: {exc}") from exc
    if not isinstance(product, dict):
        raise InvalidDelivery("body is not a JSON object")
    product_id = product.get("id")
    if isinstance(product_id, bool) or not isinstance(product_id, int | str) or product_id == "":
        raise InvalidDelivery("product id missing or not an integer/string")
    product_id = str(product_id)
    if len(product_id) > 64 or not product_id.isprintable():
        raise InvalidDelivery("product id is too long or not printable")
    urls, refused = image_urls(product)
    return ProductPayload(
        product_id=product_id,
        updated_at=parse_timestamp("updated_at", product.get("updated_at")),
        image_urls=tuple(urls),
        refused_urls=refused,
    )


def as_utc(value: datetime | None) -> datetime | None:
    """An aware datetime in UTC; a naive value read back from SQLite is UTC already."""
    if value is None:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def _require_aware(name: str, value: datetime | None) -> datetime | None:
    if value is not None and value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got naive {value.isoformat()}")
    return as_utc(value)


def _insert(session: Session):
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        return postgresql.insert
    if dialect == "sqlite":
        return sqlite.insert
    raise ValueError(f"unsupported database dialect {dialect!r}")


def _version():
    return func.coalesce(WebhookDelivery.product_updated_at, WebhookDelivery.triggered_at)


def newest_accepted_version(session: Session, shop: str, product_id: str) -> datetime | None:
    """The newest version among accepted deliveries for one product, or None."""
    newest = session.scalar(
        select(func.max(_version())).where(
            WebhookDelivery.shop == shop,
            WebhookDelivery.product_id == product_id,
            WebhookDelivery.status == "accepted",
        )
    )
    return as_utc(newest)


def record_delivery(
    session: Session,
    *,
    webhook_id: str,
    shop: str,
    topic: str,
    product_id: str,
    triggered_at: datetime | None,
    product_updated_at: datetime | None,
    payload_sha256: str,
    now: datetime,
) -> DeliveryStatus:
    """Record one delivery once; say whether it is new, a replay, or older than one we took.

    ``duplicate``: a delivery with this webhook id exists (nothing is written). ``stale``:
    stored with status ``stale``. ``accepted``: stored with status ``accepted``.

    The insert is ``INSERT .. ON CONFLICT (webhook_id) DO NOTHING``: a concurrent insert
    of the same webhook id waits for the other transaction and then ends as
    ``duplicate``, and the caller's transaction stays usable. (Not a savepoint: with
    pysqlite's default transaction handling a savepoint opened before any other write
    starts the transaction, and releasing it commits everything, so a later rollback by
    the caller would keep the row.)
    """
    triggered_at = _require_aware("triggered_at", triggered_at)
    product_updated_at = _require_aware("product_updated_at", product_updated_at)
    now = _require_aware("now", now)
    version = product_updated_at or triggered_at
    newest = newest_accepted_version(session, shop, product_id)
    status: DeliveryStatus = "stale" if version is not None and newest is not None and version < newest else "accepted"
    inserted = session.scalar(
        _insert(session)(WebhookDelivery)
        .values(
            webhook_id=webhook_id,
            shop=shop,
            topic=topic,
            product_id=product_id,
            triggered_at=triggered_at,
            product_updated_at=product_updated_at,
            received_at=now,
            payload_sha256=payload_sha256,
            status=status,
        )
        .on_conflict_do_nothing(index_elements=["webhook_id"])
        .returning(WebhookDelivery.id)
    )
    if inserted is None:  # this webhook id is recorded already (or concurrently, just now)
        return "duplicate"
    return status


def set_event_id(session: Session, webhook_id: str, event_id: str) -> None:
    """Store the id of the Prefect event emitted for an accepted delivery."""
    updated = session.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.webhook_id == webhook_id, WebhookDelivery.status == "accepted")
        .values(event_id=event_id)
        .execution_options(synchronize_session=False)
    ).rowcount
    if updated == 1:
        return
    status = session.scalar(select(WebhookDelivery.status).where(WebhookDelivery.webhook_id == webhook_id))
    if status is None:
        raise LookupError(f"no webhook delivery {webhook_id!r}")
    raise ValueError(f"webhook delivery {webhook_id!r} is {status}, not accepted")


def products_seen_since(session: Session, shop: str, since: datetime) -> dict[str, datetime]:
    """Product id → newest accepted version, for products whose version is ``>= since``.

    The reconciliation flow lists products Shopify says changed since ``since`` and
    re-shoots those missing here or seen here only at an older ``updated_at``.
    """
    since = _require_aware("since", since)
    version = _version()
    rows = session.execute(
        select(WebhookDelivery.product_id, func.max(version))
        .where(
            WebhookDelivery.shop == shop,
            WebhookDelivery.status == "accepted",
            version >= since,
        )
        .group_by(WebhookDelivery.product_id)
    )
    return {product_id: as_utc(newest) for product_id, newest in rows}
