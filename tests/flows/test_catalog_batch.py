"""The whole lifecycle on the embedded default: a catalog in, images + report out."""

import json
import shutil

import numpy as np
import pytest
from PIL import Image
from sqlalchemy import func, select

from catalog.db import migrate, session_scope
from catalog.models import Export, QcResult, Render, ReviewDecision, Sku
from tests.conftest import EXAMPLES

pytestmark = pytest.mark.usefixtures("prefect_harness")

GOOD = ["CUP-ESPRESSO-01", "STICKER-LOGO"]
HOSTILE = {"BROKEN-TRUNCATED": "truncated", "BROKEN-NOT-IMAGE": "not an image", "BROKEN-ONE-PIXEL": "too small"}


@pytest.fixture
def small_catalog(tmp_path):
    """Two real photos and the three hostile files of the sample catalog."""
    folder = tmp_path / "catalog"
    shutil.copytree(EXAMPLES / "images", folder / "images")
    rows = [
        line
        for line in (EXAMPLES / "manifest.csv").read_text().splitlines()
        if line.startswith(("sku,", *GOOD, *HOSTILE))
    ]
    (folder / "manifest.csv").write_text("\n".join(rows) + "\n")
    return folder / "manifest.csv"


def _run(manifest, out, settings, **kw):
    """The hostile files fail 3 of 5 SKUs: on purpose, so the run may complete whatever
    share failed (tests/flows/test_final_states.py tests the share)."""
    from flows.catalog_batch import catalog_batch

    return catalog_batch(
        manifest=str(manifest),
        out_dir=str(out),
        settings=settings,
        profiles=["amazon-main", "shopify", "transparent"],
        max_failed_share=1.0,
        **kw,
    )


def test_batch_end_to_end_then_rerun_reuses_everything(small_catalog, tmp_path, run_settings):
    settings = run_settings()
    out = tmp_path / "out"
    report = _run(small_catalog, out, settings)

    by_sku = {e["sku"]: e for e in report["skus"]}
    assert set(by_sku) == set(GOOD) | set(HOSTILE)
    for sku, words in HOSTILE.items():
        assert by_sku[sku]["state"] == "failed"
        assert words in by_sku[sku]["reason"].lower(), by_sku[sku]["reason"]
    for sku in GOOD:
        entry = by_sku[sku]
        assert entry["state"] in ("exported", "rejected"), entry
        assert entry["qc"] and entry["timings"]["segment"] != "cached"
    exported = [s for s in GOOD if by_sku[s]["state"] == "exported"]
    assert exported, report
    on_disk = json.loads((out / "report.json").read_text())
    assert on_disk["counts"] == report["counts"] and sum(report["counts"].values()) == 5
    assert (out / "contact_sheet.png").stat().st_size > 1000
    with session_scope(settings.database_url) as s:
        uris = list(s.scalars(select(Render.uri)))
    assert uris
    for uri in uris:  # each render's preview, stored beside it for the report
        preview = Image.open(uri + ".thumb.jpg")
        assert preview.format == "JPEG" and max(preview.size) == 256
    shard_tags, task_tags = _tags_of_latest_shard()
    assert "batch:catalog" in shard_tags  # ops filter a batch's runs by it
    assert task_tags and all(tags == [] for tags in task_tags), task_tags  # no tag-slot round trip per SKU
    assert "<table>" in (out / "report.html").read_text()

    cup = out / by_sku["CUP-ESPRESSO-01"]["dir"]
    if by_sku["CUP-ESPRESSO-01"]["state"] == "exported":
        amazon = Image.open(cup / "amazon-main.jpg")
        assert amazon.size == (2000, 2000) and amazon.info.get("icc_profile")
        pixels = np.asarray(amazon.convert("RGB"))
        assert (pixels[:4] == 255).all() and (pixels[:, :4] == 255).all()
        assert Image.open(cup / "transparent.png").mode == "RGBA"
        mask = Image.open(cup / "mask.png")
        assert mask.mode == "L" and mask.size == Image.open(EXAMPLES / "images/espresso-cup.png").size

    with session_scope(settings.database_url) as s:
        exports_before = s.scalar(select(func.count()).select_from(Export))
        assert exports_before == 4 * len(exported)
        assert s.scalar(select(func.count()).select_from(ReviewDecision)) == len(GOOD)

    again = _run(small_catalog, out, settings)
    for entry in again["skus"]:
        if entry["sku"] in exported:
            assert entry["state"] == "exported"
            assert entry["timings"]["segment"] == "cached"
            assert entry["timings"]["export"].startswith("skipped")
    with session_scope(settings.database_url) as s:
        assert s.scalar(select(func.count()).select_from(Export)) == exports_before
    # A re-run costs no task run (nor shard) per cached SKU: known photos, cached attempts
    # and done exports are found in one task run each (tasks/validate.py, tasks/reuse.py,
    # tasks/export.py). The hostile files are validated (and fail) again.
    names = _task_runs_of_latest_batch()
    per_sku = [name for name in names if name.endswith(tuple(GOOD)) or name.startswith("render-shard")]
    assert per_sku == [], per_sku
    assert any(name.startswith("validate-BROKEN") for name in names), names


def _task_runs_of_latest_batch() -> list[str]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
    from prefect.client.schemas.sorting import FlowRunSort

    with get_client(sync_client=True) as client:
        (run,) = client.read_flow_runs(sort=FlowRunSort.START_TIME_DESC, limit=1)
        assert run.name.startswith("batch-")
        tasks = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[run.id])))
    return [t.name for t in tasks]


def _tags_of_latest_shard() -> tuple[list[str], list[list[str]]]:
    """The latest render-shard run's tags, and its task runs' tags."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowFilter, FlowFilterName, FlowRunFilter, FlowRunFilterId
    from prefect.client.schemas.sorting import FlowRunSort

    with get_client(sync_client=True) as client:
        (run,) = client.read_flow_runs(
            flow_filter=FlowFilter(name=FlowFilterName(any_=["render-shard"])),
            sort=FlowRunSort.START_TIME_DESC,
            limit=1,
        )
        tasks = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[run.id])))
    return run.tags, [t.tags for t in tasks]


def test_cached_work_whose_files_are_gone_is_done_again(small_catalog, tmp_path, run_settings):
    """A cached outcome points at work files; when they are gone (expired, deleted, another
    node's disk) the SKU is rendered again, never failed."""
    settings = run_settings()
    first = _run(small_catalog, tmp_path / "out", settings)
    exported = [e["sku"] for e in first["skus"] if e["state"] == "exported"]
    assert exported, first
    shutil.rmtree(settings.data_dir / "work")
    again = _run(small_catalog, tmp_path / "out-again", settings)
    for entry in again["skus"]:
        if entry["sku"] in exported:
            assert entry["state"] == "exported", entry
            assert entry["timings"]["render"] != "cached", entry
            assert (tmp_path / "out-again" / entry["dir"] / "amazon-main.jpg").is_file()
            assert (tmp_path / "out-again" / entry["dir"] / "mask.png").is_file()


def test_every_attempt_and_qc_result_is_stored(small_catalog, tmp_path, run_settings):
    settings = run_settings()
    _run(small_catalog, tmp_path / "out", settings)
    with session_scope(settings.database_url) as s:
        for sku in s.scalars(select(Sku).where(Sku.sku.in_(GOOD))):
            renders = list(s.scalars(select(Render).where(Render.sku_id == sku.id)))
            assert len(renders) == 3 * sku.attempts
            for render in renders:
                qc = s.scalar(select(QcResult).where(QcResult.render_id == render.id))
                assert qc is not None and qc.status in ("pass", "warn", "fail")
                assert "colour.delta_e_mean" in qc.metrics


@pytest.mark.postgres
def test_batch_on_postgresql(small_catalog, tmp_path, run_settings, pg_server_url):
    from tests.conftest import _reset_pg

    _reset_pg(pg_server_url)
    migrate(pg_server_url)
    report = _run(small_catalog, tmp_path / "out", run_settings(database_url=pg_server_url))
    states = {e["sku"]: e["state"] for e in report["skus"]}
    assert all(states[s] == "failed" for s in HOSTILE)
    assert all(states[s] in ("exported", "rejected") for s in GOOD)


def test_unreadable_manifest_fails_the_batch_not_silently(tmp_path, run_settings):
    from catalog.manifest import ManifestError

    (tmp_path / "m.csv").write_text("name,picture\nx,y\n")
    with pytest.raises(ManifestError, match="lacks required column"):
        _run(tmp_path / "m.csv", tmp_path / "out", run_settings())
