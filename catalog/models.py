"""The catalog schema (SQLAlchemy 2). Alembic migrations in catalog/migrations mirror it.

One row per batch, per SKU in a batch, per distinct source image (by content hash), per
render attempt, per QC result, per review decision, per export and per webhook delivery.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    pass


class Batch(Base):
    __tablename__ = "batches"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    manifest_path: Mapped[str] = mapped_column(Text)
    manifest_sha256: Mapped[str] = mapped_column(String(64))
    template: Mapped[str] = mapped_column(String(100))
    profiles: Mapped[list] = mapped_column(JSON)
    review_policy: Mapped[str] = mapped_column(String(32), default="auto")
    state: Mapped[str] = mapped_column(String(32), default="created", index=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    flow_run_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    review_round: Mapped[int] = mapped_column(Integer, default=0, server_default="0")  # holds opened so far
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)

    skus: Mapped[list[Sku]] = relationship(back_populates="batch", order_by="Sku.position")


class SourceImage(Base):
    __tablename__ = "source_images"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    format: Mapped[str] = mapped_column(String(16))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Sku(Base):
    __tablename__ = "skus"
    __table_args__ = (UniqueConstraint("batch_id", "sku", name="uq_skus_batch_sku"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    batch_id: Mapped[str] = mapped_column(ForeignKey("batches.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer)  # row order in the manifest
    sku: Mapped[str] = mapped_column(String(300))
    dirname: Mapped[str] = mapped_column(String(100))  # safe folder/key name for this SKU
    title: Mapped[str | None] = mapped_column(Text, nullable=True)
    template: Mapped[str] = mapped_column(String(100))
    priority: Mapped[str] = mapped_column(String(16), default="standard")
    source_path: Mapped[str | None] = mapped_column(Text, nullable=True)
    source_image_id: Mapped[int | None] = mapped_column(ForeignKey("source_images.id"), nullable=True)
    state: Mapped[str] = mapped_column(String(32), default="pending", index=True)
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    timings: Mapped[dict] = mapped_column(JSON, default=dict)
    shopify_product_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # The rendered result the review shows and export ships (job, source, renders, QC and
    # their work-file paths), stored as it enters review so a later run can pick it up.
    review_item: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)

    batch: Mapped[Batch] = relationship(back_populates="skus")
    source_image: Mapped[SourceImage | None] = relationship()
    renders: Mapped[list[Render]] = relationship(back_populates="sku", order_by="Render.id")


class Render(Base):
    __tablename__ = "renders"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sku_id: Mapped[int] = mapped_column(ForeignKey("skus.id", ondelete="CASCADE"), index=True)
    attempt: Mapped[int] = mapped_column(Integer)
    profile: Mapped[str] = mapped_column(String(64))
    template: Mapped[str] = mapped_column(String(100))
    params: Mapped[dict] = mapped_column(JSON)
    model_versions: Mapped[dict] = mapped_column(JSON)
    seed: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    uri: Mapped[str] = mapped_column(Text)  # where the rendered canvas lies
    content_sha256: Mapped[str] = mapped_column(String(64))
    segment_confidence: Mapped[float | None] = mapped_column(Float, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    sku: Mapped[Sku] = relationship(back_populates="renders")
    qc_results: Mapped[list[QcResult]] = relationship(back_populates="render")


class QcResult(Base):
    __tablename__ = "qc_results"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    render_id: Mapped[int] = mapped_column(ForeignKey("renders.id", ondelete="CASCADE"), index=True)
    thresholds_version: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(8))  # pass | warn | fail
    passed: Mapped[bool] = mapped_column(Boolean)
    metrics: Mapped[dict] = mapped_column(JSON)
    checks: Mapped[list] = mapped_column(JSON)
    failing: Mapped[list] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    render: Mapped[Render] = relationship(back_populates="qc_results")


class ReviewDecision(Base):
    """One decision per SKU per review round: by a person (the UI form) or a policy."""

    __tablename__ = "review_decisions"
    __table_args__ = (UniqueConstraint("sku_id", "round", name="uq_review_sku_round"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sku_id: Mapped[int] = mapped_column(ForeignKey("skus.id", ondelete="CASCADE"), index=True)
    round: Mapped[int] = mapped_column(Integer, default=0)
    decision: Mapped[str] = mapped_column(String(16))  # approve | reject | rerender
    reviewer: Mapped[str] = mapped_column(String(200))
    note: Mapped[str | None] = mapped_column(Text, nullable=True)
    decided_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Export(Base):
    """One image delivered (or being delivered) to one destination.

    The unique key makes exports exactly-once: the same bytes to the same destination key
    are recorded once, and a re-run finds the row instead of uploading again. Who may write
    the key meanwhile is ``ExportLease``'s to say.
    """

    __tablename__ = "exports"
    __table_args__ = (
        UniqueConstraint("destination", "destination_key", "content_sha256", name="uq_exports_dest_content"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sku_id: Mapped[int] = mapped_column(ForeignKey("skus.id", ondelete="CASCADE"), index=True)
    render_id: Mapped[int | None] = mapped_column(ForeignKey("renders.id"), nullable=True)
    profile: Mapped[str] = mapped_column(String(64))
    destination: Mapped[str] = mapped_column(String(200))  # e.g. local:/abs/dir, s3://bucket
    destination_key: Mapped[str] = mapped_column(Text)
    content_sha256: Mapped[str] = mapped_column(String(64))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending | done
    external_id: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class ExportLease(Base):
    """Who may write one destination key now: one row per (destination, key), whatever bytes.

    A worker takes the lease by compare-and-set (``catalog.exports.claim_export``) before
    it uploads, renews it while it works and clears it when it completes or gives up. Only an
    expired lease may be taken over, so two runs never write one key (or one Shopify media
    slot, whose key names the SKU and profile) at once (docs/ARCHITECTURE.md#storage).
    """

    __tablename__ = "export_leases"
    __table_args__ = (UniqueConstraint("destination", "destination_key", name="uq_export_leases_slot"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    destination: Mapped[str] = mapped_column(String(200))
    destination_key: Mapped[str] = mapped_column(Text)
    owner: Mapped[str | None] = mapped_column(String(120), nullable=True)  # host:pid:random
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    export_id: Mapped[int | None] = mapped_column(ForeignKey("exports.id", ondelete="SET NULL"), nullable=True)


class WebhookDelivery(Base):
    """One Shopify delivery (or reconciliation replay), recorded once: unique on the
    webhook id, on the content (``content_key``: shop, product, ``updated_at`` and body
    hash) and on Shopify's event id where the delivery had one. Rows from before
    migration 0003 have no content key or event id (NULLs never collide)."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        UniqueConstraint("content_key", name="uq_webhook_deliveries_content_key"),
        UniqueConstraint("shop", "shopify_event_id", name="uq_webhook_deliveries_event"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    webhook_id: Mapped[str] = mapped_column(String(200), unique=True)
    shop: Mapped[str] = mapped_column(String(255), index=True)
    topic: Mapped[str] = mapped_column(String(64))
    product_id: Mapped[str] = mapped_column(String(64), index=True)
    triggered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    product_updated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    payload_sha256: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))  # accepted | stale
    event_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    content_key: Mapped[str | None] = mapped_column(String(64), nullable=True)
    shopify_event_id: Mapped[str | None] = mapped_column(String(200), nullable=True)


class OutboxEvent(Base):
    """A Prefect event written in its delivery's transaction and sent by the relay
    (docs/ARCHITECTURE.md#intake). ``sent_at`` is set once the Prefect API accepted it;
    ``claimed_until`` is a relay's short lease while it sends."""

    __tablename__ = "event_outbox"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    event_id: Mapped[str] = mapped_column(String(64), unique=True)
    delivery_id: Mapped[int] = mapped_column(ForeignKey("webhook_deliveries.id", ondelete="CASCADE"), index=True)
    event: Mapped[dict] = mapped_column(JSON)  # the Prefect event, as the API takes it
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True, index=True)
    claimed_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)


class PendingRefresh(Base):
    """A Shopify product refresh deferred to an off-peak window (a bulk edit's burst),
    waiting for its shop's one batch at the window's start (``catalog/refreshes.py``).

    One row per shop, product and window: a product updated again before the window keeps
    one row, with the newest version's image URLs. ``batch_run`` is the flow run that took
    it (``taken_at``); ``outcome`` (``exported``, ``rejected``, ``failed``) and ``reason``
    say how it ended."""

    __tablename__ = "pending_refreshes"
    __table_args__ = (UniqueConstraint("shop", "product_id", "window_start", name="uq_pending_refreshes_product"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    shop: Mapped[str] = mapped_column(String(255), index=True)
    product_id: Mapped[str] = mapped_column(String(64))
    window_start: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    image_urls: Mapped[list] = mapped_column(JSON)
    product_updated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    webhook_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    batch_run: Mapped[str | None] = mapped_column(String(64), nullable=True)
    taken_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    outcome: Mapped[str | None] = mapped_column(String(16), nullable=True)
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
