"""What a reviewer sees: the suspended batch run's page in the Prefect UI, with the review
form open, and the review artifact with the thumbnails — in a real headless Chromium
against the loopback server of ``batch_deployment``. Screenshots are kept in the test's
tmp folder (``review-form.png``, ``review-artifact.png``)."""

from __future__ import annotations

import pytest

from tasks.review import CHANGES
from tests.prefect_server import CUP, small_manifest, start_batch, suspended_at, wait_for
from tests.ui.chromium import browser_page

HAS_RESUME = "[...document.querySelectorAll('button')].some(b => b.innerText.trim() === 'Resume')"
CLICK_RESUME = "[...document.querySelectorAll('button')].find(b => b.innerText.trim() === 'Resume').click()"
MODAL = "document.querySelector('.p-modal')"
FORM_LABELS = [
    "Reviewer",
    "Approve all",
    "Approve",
    "Reject",
    "Reject note",
    "Re-render",
    "Re-render changes",
    "Re-render note",
]


@pytest.mark.server
def test_suspended_run_page_shows_the_review_form_and_artifact(batch_deployment, chromium, tmp_path, run_settings):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey
    from prefect.states import Cancelled

    deployed = batch_deployment
    manifest = small_manifest(tmp_path / "catalog", (CUP,))
    settings = run_settings(data_dir=deployed.root / "data")
    run = start_batch(deployed, manifest, tmp_path / "out", settings, name="ui", review_policy="hold-all")
    wait_for(deployed, run, suspended_at("review-hold-1"), "suspended for review")
    try:
        with browser_page(chromium, tmp_path / "chromium") as page:
            page.goto(f"{deployed.server.url}/runs/flow-run/{run}")
            page.wait_for(HAS_RESUME, 90, "the run page's Resume button")
            page.wait_for(f"({CLICK_RESUME}, !!{MODAL})", 30, "the resume modal")
            page.wait_for(f"{MODAL}.innerText.includes('Re-render note')", 30, "the review form")
            form = page.evaluate(f"{MODAL}.innerText")
            (tmp_path / "review-form.html").write_text(page.evaluate(f"{MODAL}.outerHTML"))
            choices = page.evaluate(
                f"[...{MODAL}.querySelectorAll('select[multiple]')].filter(s => s.options.length)"
                ".map(s => [...s.options].map(o => o.value))"
            )
            shot = page.screenshot(tmp_path / "review-form.png")
            labels = page.evaluate(f"[...{MODAL}.querySelectorAll('label')].map(l => l.innerText.trim())")

            with deployed.api(), get_client(sync_client=True) as client:
                key = f"review-{run.hex[:8]}-round-1"
                (artifact,) = client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])))
            page.goto(f"{deployed.server.url}/artifacts/artifact/{artifact.id}")
            page.wait_for(
                "[...document.images].some(i => i.src.startsWith('data:image/jpeg') "
                "&& i.complete && i.naturalWidth > 0)",
                60,
                "the thumbnail",
            )
            images = page.evaluate(
                "[...document.images].filter(i => i.src.startsWith('data:'))"
                ".map(i => [i.alt, i.naturalWidth, i.naturalHeight])"
            )
            text = page.text()
            page.screenshot(tmp_path / "review-artifact.png")
    finally:
        with deployed.api(), get_client(sync_client=True) as client:
            client.set_flow_run_state(run, Cancelled(message="UI test done"), force=True)

    assert shot.stat().st_size > 20_000
    assert "Resume Flow Run" in form and "Review round 1" in form and CUP in form
    assert "Submit" in form
    for label in FORM_LABELS:
        assert any(found.startswith(label) for found in labels), (label, labels)
    assert choices == [[CUP], [CUP], [CUP], list(CHANGES)]  # approve, reject, re-render, changes
    assert len(images) == 1 and images[0][0] == CUP and max(images[0][1:]) == 160, images
    assert "Review hold" in text and "QC figures" in text and "cut confidence" in text
