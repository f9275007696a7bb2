"""Every write the pipeline makes to the catalog database, one small function each.

Functions take an open ``Session`` (see ``catalog.db.session_scope``) and never commit
themselves: the caller's transaction decides. State changes go through the state machine.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import insert, select
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
from catalog.models import Batch, Export, QcResult, Render, ReviewDecision, Sku, SourceImage
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


def skus_by_id(session: Session, sku_ids: Iterable[int], *, lock: bool = True) -> dict[int, Sku]:
    """The SKU rows with these ids, in one query (locked for update: ``FOR UPDATE`` on
    PostgreSQL, as ``set_sku_state`` takes them). A missing id raises ``LookupError``."""
    wanted = sorted(set(sku_ids))
    query = select(Sku).where(Sku.id.in_(wanted)) if wanted else None
    rows = {} if query is None else {r.id: r for r in session.scalars(query.with_for_update() if lock else query)}
    missing = [i for i in wanted if i not in rows]
    if missing:
        raise LookupError(f"no SKU row {missing[0]}")
    return rows


def move_sku(sku: Sku, state: SkuState, reason: str | None = None) -> Sku:
    """``set_sku_state`` on a row already loaded (``skus_by_id``): no query of its own."""
    sku.state = check_sku_transition(sku.state, state, sku=sku.sku).value
    if reason is not None:
        sku.reason = reason
    return sku


def known_sources(session: Session, shas: Iterable[str]) -> dict[str, SourceImage]:
    """The source photos already recorded with these sha256s, in one query."""
    wanted = sorted(set(shas))
    if not wanted:
        return {}
    return {r.sha256: r for r in session.scalars(select(SourceImage).where(SourceImage.sha256.in_(wanted)))}


def record_sources(session: Session, sources: list[dict]) -> None:
    """``record_source`` and the move to ``validated`` for many SKUs: one query for the
    photos already known, one insert for the new ones, one for the SKU rows.
    Each item: ``sku_id``, ``sha256``, ``width``, ``height``, ``fmt``, ``size``."""
    if not sources:
        return
    images = known_sources(session, (s["sha256"] for s in sources))
    for src in sources:
        if src["sha256"] not in images:  # a photo seen twice in one batch is one row
            images[src["sha256"]] = record_source(session, None, **{k: v for k, v in src.items() if k != "sku_id"})
    skus = skus_by_id(session, (s["sku_id"] for s in sources))
    for src in sources:
        sku = skus[src["sku_id"]]
        sku.source_image_id = images[src["sha256"]].id
        move_sku(sku, SkuState.validated)


def fail_skus(session: Session, reasons: dict[int, str]) -> None:
    """``fail_sku`` for many SKUs (row id -> reason), the rows loaded in one query."""
    for sku_id, sku in skus_by_id(session, reasons).items():
        if SkuState(sku.state) not in SKU_TERMINAL:
            sku.state = SkuState.failed.value
            sku.reason = reasons[sku_id]


def record_source(
    session: Session, sku_id: int | None, *, sha256: str, width: int, height: int, fmt: str, size: int
) -> SourceImage:
    image = session.scalar(select(SourceImage).where(SourceImage.sha256 == sha256))
    if image is None:
        image = SourceImage(sha256=sha256, width=width, height=height, format=fmt, size_bytes=size)
        try:
            with session.begin_nested():
                session.add(image)
        except IntegrityError:  # another batch recorded the same content first
            image = session.scalars(select(SourceImage).where(SourceImage.sha256 == sha256)).one()
    if sku_id is not None:
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


def record_renders(session: Session, renders: list[dict], qcs: list[dict]) -> None:
    """Many ``record_render`` + ``record_qc`` pairs in three statements: the render rows
    (each dict ``record_render``'s keywords plus ``sku_id``) in one executemany, their ids
    in one query, their QC rows (``record_qc``'s keywords, one per render, in the same
    order) in one executemany. The SKUs' ``attempts`` are the caller's to count, and their
    rows must be locked (``skus_by_id``): a SKU's newest render of an (attempt, profile) is
    the one inserted here."""
    if not renders:
        return
    session.execute(insert(Render), renders)
    ids = {}
    query = select(Render.id, Render.sku_id, Render.attempt, Render.profile).where(
        Render.sku_id.in_(sorted({r["sku_id"] for r in renders}))
    )
    for render_id, sku_id, attempt, profile in session.execute(query.order_by(Render.id)):
        ids[(sku_id, attempt, profile)] = render_id  # the newest wins
    rows = [
        {"render_id": ids[(r["sku_id"], r["attempt"], r["profile"])], "passed": q["status"] != "fail", **q}
        for r, q in zip(renders, qcs, strict=True)
    ]
    session.execute(insert(QcResult), rows)


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


def review_decisions(session: Session, sku_ids: Iterable[int], round: int) -> dict[int, ReviewDecision]:
    """The decisions already stored for these SKUs in ``round``, in one query."""
    wanted = sorted(set(sku_ids))
    if not wanted:
        return {}
    query = select(ReviewDecision).where(ReviewDecision.sku_id.in_(wanted), ReviewDecision.round == round)
    return {row.sku_id: row for row in session.scalars(query)}


def record_reviews(session: Session, decisions: list[dict], round: int) -> None:
    """``record_review`` for many SKUs (each dict: ``sku_id``, ``decision``, ``reviewer``,
    ``note``): one query for what the round already holds, one executemany for the rest."""
    stored = review_decisions(session, (d["sku_id"] for d in decisions), round)
    new = []
    for d in decisions:
        row = stored.get(d["sku_id"])
        if row is None:
            new.append({**d, "round": round})
        elif (row.decision, row.reviewer, row.note) != (d["decision"], d["reviewer"], d["note"]):
            raise ValueError(
                f"SKU row {d['sku_id']} already has a {row.decision!r} decision by {row.reviewer!r} "
                f"in review round {round}"
            )
    if new:
        session.execute(insert(ReviewDecision), new)


def open_review_round(session: Session, batch_id: str) -> int:
    """Count one more review hold for the batch; returns its round number (1, 2, ...)."""
    batch = session.get(Batch, batch_id, with_for_update=True)
    if batch is None:
        raise LookupError(f"no batch {batch_id!r}")
    batch.review_round = (batch.review_round or 0) + 1
    return batch.review_round


def done_exports(session: Session, wanted: Iterable[tuple[str, str, str]]) -> set[tuple[str, str, str]]:
    """Which of these (destination, key, content sha256) were delivered (an ``exports`` row
    ``done``: what ``claim_export`` skips), in one query per destination and 500 keys."""
    by_destination: dict[str, set[str]] = {}
    for destination, key, _ in wanted:
        by_destination.setdefault(destination, set()).add(key)
    found: set[tuple[str, str, str]] = set()
    for destination, keys in by_destination.items():
        ordered = sorted(keys)
        for start in range(0, len(ordered), 500):
            query = select(Export.destination, Export.destination_key, Export.content_sha256).where(
                Export.destination == destination,
                Export.destination_key.in_(ordered[start : start + 500]),
                Export.status == "done",
            )
            found.update((d, k, sha) for d, k, sha in session.execute(query))
    return found


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
