"""Bookkeeping in batches: a round of SKUs costs a handful of statements, not a few per SKU
(docs/ARCHITECTURE.md#unit-of-work), and writes what the one-SKU functions wrote."""

from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import event, select

from catalog import repository as repo
from catalog.db import get_engine, session_scope
from catalog.manifest import ManifestEntry
from catalog.models import QcResult, Render, ReviewDecision, Sku, SourceImage
from catalog.states import SkuState
from tasks.bookkeeping import record_attempts, record_failures, record_sources
from tasks.records import QcInfo, RenderInfo, RenderParams, SourceInfo
from tasks.results import ReviewItem, SkuOutcome
from tasks.review import enter_review


@contextmanager
def count_statements(url: str):
    """How many statements reach the database (an executemany counts once)."""
    counted = []
    engine = get_engine(url)

    def count(*_args, **_kw):
        counted.append(1)

    event.listen(engine, "before_cursor_execute", count)
    try:
        yield counted
    finally:
        event.remove(engine, "before_cursor_execute", count)


def _batch(url: str, batch_id: str, n: int) -> list[int]:
    with session_scope(url) as s:
        repo.create_batch(
            s,
            batch_id=batch_id,
            name=batch_id,
            manifest_path="m.csv",
            manifest_sha256="0" * 64,
            template="white_studio",
            profiles=["shopify", "amazon-main"],
            review_policy="auto",
        )
        rows = repo.add_skus(s, batch_id, [ManifestEntry(i + 1, f"SKU-{i}", Path(f"{i}.png")) for i in range(n)], "x")
        return [r.id for r in rows]


def _source(sku_id: int, sha: str) -> SourceInfo:
    return SourceInfo(sku_id=sku_id, sha256=sha, path=f"/w/{sha}", width=40, height=30, format="PNG", size_bytes=9)


def _outcome(sku_id: int, passed: bool, attempt: int = 1) -> SkuOutcome:
    params = RenderParams(attempt=attempt)
    renders, qcs = [], []
    for profile in ("shopify", "amazon-main"):
        path = f"/w/{sku_id}-{attempt}-{profile}.jpg"
        renders.append(
            RenderInfo(
                profile=profile,
                template="white_studio",
                path=path,
                sha256=f"{sku_id:064d}",
                scale=1.0,
                offset_x=0.0,
                offset_y=0.0,
                params=params,
            )
        )
        status = "pass" if passed else "fail"
        failing = [] if passed else ["edge.halo"]
        checks = [{"name": "edge.halo", "status": status, "reason": "halo"}]
        qcs.append(
            QcInfo(
                profile=profile,
                status=status,
                metrics={"m": 1.0},
                checks=checks,
                failing=failing,
                thresholds_version="t",
                encoded_path=path,
            )
        )
    return SkuOutcome.graded(
        sku_id, params, 0.9, f"/w/{sku_id}-mask.png", renders, qcs, {"segment": "u2netp@x"}, {"segment": 1.0}
    )


def _statements_for(url: str, batch_id: str, n: int) -> dict[str, int]:
    ids = _batch(url, batch_id, n)
    counts = {}
    with count_statements(url) as counted:
        record_sources.fn(url, [_source(i, f"{batch_id}-{i % 3}") for i in ids])  # photos shared between SKUs
    counts["sources"] = len(counted)
    outcomes = [_outcome(i, passed=k % 2 == 0) for k, i in enumerate(ids)]
    retried = [_outcome(i, passed=True, attempt=2) for k, i in enumerate(ids) if k % 2 == 1]
    with count_statements(url) as counted:
        record_attempts.fn(url, outcomes + retried)  # several attempts of one SKU, in order
    counts["attempts"] = len(counted)
    kept = {o.sku_id: o for o in outcomes + retried}  # the last attempt of each
    items = [ReviewItem(job=_job(i), source=_source(i, "s"), outcome=kept[i]) for i in ids]
    with count_statements(url) as counted:
        enter_review.fn(url, batch_id, items, "auto", 1)
    counts["review"] = len(counted)
    with count_statements(url) as counted:
        record_failures.fn(url, {ids[0]: "export: gone"})
    counts["failures"] = len(counted)
    return counts


def _job(sku_id: int):
    from tasks.records import SkuJob

    return SkuJob(sku_id=sku_id, sku=f"SKU-{sku_id}", dirname=f"SKU-{sku_id}", source_path="x.png", template="x")


def test_a_round_costs_the_same_statements_for_3_or_30_skus(database_url):
    small = _statements_for(database_url, "b-small", 3)
    large = _statements_for(database_url, "b-large", 30)
    assert large == small, (small, large)


def test_batched_writes_record_what_the_one_sku_writes_did(database_url):
    ids = _batch(database_url, "b1", 4)
    record_sources.fn(database_url, [_source(i, "same-photo") for i in ids])
    outcomes = [_outcome(ids[0], True), _outcome(ids[1], False), _outcome(ids[1], True, attempt=2)]
    outcomes += [_outcome(ids[2], False), _outcome(ids[3], True)]
    record_attempts.fn(database_url, outcomes)
    with session_scope(database_url) as s:
        assert len(list(s.scalars(select(SourceImage)))) == 1
        skus = {r.id: r for r in s.scalars(select(Sku).where(Sku.batch_id == "b1"))}
        assert {skus[i].state for i in (ids[0], ids[1], ids[3])} == {"qc_passed"}
        assert skus[ids[2]].state == "qc_failed" and skus[ids[1]].attempts == 2
        assert all(skus[i].source_image_id is not None for i in ids)
        assert skus[ids[0]].timings == {"segment": 1.0}
        renders = list(s.scalars(select(Render).where(Render.sku_id == ids[1]).order_by(Render.id)))
        assert [(r.attempt, r.profile) for r in renders] == [
            (1, "shopify"),
            (1, "amazon-main"),
            (2, "shopify"),
            (2, "amazon-main"),
        ]
        qcs = [s.scalar(select(QcResult).where(QcResult.render_id == r.id)) for r in renders]
        assert [q.passed for q in qcs] == [False, False, True, True]
    kept = {o.sku_id: o for o in outcomes}  # the last attempt of each
    items = [ReviewItem(job=_job(i), source=_source(i, "s"), outcome=kept[i]) for i in ids]
    hold = enter_review.fn(database_url, "b1", items, "auto", 1)
    assert hold.held == []
    record_failures.fn(database_url, {ids[3]: "export: the bucket said no", ids[2]: "ignored: already rejected"})
    with session_scope(database_url) as s:
        states = {r.id: (r.state, r.reason) for r in s.scalars(select(Sku).where(Sku.batch_id == "b1"))}
        decisions = {d.sku_id: d.decision for d in s.scalars(select(ReviewDecision))}
    assert states[ids[0]][0] == "approved" and states[ids[1]][0] == "approved"
    assert states[ids[2]][0] == "rejected" and states[ids[3]] == ("failed", "export: the bucket said no")
    assert decisions == {ids[0]: "approve", ids[1]: "approve", ids[2]: "reject", ids[3]: "approve"}
    assert SkuState.approved.value == "approved"
