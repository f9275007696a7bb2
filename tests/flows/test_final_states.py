"""A batch run's final state says what happened (issue 13): Completed, ``Completed with
rejections``, Failed past ``max_failed_share`` or when the batch could not run; the
catalog records why; names, tags and artifact keys let ops find it."""

import json
import shutil
from types import SimpleNamespace
from uuid import uuid4

import pytest

from catalog.db import session_scope
from catalog.models import Batch
from catalog.states import BatchFailed
from tests.conftest import EXAMPLES

pytestmark = pytest.mark.usefixtures("prefect_harness")

GOOD, BROKEN = "STICKER-LOGO", "BROKEN-NOT-IMAGE"


@pytest.fixture
def one_good_one_broken(tmp_path):
    folder = tmp_path / "catalog"
    shutil.copytree(EXAMPLES / "images", folder / "images")
    lines = (EXAMPLES / "manifest.csv").read_text().splitlines()
    rows = [line for line in lines if line.startswith(("sku,", GOOD, BROKEN))]
    (folder / "manifest.csv").write_text("\n".join(rows) + "\n")
    return folder / "manifest.csv"


def _run(manifest, out, settings, **kw):
    from flows.catalog_batch import catalog_batch

    return catalog_batch(
        manifest=str(manifest), out_dir=str(out), settings=settings, profiles=["shopify"], return_state=True, **kw
    )


def _batch(settings, batch_id) -> Batch:
    with session_scope(settings.database_url) as s:
        batch = s.get(Batch, batch_id)
        s.expunge(batch)
        return batch


def _run_record(state):
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        run = client.read_flow_run(state.state_details.flow_run_id)
        tasks = client.read_task_runs()
        return run, [t.name for t in tasks if t.flow_run_id == run.id]


def _artifact(key: str):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    with get_client(sync_client=True) as client:
        return client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])))


def test_half_failed_is_failed_by_default_and_the_catalog_says_why(one_good_one_broken, tmp_path, run_settings):
    settings = run_settings()
    name = f"Share Test {uuid4().hex[:6]}"
    state = _run(one_good_one_broken, tmp_path / "out", settings, name=name)

    assert state.is_failed() and state.name == "Failed"
    assert "1 failed" in state.message and "more than the 20 % allowed" in state.message
    failure = state.result(raise_on_failure=False)
    assert isinstance(failure, BatchFailed) and str(failure) == state.message
    report = failure.report
    assert report["counts"]["failed"] == 1
    on_disk = json.loads((tmp_path / "out" / "report.json").read_text())
    assert on_disk["state"] == "failed" and on_disk["counts"] == report["counts"]
    batch = _batch(settings, report["batch_id"])
    assert batch.state == "failed" and "more than the 20 % allowed" in batch.error

    run, task_names = _run_record(state)
    assert run.name.startswith(f"batch-{name}-20") and len(run.name) == len(f"batch-{name}-2026-12-02")
    assert f"batch:{name}" in run.tags
    assert f"validate-{GOOD}" in task_names and f"render-{GOOD}" not in task_names  # rendered in the shard subflow
    slug = name.lower().replace(" ", "-")
    (summary,) = _artifact(f"batch-summary-{slug}")
    assert "Failed" in summary.data and "| failed | 1 |" in summary.data
    (link,) = _artifact(f"batch-report-{slug}")
    assert link.data.startswith("[report.html") and "file://" in link.data
    (progress,) = _artifact(f"batch-progress-{slug}")
    assert float(progress.data) == 100.0


def test_failures_under_the_share_complete_with_rejections(one_good_one_broken, tmp_path, run_settings):
    from flows.catalog_batch import catalog_batch

    settings = run_settings()
    report = catalog_batch(
        manifest=str(one_good_one_broken),
        out_dir=str(tmp_path / "out"),
        settings=settings,
        profiles=["shopify"],
        max_failed_share=0.5,
    )
    assert isinstance(report, dict) and report["counts"]["failed"] == 1  # a direct call returns the report
    assert _batch(settings, report["batch_id"]).state == "done"

    again = _run(one_good_one_broken, tmp_path / "out2", run_settings(), max_failed_share=0.5)
    assert again.is_completed() and again.name == "Completed with rejections"
    assert again.message.startswith("2 SKUs: ") and "1 failed" in again.message


def test_a_batch_that_cannot_run_fails_and_the_hook_records_the_reason(one_good_one_broken, tmp_path, run_settings):
    """The GPU deployment named for the shards does not exist: the run fails after the
    batch was created; the on_failure hook marks the batch failed with the reason."""
    settings = run_settings()
    state = _run(one_good_one_broken, tmp_path / "out", settings, render_deployment="render-shard/no-such-deployment")
    assert state.is_failed()
    run, _ = _run_record(state)
    batch = _batch(settings, run.id.hex)
    assert batch.state == "failed", batch.state
    assert run.name in batch.error and "no-such-deployment" in batch.error


@pytest.mark.parametrize("catalog", ["url", "block"])
def test_the_crash_hook_fails_an_unfinished_batch_once(tmp_path, run_settings, catalog):
    """The hook finds the catalog from the run's parameters: its URL, or (from a
    deployment) the name of its CatalogDatabase block, loaded by the hook."""
    from prefect.states import Crashed

    from blocks.catalog_db import CatalogDatabase
    from catalog.db import migrate
    from catalog.manifest import ManifestEntry
    from catalog.repository import add_skus, create_batch, set_batch_state
    from catalog.states import BatchState
    from flows.catalog_batch import record_failure_hook

    settings = run_settings()
    migrate(settings.database_url)
    run_id = uuid4()
    with session_scope(settings.database_url) as s:
        create_batch(
            s,
            batch_id=run_id.hex,
            name="crash",
            manifest_path="m.csv",
            manifest_sha256="0" * 64,
            template="white_studio",
            profiles=["shopify"],
            review_policy="auto",
        )
        add_skus(s, run_id.hex, [ManifestEntry(row=1, sku="A", image=tmp_path / "a.png")], "white_studio")
        set_batch_state(s, run_id.hex, BatchState.validating)
    parameters = settings.model_dump(mode="json")
    if catalog == "block":
        block = f"crash-{run_id.hex[:8]}"
        CatalogDatabase(url=settings.database_url).save(block)
        parameters.update(database_url=None, catalog_block=block)
    run = SimpleNamespace(id=run_id, name="batch-crash-2026-12-02", parameters={"settings": parameters})
    record_failure_hook(None, run, Crashed(message="worker process exited with SIGTERM"))
    batch = _batch(settings, run_id.hex)
    assert batch.state == "failed" and "Crashed: worker process exited with SIGTERM" in batch.error
    record_failure_hook(None, run, Crashed(message="a second report"))
    assert "a second report" not in _batch(settings, run_id.hex).error
