"""Every write the pipeline makes to the catalog database, one small function each.

Functions take an open ``Session`` (see ``catalog.db.session_scope``) and never commit
themselves: the caller's transaction decides. State changes go through the state machine.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from catalog.exports import (  # noqa: F401  (the export claims live in catalog/exports.py)
    ExportClaim,
    ExportLeaseLost,
    claim_export,
    complete_export,
    release_export_lease,
    renew_export_lease,
)
from catalog.manifest import ManifestEntry
from catalog.models import Batch, QcResult, Render, ReviewDecision, Sku, SourceImage
from catalog.paths import UnsafeName, sku_dirname
from catalog.states import (
    SKU_TERMINAL,
    BatchState,
    SkuState,
    check_batch_transition,
    check_sku_transition,
)

SKU_COLUMN = Sku.__table__.c.sku.type.length  # 300
TEMPLATE_COLUMN = Sku.__table__.c.template.type.length  # 100


def create_batch(
    session: Session,
    *,
    batch_id: str,
    name: str,
    manifest_path: str,
    manifest_sha256: str,
    template: str,
    profiles: list[str],
    review_policy: str,
    flow_run_id: str | None = None,
) -> Batch:
    batch = Batch(
        id=batch_id,
        name=name,
        manifest_path=manifest_path,
        manifest_sha256=manifest_sha256,
        template=template,
        profiles=list(profiles),
        review_policy=review_policy,
        state=BatchState.created.value,
        flow_run_id=flow_run_id,
    )
    session.add(batch)
    session.flush()
    return batch


def find_batch(session: Session, batch_id: str) -> Batch | None:
    return session.get(Batch, batch_id, with_for_update=True)


def set_batch_state(session: Session, batch_id: str, state: BatchState, error: str | None = None) -> Batch:
    batch = session.get(Batch, batch_id, with_for_update=True)
    if batch is None:
        raise LookupError(f"no batch {batch_id!r}")
    batch.state = check_batch_transition(batch.state, state).value
    if error is not None:
        batch.error = error
    return batch


def add_skus(session: Session, batch_id: str, entries: Iterable[ManifestEntry], default_template: str) -> list[Sku]:
    """One SKU row per manifest entry; entries with a problem start (and end) ``failed``.

    A failed row whose id cannot be stored as written (a duplicate, none at all, longer than
    the column) is stored as ``"<id> (row N)"``, so the batch records it instead of failing."""
    entries = list(entries)
    valid = {e.sku for e in entries if not e.problem}
    taken: set[str] = set()
    rows = []
    for position, entry in enumerate(entries):
        problem = entry.problem
        try:
            dirname = sku_dirname(entry.sku)
        except UnsafeName as exc:
            dirname, problem = f"row-{entry.row}", problem or str(exc)
        template = entry.template or default_template
        if len(template) > TEMPLATE_COLUMN:
            problem = problem or f"template name is {len(template)} characters long (at most {TEMPLATE_COLUMN})"
            template = template[:TEMPLATE_COLUMN]
        sku = entry.sku or f"(row {entry.row})"
        if problem and (sku in valid or sku in taken or len(sku) > SKU_COLUMN):
            sku = f"{sku[: SKU_COLUMN - 16]} (row {entry.row})"
        taken.add(sku)
        row = Sku(
            batch_id=batch_id,
            position=position,
            sku=sku,
            dirname=dirname,
            title=entry.title,
            template=template,
            priority=entry.priority,
            source_path=str(entry.image) if entry.image else None,
            state=SkuState.failed.value if problem else SkuState.pending.value,
            reason=problem,
            timings={},
            shopify_product_id=entry.shopify_product_id,
        )
        session.add(row)
        rows.append(row)
    session.flush()
    return rows


def set_sku_state(session: Session, sku_id: int, state: SkuState, reason: str | None = None) -> Sku:
    sku = session.get(Sku, sku_id, with_for_update=True)
    if sku is None:
        raise LookupError(f"no SKU row {sku_id}")
    sku.state = check_sku_transition(sku.state, state, sku=sku.sku).value
    if reason is not None:
        sku.reason = reason
    return sku


def fail_sku(session: Session, sku_id: int, reason: str) -> Sku:
    """Record a failure with its reason. A SKU already terminal keeps its state."""
    sku = session.get(Sku, sku_id, with_for_update=True)
    if sku is None:
        raise LookupError(f"no SKU row {sku_id}")
    if SkuState(sku.state) not in SKU_TERMINAL:
        sku.state = SkuState.failed.value
        sku.reason = reason
    return sku


def record_source(
    session: Session, sku_id: int, *, sha256: str, width: int, height: int, fmt: str, size: int
) -> SourceImage:
    image = session.scalar(select(SourceImage).where(SourceImage.sha256 == sha256))
    if image is None:
        image = SourceImage(sha256=sha256, width=width, height=height, format=fmt, size_bytes=size)
        try:
            with session.begin_nested():
                session.add(image)
        except IntegrityError:  # another batch recorded the same content first
            image = session.scalars(select(SourceImage).where(SourceImage.sha256 == sha256)).one()
    session.get(Sku, sku_id).source_image_id = image.id
    return image


def add_timing(session: Session, sku_id: int, stage: str, value: float | str) -> None:
    sku = session.get(Sku, sku_id)
    sku.timings = {**(sku.timings or {}), stage: value}


def record_render(
    session: Session,
    sku_id: int,
    *,
    attempt: int,
    profile: str,
    template: str,
    params: dict,
    model_versions: dict,
    seed: int | None,
    uri: str,
    content_sha256: str,
    segment_confidence: float | None,
) -> Render:
    sku = session.get(Sku, sku_id)
    sku.attempts = max(sku.attempts, attempt)
    render = Render(
        sku_id=sku_id,
        attempt=attempt,
        profile=profile,
        template=template,
        params=params,
        model_versions=model_versions,
        seed=seed,
        uri=uri,
        content_sha256=content_sha256,
        segment_confidence=segment_confidence,
    )
    session.add(render)
    session.flush()
    return render


def record_qc(
    session: Session,
    render_id: int,
    *,
    thresholds_version: str,
    status: str,
    metrics: dict,
    checks: list,
    failing: list[str],
) -> QcResult:
    result = QcResult(
        render_id=render_id,
        thresholds_version=thresholds_version,
        status=status,
        passed=status != "fail",
        metrics=metrics,
        checks=checks,
        failing=failing,
    )
    session.add(result)
    session.flush()
    return result


def record_review(
    session: Session, sku_id: int, *, decision: str, reviewer: str, note: str | None, round: int
) -> ReviewDecision:
    """One decision per SKU and round. Recording the same decision again (a replayed flow
    step) returns the stored row; a different decision for a decided round raises."""
    row = session.scalar(select(ReviewDecision).where(ReviewDecision.sku_id == sku_id, ReviewDecision.round == round))
    if row is not None:
        if (row.decision, row.reviewer, row.note) != (decision, reviewer, note):
            raise ValueError(
                f"SKU row {sku_id} already has a {row.decision!r} decision by {row.reviewer!r} in review round {round}"
            )
        return row
    row = ReviewDecision(sku_id=sku_id, decision=decision, reviewer=reviewer, note=note, round=round)
    session.add(row)
    session.flush()
    return row


def open_review_round(session: Session, batch_id: str) -> int:
    """Count one more review hold for the batch; returns its round number (1, 2, ...)."""
    batch = session.get(Batch, batch_id, with_for_update=True)
    if batch is None:
        raise LookupError(f"no batch {batch_id!r}")
    batch.review_round = (batch.review_round or 0) + 1
    return batch.review_round


def kept_attempt(sku: Sku) -> int | None:
    """The attempt a SKU entered review with (the best one, which export ships: not always
    the newest, when a retry came out worse), from its review item; None before review."""
    renders = ((sku.review_item or {}).get("outcome") or {}).get("renders") or []
    attempt = (renders[0].get("params") or {}).get("attempt") if renders else None
    return attempt if isinstance(attempt, int) else None


def store_review_item(session: Session, sku_id: int, item: dict) -> Sku:
    """Keep what the SKU entered review with (renders, QC, work-file paths) as JSON."""
    sku = session.get(Sku, sku_id, with_for_update=True)
    if sku is None:
        raise LookupError(f"no SKU row {sku_id}")
    sku.review_item = item
    return sku


def skus_in_states(session: Session, batch_id: str, states: Iterable[SkuState]) -> list[Sku]:
    wanted = [SkuState(s).value for s in states]
    return list(
        session.scalars(select(Sku).where(Sku.batch_id == batch_id, Sku.state.in_(wanted)).order_by(Sku.position))
    )


def batch_skus(session: Session, batch_id: str) -> list[Sku]:
    return list(session.scalars(select(Sku).where(Sku.batch_id == batch_id).order_by(Sku.position)))


def latest_qc(session: Session, sku_id: int, attempt: int | None = None) -> list[tuple[Render, QcResult | None]]:
    """One attempt's renders (one per profile) with their QC results: ``attempt``'s when it
    has renders (the attempt kept: ``kept_attempt``), else the newest attempt's."""
    renders = list(session.scalars(select(Render).where(Render.sku_id == sku_id).order_by(Render.id)))
    if not renders:
        return []
    attempts = {r.attempt for r in renders}
    last = attempt if attempt in attempts else max(attempts)
    out = []
    for render in (r for r in renders if r.attempt == last):
        qc = session.scalar(select(QcResult).where(QcResult.render_id == render.id).order_by(QcResult.id.desc()))
        out.append((render, qc))
    return out
