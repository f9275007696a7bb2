"""Shopify webhook deliveries: payload parsing, exactly-once recording, staleness, the
event outbox, reads.

``parse_product`` reads the fields we use from a products/create|update body; a hostile
body (deep nesting, huge numbers, malformed URLs) is an ``InvalidDelivery``, never another
exception. The other functions take an open ``Session`` (``catalog.db.session_scope``) or
``Connection`` and never commit themselves: the caller's transaction decides. All timestamps must be
timezone-aware; they are stored in UTC (SQLite keeps no offset, so anything else would be
misread).

A delivery's *version* is the product's ``updated_at`` from the signed payload, never an
unsigned header. A delivery is **stale** when an accepted delivery for the same shop and
product already carries a strictly newer version: Shopify does not deliver in order, and
re-shooting an old state of the product would overwrite a newer one. Equal versions are
accepted (Shopify's ``updated_at`` has one-second resolution, so two real edits can share
one); downstream work is idempotent. The stale check is a read before the insert, so two
deliveries of different versions that race each other can both be accepted; the dedupe
(webhook id, content, Shopify event id: unique constraints) cannot be raced.

**Outbox** (docs/ARCHITECTURE.md#intake): an accepted delivery's Prefect event is written
to ``event_outbox`` in the same transaction. A relay claims pending events for a short
lease, sends them and stamps them ``sent_at`` (``claim_pending``, ``mark_sent``,
``mark_failed``). The ``postgres_*_statement(s)`` functions give the same PostgreSQL
statements compiled for asyncpg, which the receiver runs on its event loop.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, Literal
from urllib.parse import urlsplit

from sqlalchemy import (
    JSON,
    Connection,
    DateTime,
    Integer,
    String,
    and_,
    any_,
    bindparam,
    case,
    func,
    literal,
    null,
    or_,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from catalog.models import OutboxEvent, WebhookDelivery

DeliveryStatus = Literal["accepted", "duplicate", "stale"]
MAX_URL_LENGTH = 2048
MAX_ERROR_LENGTH = 500


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
    try:  # urlsplit and .hostname raise ValueError on e.g. "http://[::1" or a bad port
        parts = urlsplit(value)
        host = parts.hostname
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(host) and " " not in value


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
    except RecursionError as exc:  # nesting deeper than the interpreter's stack
        raise InvalidDelivery("body is nested too deeply") from exc
    except ValueError as exc:  # an integer over sys.get_int_max_str_digits() digits
        raise InvalidDelivery("body holds a number too large to read") from exc
    if not isinstance(product, dict):
        raise InvalidDelivery("body is not a JSON object")
    product_id = product.get("id")
    if isinstance(product_id, bool) or not isinstance(product_id, int | str) or product_id == "":
        raise InvalidDelivery("product id missing or not an integer/string")
    if isinstance(product_id, int) and not 0 < product_id < 10**20:
        raise InvalidDelivery("product id is out of range")
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


Executor = Session | Connection  # a Session's transaction, or a Connection's (cheaper)


def _conn(db: Executor) -> Connection:
    return db.connection() if isinstance(db, Session) else db


def _insert(db: Executor):
    dialect = _conn(db).dialect.name
    if dialect == "postgresql":
        return postgresql.insert
    if dialect == "sqlite":
        return sqlite.insert
    raise ValueError(f"unsupported database dialect {dialect!r}")


@lru_cache(maxsize=4)
def _recording_statements(dialect: str):
    """The two INSERTs of ``record_delivery``, built once per dialect with bound
    parameters (building a statement costs more than running it)."""
    insert = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}[dialect]
    deliveries = WebhookDelivery.__table__

    def param(name: str, **kw):  # not a column's own name: SQLAlchemy reserves those
        return bindparam(f"p_{name}", **kw)

    version = param("product_updated_at", type_=DateTime(timezone=True))
    newest = (
        select(func.max(deliveries.c.product_updated_at))
        .where(
            deliveries.c.shop == param("shop"),
            deliveries.c.product_id == param("product_id"),
            deliveries.c.status == "accepted",
        )
        .scalar_subquery()
    )
    stale = version < newest  # NULL (so not stale) without a version or an accepted one
    plain = ("webhook_id", "shop", "topic", "product_id", "received_at", "payload_sha256", "content_key")
    values = {name: param(name) for name in (*plain, "shopify_event_id")}
    values["triggered_at"] = param("triggered_at", type_=DateTime(timezone=True))
    values["product_updated_at"] = version
    values["status"] = case((stale, literal("stale")), else_=literal("accepted"))
    values["event_id"] = case((stale, null()), else_=param("event_id", type_=String()))
    delivery = insert(deliveries).values(values).on_conflict_do_nothing()
    if dialect == "sqlite":  # two statements in the caller's transaction
        return delivery.returning(deliveries.c.id, deliveries.c.status), insert(OutboxEvent.__table__)
    # PostgreSQL: one statement (its own transaction under autocommit), one round trip
    inserted = delivery.returning(deliveries.c.id, deliveries.c.status, deliveries.c.event_id).cte("delivery")
    queued = select(
        inserted.c.event_id,
        inserted.c.id,
        param("event", type_=JSON()),
        param("received_at", type_=DateTime(timezone=True)),
        literal(0),
    ).where(inserted.c.event_id.is_not(None))
    columns = ["event_id", "delivery_id", "event", "created_at", "attempts"]  # no Python defaults in a CTE
    outbox = insert(OutboxEvent.__table__).from_select(columns, queued)
    return select(inserted.c.id, inserted.c.status).add_cte(outbox.cte("outbox")), None


def content_key(shop: str, product_id: str, updated_at: datetime | None, payload_sha256: str) -> str:
    """What makes two deliveries the same content, whatever their webhook ids."""
    version = updated_at.astimezone(UTC).isoformat() if updated_at is not None else ""
    return hashlib.sha256(f"{shop}\n{product_id}\n{version}\n{payload_sha256}".encode()).hexdigest()


def _newest_accepted(shop: str, product_id: str):
    deliveries = WebhookDelivery.__table__.c
    return (
        select(func.max(deliveries.product_updated_at))
        .where(deliveries.shop == shop, deliveries.product_id == product_id, deliveries.status == "accepted")
        .scalar_subquery()
    )


def newest_accepted_version(db: Executor, shop: str, product_id: str) -> datetime | None:
    """The newest version among accepted deliveries for one product, or None."""
    return as_utc(_conn(db).scalar(select(_newest_accepted(shop, product_id))))


def recording_params(
    *,
    webhook_id: str,
    shop: str,
    topic: str,
    product_id: str,
    triggered_at: datetime | None,
    product_updated_at: datetime | None,
    payload_sha256: str,
    now: datetime,
    shopify_event_id: str | None = None,
    event_id: str | None = None,
) -> dict[str, Any]:
    """The bound parameters of ``record_delivery``'s statement (``p_`` names), the event
    left out: it goes in as ``p_event``."""
    triggered_at = _require_aware("triggered_at", triggered_at)
    product_updated_at = _require_aware("product_updated_at", product_updated_at)
    return {
        "p_webhook_id": webhook_id,
        "p_shop": shop,
        "p_topic": topic,
        "p_product_id": product_id,
        "p_triggered_at": triggered_at,
        "p_product_updated_at": product_updated_at,
        "p_received_at": _require_aware("now", now),
        "p_payload_sha256": payload_sha256,
        "p_event_id": event_id,
        "p_content_key": content_key(shop, product_id, product_updated_at, payload_sha256),
        "p_shopify_event_id": shopify_event_id,
    }


def record_delivery(
    db: Executor,
    *,
    webhook_id: str,
    shop: str,
    topic: str,
    product_id: str,
    triggered_at: datetime | None,
    product_updated_at: datetime | None,
    payload_sha256: str,
    now: datetime,
    shopify_event_id: str | None = None,
    event: dict[str, Any] | None = None,
) -> DeliveryStatus:
    """Record one delivery once; say whether it is new, a replay, or older than one we took.

    ``duplicate``: a delivery with this webhook id, this content or this Shopify event id
    exists (nothing is written). ``stale``: stored with status ``stale``. ``accepted``:
    stored with status ``accepted`` and, when ``event`` is given (a JSON-ready Prefect
    event with an ``id``), the event is put in the outbox in the same transaction.

    One ``INSERT .. ON CONFLICT DO NOTHING RETURNING`` (any unique constraint) decides the
    status in SQL (a subquery for the newest accepted version): a concurrent insert of
    the same delivery waits for the other transaction and then ends as ``duplicate``, and
    the caller's transaction stays usable. (Not a savepoint: with pysqlite's default
    transaction handling a savepoint opened before any other write starts the
    transaction, and releasing it commits everything, so a later rollback by the caller
    would keep the row.) ``triggered_at`` is stored for the record only. Core statements,
    not the ORM; the receiver runs the PostgreSQL statement on asyncpg
    (``postgres_recording_statement``).
    """
    event_id = str(event["id"]) if event is not None else None
    params = recording_params(
        webhook_id=webhook_id,
        shop=shop,
        topic=topic,
        product_id=product_id,
        triggered_at=triggered_at,
        product_updated_at=product_updated_at,
        payload_sha256=payload_sha256,
        now=now,
        shopify_event_id=shopify_event_id,
        event_id=event_id,
    )
    conn = _conn(db)
    delivery, outbox = _recording_statements(conn.dialect.name)
    row = conn.execute(delivery, {**params, "p_event": event}).first()
    if row is None:  # recorded already (or concurrently, just now)
        return "duplicate"
    delivery_id, recorded = row
    if outbox is not None and recorded == "accepted" and event_id is not None:
        created = params["p_received_at"]
        conn.execute(outbox, {"event_id": event_id, "delivery_id": delivery_id, "event": event, "created_at": created})
    return recorded


AsyncpgStatement = tuple[str, tuple[str, ...], dict[str, Any]]


def _asyncpg_statement(statement) -> AsyncpgStatement:
    """A Core statement as asyncpg takes it: SQL text with ``$n`` placeholders, the
    parameter name for each ``n`` in order, and the values of its constant parameters
    (SQLAlchemy binds literals as parameters too; the caller gives the others)."""
    compiled = statement.compile(dialect=postgresql.asyncpg.dialect())
    constants = {name: bind.value for name, bind in compiled.binds.items() if not bind.required}
    return str(compiled), tuple(compiled.positiontup), constants


@lru_cache(maxsize=1)
def postgres_recording_statement() -> AsyncpgStatement:
    """``record_delivery``'s PostgreSQL statement (the delivery and its outbox event, one
    statement) for a caller on asyncpg (the receiver's event loop): SQL, the order of its
    parameters, its constants. The parameters: the constants, ``recording_params`` and
    ``p_event``, the event as JSON text (or None). No row for a duplicate, else one:
    (delivery id, ``accepted`` | ``stale``). Outside a transaction it is its own."""
    return _asyncpg_statement(_recording_statements("postgresql")[0])


@lru_cache(maxsize=1)
def postgres_unsent_statement() -> AsyncpgStatement:
    """``unsent_count`` for asyncpg (one row: the count)."""
    return _asyncpg_statement(_unsent_statement())


@lru_cache(maxsize=1)
def _relay_statements():
    """The relay's claim and mark-sent UPDATEs, built once with bound parameters."""
    outbox = OutboxEvent.__table__.c
    now = bindparam("now_", type_=DateTime(timezone=True))
    free = and_(outbox.sent_at.is_(None), or_(outbox.claimed_until.is_(None), outbox.claimed_until < now))
    oldest = select(outbox.id).where(free).order_by(outbox.id).limit(bindparam("limit_")).scalar_subquery()
    claim = (
        update(OutboxEvent.__table__)
        .where(outbox.id.in_(oldest), free)  # `free` again: re-checked on a row another relay just took
        .values(claimed_until=bindparam("lease_until_", type_=DateTime(timezone=True)))
        .returning(outbox.id, outbox.event)
    )
    sent = (
        update(OutboxEvent.__table__)
        .where(outbox.id.in_(bindparam("ids_", expanding=True)))
        .values(sent_at=now, claimed_until=null(), attempts=outbox.attempts + 1)
    )
    return claim, sent


@lru_cache(maxsize=1)
def postgres_relay_statements() -> dict[str, AsyncpgStatement]:
    """The relay's statements for asyncpg (the receiver's event loop), as ``claim_pending``,
    ``mark_sent`` and ``mark_failed`` run them: ``claim`` (``now_``, ``lease_until_``,
    ``limit_``; rows of outbox id and the event as JSON text), ``sent`` (``ids_``,
    ``now_``), ``failed`` (``ids_``, ``retry_at_``, ``error_``)."""
    outbox = OutboxEvent.__table__.c
    ids = bindparam("ids_", type_=postgresql.ARRAY(Integer))
    sent = (
        update(OutboxEvent.__table__)
        .where(outbox.id == any_(ids))
        .values(
            sent_at=bindparam("now_", type_=DateTime(timezone=True)), claimed_until=null(), attempts=outbox.attempts + 1
        )
    )
    failed = (
        update(OutboxEvent.__table__)
        .where(outbox.id == any_(ids), outbox.sent_at.is_(None))
        .values(
            claimed_until=bindparam("retry_at_", type_=DateTime(timezone=True)),
            attempts=outbox.attempts + 1,
            last_error=bindparam("error_", type_=String()),
        )
    )
    statements = {"claim": _relay_statements()[0], "sent": sent, "failed": failed}
    return {name: _asyncpg_statement(statement) for name, statement in statements.items()}


def claim_pending(db: Executor, *, now: datetime, lease_until: datetime, limit: int) -> list[tuple[int, dict]]:
    """Claim up to ``limit`` unsent events nobody holds a lease on, oldest first, until
    ``lease_until``: (outbox id, event). Commit before sending, so other relays skip them."""
    params = {"now_": _require_aware("now", now), "lease_until_": _require_aware("lease_until", lease_until)}
    rows = _conn(db).execute(_relay_statements()[0], {**params, "limit_": limit}).all()
    return sorted((row_id, event) for row_id, event in rows)


def mark_sent(db: Executor, ids: list[int], now: datetime) -> None:
    """The Prefect API accepted these events."""
    _conn(db).execute(_relay_statements()[1], {"ids_": ids, "now_": _require_aware("now", now)})


def mark_failed(db: Executor, ids: list[int], *, error: str, retry_at: datetime) -> None:
    """Sending failed: keep them pending, not before ``retry_at``, with the reason."""
    _conn(db).execute(
        update(OutboxEvent)
        .where(OutboxEvent.id.in_(ids), OutboxEvent.sent_at.is_(None))
        .values(
            claimed_until=_require_aware("retry_at", retry_at),
            attempts=OutboxEvent.attempts + 1,
            last_error=error[:MAX_ERROR_LENGTH],
        )
        .execution_options(synchronize_session=False)
    )


def _unsent_statement():
    return select(func.count()).select_from(OutboxEvent).where(OutboxEvent.sent_at.is_(None))


def unsent_count(db: Executor) -> int:
    return _conn(db).scalar(_unsent_statement()) or 0


def products_seen_since(session: Session, shop: str, since: datetime) -> dict[str, datetime]:
    """Product id → newest accepted version, for products whose version is ``>= since``.

    The reconciliation flow lists products Shopify says changed since ``since`` and
    re-shoots those missing here or seen here only at an older ``updated_at``. An accepted
    delivery whose event is still in the outbox counts as seen: the relay (or the
    reconciliation's own relay pass) sends it.
    """
    since = _require_aware("since", since)
    version = WebhookDelivery.product_updated_at
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
