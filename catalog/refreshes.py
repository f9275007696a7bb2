"""Deferred Shopify refreshes, collected per shop for one off-peak batch (no Prefect here).

A bulk edit in the Shopify admin sends one webhook per product. When a shop's burst is
large enough to wait for the off-peak window (``catalog.offpeak.OffPeakWindow.plan_run``),
each product is recorded here (``record_pending``) instead of scheduling a run of its own,
and the shop's one batch at the window's start takes every product waiting for it
(``take_pending``) and records how each ended (``finish_pending``).

* One row per (shop, product, window): a product updated twice before its window keeps
  one row with the newest version's image URLs (an older version arriving late changes
  nothing: Shopify does not deliver in order). Equal or unknown versions: the later
  delivery wins.
* A batch takes rows of its shop whose window opened at or before its own (a window whose
  batch never ran is caught up by the next), that have no outcome yet and are free: not
  taken, taken by this same run (a retried run takes its rows again), or taken longer than
  ``stale_after`` ago by a run that never finished them (it crashed).

The functions take an open ``Session`` or ``Connection`` and never commit: the caller's
transaction decides. Timestamps must be timezone-aware; they are stored in UTC.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from sqlalchemy import Connection, and_, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from catalog.models import PendingRefresh
from catalog.webhooks import as_utc

Recorded = Literal["recorded", "older", "taken"]
Outcome = Literal["exported", "rejected", "failed"]
STALE_AFTER = timedelta(hours=12)  # a taken row without outcome after this: its run died
MAX_REASON = 1000


Executor = Session | Connection  # a Session's transaction, or a Connection's


def _conn(db: Executor) -> Connection:
    return db.connection() if isinstance(db, Session) else db


def _require_aware(name: str, value: datetime | None) -> datetime | None:
    if value is not None and value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got naive {value.isoformat()}")
    return as_utc(value)


@dataclass(frozen=True)
class PendingProduct:
    product_id: str
    image_urls: tuple[str, ...]
    product_updated_at: datetime | None
    window_start: datetime


def record_pending(
    db: Executor,
    *,
    shop: str,
    product_id: str,
    window_start: datetime,
    image_urls: list[str],
    product_updated_at: datetime | None,
    webhook_id: str | None,
    now: datetime,
) -> Recorded:
    """Put the product on its shop's list for the window opening at ``window_start``.

    ``recorded``: a new row, or the row updated to this (newer or equal) version.
    ``older``: the row holds a newer version; nothing changed. ``taken``: the window's
    batch already took the product; nothing changed (the caller refreshes it otherwise).
    One ``INSERT .. ON CONFLICT DO UPDATE .. WHERE`` decides, so two deliveries racing
    each other end as one row holding the newer version.
    """
    window_start = _require_aware("window_start", window_start)
    product_updated_at = _require_aware("product_updated_at", product_updated_at)
    now = _require_aware("now", now)
    conn = _conn(db)
    insert = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}.get(conn.dialect.name)
    if insert is None:
        raise ValueError(f"unsupported database dialect {conn.dialect.name!r}")
    table = PendingRefresh.__table__
    values = dict(
        shop=shop,
        product_id=product_id,
        window_start=window_start,
        image_urls=list(image_urls),
        product_updated_at=product_updated_at,
        webhook_id=webhook_id,
        recorded_at=now,
    )
    statement = insert(table).values(values)
    newer = or_(
        table.c.product_updated_at.is_(None),
        statement.excluded.product_updated_at.is_(None),
        statement.excluded.product_updated_at >= table.c.product_updated_at,
    )
    statement = statement.on_conflict_do_update(
        index_elements=["shop", "product_id", "window_start"],
        set_={
            name: statement.excluded[name] for name in ("image_urls", "product_updated_at", "webhook_id", "recorded_at")
        },
        where=and_(table.c.batch_run.is_(None), newer),
    ).returning(table.c.id)
    if conn.execute(statement).first() is not None:
        return "recorded"
    taken = conn.scalar(
        select(table.c.batch_run).where(
            table.c.shop == shop, table.c.product_id == product_id, table.c.window_start == window_start
        )
    )
    return "taken" if taken is not None else "older"


def take_pending(
    db: Executor,
    *,
    shop: str,
    window_start: datetime,
    run_id: str,
    now: datetime,
    stale_after: timedelta = STALE_AFTER,
) -> list[PendingProduct]:
    """Take every free product of ``shop`` waiting for this window or an earlier one, for
    the batch run ``run_id``; one per product (its newest version), in the order the
    products were first recorded."""
    window_start = _require_aware("window_start", window_start)
    now = _require_aware("now", now)
    table = PendingRefresh.__table__
    free = or_(table.c.batch_run.is_(None), table.c.batch_run == run_id, table.c.taken_at < now - stale_after)
    rows = (
        _conn(db)
        .execute(
            update(table)
            .where(table.c.shop == shop, table.c.window_start <= window_start, table.c.outcome.is_(None), free)
            .values(batch_run=run_id, taken_at=now)
            .returning(
                table.c.id,
                table.c.product_id,
                table.c.image_urls,
                table.c.product_updated_at,
                table.c.recorded_at,
                table.c.window_start,
            )
        )
        .all()
    )
    earliest = datetime.min.replace(tzinfo=now.tzinfo)

    def version(row) -> tuple[datetime, int]:
        return (as_utc(row.product_updated_at) or earliest, row.id)

    best: dict = {}  # product id -> its newest row; in the order products were first recorded
    for row in sorted(rows, key=lambda r: r.id):
        if row.product_id not in best or version(row) >= version(best[row.product_id]):
            best[row.product_id] = row
    return [
        PendingProduct(
            product_id=row.product_id,
            image_urls=tuple(row.image_urls),
            product_updated_at=as_utc(row.product_updated_at),
            window_start=as_utc(row.window_start),
        )
        for row in best.values()
    ]


def finish_pending(db: Executor, *, run_id: str, outcomes: dict[str, tuple[Outcome, str | None]]) -> int:
    """Record how each product the run took ended; returns the rows updated."""
    table = PendingRefresh.__table__
    done = 0
    for product_id, (outcome, reason) in outcomes.items():
        result = _conn(db).execute(
            update(table)
            .where(table.c.batch_run == run_id, table.c.product_id == product_id, table.c.outcome.is_(None))
            .values(outcome=outcome, reason=(reason or None) and reason[:MAX_REASON])
        )
        done += result.rowcount
    return done


def pending_rows(db: Executor, shop: str) -> list:
    """Every row of ``shop``, oldest first (what ops and tests read)."""
    table = PendingRefresh.__table__
    return list(_conn(db).execute(select(table).where(table.c.shop == shop).order_by(table.c.id)))
