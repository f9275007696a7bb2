"""Runs on SQLite and on a per-run PostgreSQL database (see tests/conftest.py)."""

from pathlib import Path

import pytest
from sqlalchemy import func, select

from catalog import repository as repo
from catalog.db import DatabaseUnavailable, migrate, session_scope
from catalog.manifest import ManifestEntry
from catalog.models import Export, SourceImage
from catalog.states import BatchState, IllegalTransition, SkuState


def _batch(url, entries, batch_id="b1"):
    with session_scope(url) as s:
        repo.create_batch(
            s,
            batch_id=batch_id,
            name="t",
            manifest_path="m.csv",
            manifest_sha256="0" * 64,
            template="white_studio",
            profiles=["shopify"],
            review_policy="auto",
        )
        return [(r.id, r.sku, r.state, r.dirname) for r in repo.add_skus(s, batch_id, entries, "white_studio")]


def test_skus_with_problems_start_failed(database_url):
    rows = _batch(
        database_url,
        [
            ManifestEntry(1, "A", Path("a.png")),
            ManifestEntry(2, "B", None, problem="image file not found: b.png"),
            ManifestEntry(3, "../x", Path("x.png")),
        ],
    )
    assert [r[2] for r in rows] == ["pending", "failed", "pending"]
    assert rows[2][3].startswith("x-")
    with session_scope(database_url) as s:
        assert repo.batch_skus(s, "b1")[1].reason == "image file not found: b.png"


def test_state_machine_enforced_in_db(database_url):
    ((sku_id, *_),) = _batch(database_url, [ManifestEntry(1, "A", Path("a.png"))])
    with session_scope(database_url) as s:
        repo.set_batch_state(s, "b1", BatchState.validating)
        repo.set_sku_state(s, sku_id, SkuState.validated)
    with pytest.raises(IllegalTransition):
        with session_scope(database_url) as s:
            repo.set_sku_state(s, sku_id, SkuState.exported)
    with session_scope(database_url) as s:
        repo.fail_sku(s, sku_id, "segmentation: empty mask")
        repo.fail_sku(s, sku_id, "a later reason does not overwrite")
        assert repo.batch_skus(s, "b1")[0].reason == "segmentation: empty mask"


def test_source_images_dedupe_by_content(database_url):
    rows = _batch(database_url, [ManifestEntry(1, "A", Path("a.png")), ManifestEntry(2, "B", Path("a.png"))])
    with session_scope(database_url) as s:
        for sku_id, *_ in rows:
            repo.record_source(s, sku_id, sha256="f" * 64, width=10, height=10, fmt="PNG", size=100)
    with session_scope(database_url) as s:
        assert s.scalar(select(func.count()).select_from(SourceImage)) == 1


def test_exports_are_claimed_once_across_batches(database_url):
    ((a, *_),) = _batch(database_url, [ManifestEntry(1, "A", Path("a.png"))], "b1")
    ((b, *_),) = _batch(database_url, [ManifestEntry(1, "A", Path("a.png"))], "b2")
    kw = dict(
        render_id=None,
        profile="shopify",
        destination="local:/out",
        key="A/shopify.jpg",
        content_sha256="c" * 64,
        size=10,
    )
    with session_scope(database_url) as s:
        claim = repo.claim_export(s, sku_id=a, owner="w1", lease_s=60, **kw)
        assert claim.state == "claimed"
        repo.complete_export(s, claim.export_id, None, owner="w1")
    with session_scope(database_url) as s:
        again = repo.claim_export(s, sku_id=b, owner="w2", lease_s=60, **kw)
        assert again.state == "done" and again.export_id == claim.export_id
        assert s.scalar(select(func.count()).select_from(Export)) == 1


def test_render_and_qc_rows(database_url):
    ((sku_id, *_),) = _batch(database_url, [ManifestEntry(1, "A", Path("a.png"))])
    with session_scope(database_url) as s:
        for attempt in (1, 2):
            render = repo.record_render(
                s,
                sku_id,
                attempt=attempt,
                profile="shopify",
                template="white_studio",
                params={"fill": 0.85},
                model_versions={"segment": "u2netp@309c"},
                seed=None,
                uri="/w/x.png",
                content_sha256="a" * 64,
                segment_confidence=0.9,
            )
            repo.record_qc(
                s,
                render.id,
                thresholds_version="1",
                status="fail" if attempt == 1 else "pass",
                metrics={"delta_e_mean": 0.4},
                checks=[],
                failing=["edge_halo"] if attempt == 1 else [],
            )
    with session_scope(database_url) as s:
        latest = repo.latest_qc(s, sku_id)
        assert len(latest) == 1 and latest[0][0].attempt == 2 and latest[0][1].status == "pass"
        assert repo.batch_skus(s, "b1")[0].attempts == 2
        row = repo.batch_skus(s, "b1")[0]
        assert repo.kept_attempt(row) is None  # not reviewed yet: the newest attempt
        # attempt 1 was kept (a retry came out worse): the report shows what export ships
        repo.store_review_item(s, sku_id, {"outcome": {"renders": [{"params": {"attempt": 1}}]}})
        kept = repo.latest_qc(s, sku_id, repo.kept_attempt(row))
        assert len(kept) == 1 and kept[0][0].attempt == 1 and kept[0][1].status == "fail"
        assert repo.latest_qc(s, sku_id, 7)[0][0].attempt == 2  # no such attempt: the newest


def test_unreachable_database_gives_one_line_reason():
    with pytest.raises(DatabaseUnavailable, match="cannot migrate catalog database"):
        migrate("postgresql+psycopg://nobody@127.0.0.1:1/none?connect_timeout=2")
