"""Export claims: which worker may write a destination key now (docs/ARCHITECTURE.md#storage).

An ``exports`` row per (destination, key, bytes) records what was delivered; an
``export_leases`` row per (destination, key) says who may write that key now and until when.
Functions take an open ``Session`` and never commit themselves, like ``catalog.repository``
(which re-exports them).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from sqlalchemy import func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from catalog.models import Export, ExportLease


@dataclass(frozen=True)
class ExportClaim:
    """What ``claim_export`` found: ``done`` (skip the upload), ``claimed`` (this owner holds
    the key's lease: upload, then complete) or ``busy`` (another owner's lease is live)."""

    export_id: int
    state: Literal["done", "claimed", "busy"]
    external_id: str | None = None
    recover: bool = False  # claimed after an attempt that did not finish: clean up first
    holder: str | None = None  # busy: who holds the lease, and until when
    expires_at: datetime | None = None


class ExportLeaseLost(RuntimeError):
    """The lease expired and another worker took the key over before this one completed."""


def db_now(session: Session) -> datetime:
    """The database's clock (PostgreSQL's ``now()``), so workers on hosts whose clocks
    disagree still agree on when a lease expires; SQLite lives on one host: its clock."""
    if session.get_bind().dialect.name == "sqlite":
        return datetime.now(UTC)
    return session.scalar(select(func.now()))


def claim_export(
    session: Session,
    *,
    sku_id: int,
    render_id: int | None,
    profile: str,
    destination: str,
    key: str,
    content_sha256: str,
    size: int,
    owner: str,
    lease_s: float,
) -> ExportClaim:
    """Find or create the export row for these bytes at this destination key, then take the
    key's lease for ``owner`` by compare-and-set.

    The lease is per (destination, key), not per bytes: two renders of one SKU never write
    one key (one Shopify media slot) at once. ``UPDATE ... WHERE`` the lease is free, expired
    or already ``owner``'s, checking the row count: PostgreSQL re-checks the condition after
    a concurrent writer commits, SQLite's ``BEGIN IMMEDIATE`` serialises the transactions.
    A ``pending`` row whose lease is free or expired is an attempt that crashed or failed:
    the claim says ``recover`` so the caller cleans up before it writes again.
    """
    query = select(Export).where(
        Export.destination == destination,
        Export.destination_key == key,
        Export.content_sha256 == content_sha256,
    )
    row, created = session.scalar(query), False
    if row is None:
        row = Export(
            sku_id=sku_id,
            render_id=render_id,
            profile=profile,
            destination=destination,
            destination_key=key,
            content_sha256=content_sha256,
            size_bytes=size,
            status="pending",
        )
        try:
            with session.begin_nested():
                session.add(row)
            created = True
        except IntegrityError:  # a concurrent batch claimed it first
            row = session.scalars(query).one()
    if row.status == "done":
        return ExportClaim(row.id, "done", external_id=row.external_id)
    lease = _lease_row(session, destination, key)
    previous = lease.owner
    now = db_now(session)
    taken = session.execute(
        update(ExportLease)
        .where(
            ExportLease.id == lease.id,
            or_(ExportLease.owner.is_(None), ExportLease.expires_at < now, ExportLease.owner == owner),
        )
        .values(owner=owner, expires_at=now + timedelta(seconds=lease_s), export_id=row.id)
        .execution_options(synchronize_session=False)
    )
    if taken.rowcount != 1:
        session.refresh(lease)
        return ExportClaim(row.id, "busy", holder=lease.owner, expires_at=lease.expires_at)
    session.refresh(row)  # the holder we waited for may have completed these very bytes
    if row.status == "done":
        _clear(session, lease.id, owner)
        return ExportClaim(row.id, "done", external_id=row.external_id)
    return ExportClaim(row.id, "claimed", recover=not created or previous not in (None, owner))


def renew_export_lease(session: Session, *, destination: str, key: str, owner: str, lease_s: float) -> bool:
    """Extend ``owner``'s lease on the key; False when it is no longer ``owner``'s."""
    now = db_now(session)
    renewed = session.execute(
        update(ExportLease)
        .where(
            ExportLease.destination == destination,
            ExportLease.destination_key == key,
            ExportLease.owner == owner,
        )
        .values(expires_at=now + timedelta(seconds=lease_s))
        .execution_options(synchronize_session=False)
    )
    return renewed.rowcount == 1


def release_export_lease(session: Session, *, destination: str, key: str, owner: str) -> bool:
    """Give the key up without completing (the upload failed): the next claim may take it at
    once, and recovers. False when ``owner`` no longer held it."""
    lease = session.scalar(
        select(ExportLease).where(ExportLease.destination == destination, ExportLease.destination_key == key)
    )
    return lease is not None and _clear(session, lease.id, owner)


def complete_export(session: Session, export_id: int, external_id: str | None, *, owner: str) -> Export:
    """Mark the row done and free its key, if ``owner`` still holds the key's lease.

    Raises ``ExportLeaseLost`` when another worker took the key over meanwhile (unless that
    worker already completed these same bytes: then the row is done either way).
    """
    row = session.get(Export, export_id, with_for_update=True)
    if row is None:
        raise LookupError(f"no export row {export_id}")
    lease = _lease_row(session, row.destination, row.destination_key)
    if not _clear(session, lease.id, owner):
        session.refresh(row)
        if row.status == "done":
            return row
        session.refresh(lease)
        raise ExportLeaseLost(
            f"export of {row.destination_key} to {row.destination}: the lease expired and "
            f"{lease.owner or 'another worker'} took the key over before this upload completed"
        )
    row.status = "done"
    row.external_id = external_id
    row.completed_at = datetime.now(UTC)
    return row


def _lease_row(session: Session, destination: str, key: str) -> ExportLease:
    query = select(ExportLease).where(ExportLease.destination == destination, ExportLease.destination_key == key)
    lease = session.scalar(query)
    if lease is None:
        try:
            with session.begin_nested():
                lease = ExportLease(destination=destination, destination_key=key)
                session.add(lease)
        except IntegrityError:  # another worker created it first
            lease = session.scalars(query).one()
    return lease


def _clear(session: Session, lease_id: int, owner: str) -> bool:
    cleared = session.execute(
        update(ExportLease)
        .where(ExportLease.id == lease_id, ExportLease.owner == owner)
        .values(owner=None, expires_at=None)
        .execution_options(synchronize_session=False)
    )
    return cleared.rowcount == 1
