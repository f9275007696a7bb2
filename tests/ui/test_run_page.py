"""What ops see of a finished night: the batch run's page in the Prefect UI (its named
final state, its `batch:<name>` tag) and the summary artifact it published, in a real
headless Chromium against the loopback server of ``batch_deployment``. Screenshots are kept
in the test's tmp folder (``run-page.png``, ``summary-artifact.png``)."""

from __future__ import annotations

import pytest

from tests.prefect_server import STICKER, small_manifest, start_batch, wait_for
from tests.ui.chromium import browser_page

BROKEN = "BROKEN-NOT-IMAGE"


@pytest.mark.server
def test_the_run_page_says_completed_with_rejections(batch_deployment, chromium, tmp_path, run_settings):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    deployed = batch_deployment
    manifest = small_manifest(tmp_path / "catalog", (STICKER, BROKEN))
    settings = run_settings(data_dir=deployed.root / "data")
    run_id = start_batch(deployed, manifest, tmp_path / "out", settings, name="ui-night", max_failed_share=0.5)
    wait_for(deployed, run_id, lambda s: s.is_final(), "final", timeout_s=300)
    with deployed.api(), get_client(sync_client=True) as client:
        run = client.read_flow_run(run_id)
        (summary,) = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["batch-summary-ui-night"])), limit=1
        )

    with browser_page(chromium, tmp_path / "chromium") as page:
        page.goto(f"{deployed.server.url}/runs/flow-run/{run_id}")
        page.wait_for("document.body.innerText.includes('Completed with rejections')", 90, "the run's state name")
        page.wait_for("document.body.innerText.includes('batch:ui-night')", 30, "the run's batch tag")
        run_text = page.text()
        run_shot = page.screenshot(tmp_path / "run-page.png")

        page.goto(f"{deployed.server.url}/artifacts/artifact/{summary.id}")
        page.wait_for("document.body.innerText.includes('Completed with rejections')", 60, "the summary artifact")
        summary_text = page.text()
        page.screenshot(tmp_path / "summary-artifact.png")

    assert run.state.name == "Completed with rejections" and run.name.startswith("batch-ui-night-")
    assert run.name in run_text and "batch:ui-night" in run_text
    assert run_shot.stat().st_size > 20_000
    # the summary names the state, the counts table and the SKU that needs a look
    assert "Completed with rejections" in summary_text and BROKEN in summary_text, summary_text[:2000]
    assert "state" in summary_text and "SKUs" in summary_text and "failed" in summary_text, summary_text[:2000]
