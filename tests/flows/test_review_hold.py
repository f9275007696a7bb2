"""The review hold, for real: catalog-batch deployed to a process pool on a local Prefect
server, a worker running it, the run suspended with the review form, answered through the
API, re-rendered, timed out, continued — and the database and the disk checked at each step,
including that a resumed run (Prefect replays the flow from the top) wrote nothing twice.

The policy and answer logic is also tested directly (``.fn``) below, without a server.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select

from catalog import repository as repo
from catalog.db import migrate, session_scope
from catalog.models import Batch, Export, Render, ReviewDecision, Sku
from catalog.states import SkuState
from tasks.records import QcInfo, RenderInfo, RenderParams, SkuJob, SourceInfo
from tasks.results import ReviewItem, SkuOutcome
from tests.prefect_server import CUP, STICKER, resume, small_manifest, start_batch, suspended_at, wait_for


def snapshot(url: str) -> dict:
    """What the catalog says: rows per table, SKU states, decisions, renders per SKU."""
    with session_scope(url) as s:
        skus = {row.sku: row for row in s.scalars(select(Sku))}
        return {
            "batches": s.scalar(select(func.count()).select_from(Batch)),
            "skus": len(skus),
            "state": {sku: row.state for sku, row in skus.items()},
            "reason": {sku: row.reason for sku, row in skus.items()},
            "decisions": sorted(
                (d.sku_id, d.round, d.decision, d.reviewer, d.note) for d in s.scalars(select(ReviewDecision))
            ),
            "renders": {
                sku: sorted((r.attempt, r.profile) for r in s.scalars(select(Render).where(Render.sku_id == row.id)))
                for sku, row in skus.items()
            },
            "params": {
                sku: [r.params for r in s.scalars(select(Render).where(Render.sku_id == row.id))]
                for sku, row in skus.items()
            },
            "exports": sorted((e.sku_id, e.profile, e.status) for e in s.scalars(select(Export))),
            "ids": {sku: row.id for sku, row in skus.items()},
            "batch": [(b.id, b.state, b.review_round) for b in s.scalars(select(Batch))],
        }


@pytest.mark.server
def test_hold_suspends_resumes_rerenders_times_out_and_continues(batch_deployment, tmp_path, run_settings):
    deployed = batch_deployment
    manifest = small_manifest(tmp_path / "catalog", (CUP, STICKER))
    out = tmp_path / "out"
    settings = run_settings(data_dir=deployed.root / "data")
    db = settings.database_url

    # 1. QC done, everything held (hold-all): the run suspends with the form, freeing the worker
    run = start_batch(deployed, manifest, out, settings, name="hold", review_policy="hold-all", review_timeout_s=12)
    wait_for(deployed, run, suspended_at("review-hold-1"), "suspended for review")
    first = snapshot(db)
    batch_id = run.hex
    assert first["batch"] == [(batch_id, "review_hold", 1)]  # the batch id is the run's id
    assert first["state"] == {CUP: "held", STICKER: "held"} and first["decisions"] == []

    # 2. approve the cup, send the sticker back with a note naming two changes
    resume(
        deployed,
        run,
        {
            "reviewer": "ana@ops",
            "approve": [CUP],
            "rerender": [STICKER],
            "rerender_note": "Shadow softer and product larger, please",
        },
    )
    wait_for(deployed, run, suspended_at("review-hold-2"), "suspended again after the re-render")
    second = snapshot(db)
    cup, sticker = second["ids"][CUP], second["ids"][STICKER]
    assert second["batches"] == 1 and second["skus"] == 2  # the replay created nothing twice
    assert second["state"] == {CUP: "approved", STICKER: "held"}
    note = "Shadow softer and product larger, please; changes: product larger, shadow softer"
    assert second["decisions"] == sorted(
        [(cup, 1, "approve", "ana@ops", None), (sticker, 1, "rerender", "ana@ops", note)]
    )
    assert second["renders"][CUP] == first["renders"][CUP]  # round 1 renders were not recorded again
    new = [p for p in second["params"][STICKER] if p["attempt"] > max(a for a, _ in first["renders"][STICKER])]
    assert new and new[0]["fill"] == 0.9 and new[0]["shadow_strength"] == 0.21
    assert second["exports"] == [] and not out.exists()

    # 3. nobody answers round 2: the hold times out; the SKUs stay held, nothing is exported
    failed = wait_for(deployed, run, lambda state: state.is_failed(), "failed by the hold's timeout", timeout_s=90)
    assert "never resumed" in failed.message
    third = snapshot(db)
    assert third["state"] == {CUP: "approved", STICKER: "held"} and third["exports"] == []
    assert third["batch"] == [(batch_id, "review_hold", 2)]

    # 4. a later run continues the batch: its hold shows the sticker again; reject it
    again = start_batch(
        deployed,
        manifest,
        out,
        settings,
        name="hold",
        review_policy="hold-all",
        batch_id=batch_id,
        review_timeout_s=None,
    )
    wait_for(deployed, again, suspended_at("review-hold-1"), "the continued batch suspended")
    assert snapshot(db)["state"] == third["state"]
    resume(deployed, again, {"reviewer": "ben@ops", "reject": [STICKER], "reject_note": "logo colours are off"})
    wait_for(deployed, again, lambda state: state.is_completed(), "completed")

    final = snapshot(db)
    assert final["batches"] == 1 and final["skus"] == 2
    assert final["batch"] == [(batch_id, "done", 3)]
    assert final["state"] == {CUP: "exported", STICKER: "rejected"}
    assert final["reason"][STICKER] == "review: rejected by ben@ops: logo colours are off"
    assert final["decisions"] == sorted(
        second["decisions"] + [(sticker, 3, "reject", "ben@ops", "logo colours are off")]
    )
    assert final["renders"] == second["renders"]
    assert final["exports"] == [(cup, "mask", "done"), (cup, "shopify", "done")]
    assert sorted(p.name for p in (out / CUP).iterdir()) == ["mask.png", "shopify.jpg"]
    assert not (out / STICKER).exists()


# --- the policy and the answers, without a server ----------------------------------------


def _item(url: str, batch_id: str, sku: str, status: str, position: int = 0) -> ReviewItem:
    """A SKU row walked to qc_passed / qc_failed, and the review item it would enter with."""
    from catalog.manifest import ManifestEntry

    with session_scope(url) as s:
        if repo.find_batch(s, batch_id) is None:
            repo.create_batch(
                s,
                batch_id=batch_id,
                name="t",
                manifest_path="m.csv",
                manifest_sha256="0" * 64,
                template="white_studio",
                profiles=["shopify"],
                review_policy="hold-failures",
            )
        (row,) = repo.add_skus(s, batch_id, [ManifestEntry(position + 1, sku, Path("a.png"))], "white_studio")
        for state in ("validated", "rendering", "rendered", "qc_passed" if status == "passed" else "qc_failed"):
            repo.set_sku_state(s, row.id, SkuState(state))
        sku_id = row.id
    params = RenderParams(attempt=3 if status == "qc_failed" else 1, fill=0.8)
    render = RenderInfo(
        profile="shopify",
        template="white_studio",
        path="/nowhere/r.png",
        sha256="0" * 64,
        scale=1.0,
        offset_x=0.0,
        offset_y=0.0,
        params=params,
    )
    qc = QcInfo(
        profile="shopify",
        status="pass" if status == "passed" else "fail",
        metrics={},
        checks=[],
        failing=[] if status == "passed" else ["edge.halo"],
        thresholds_version="t",
        encoded_path="/nowhere/e.jpg",
    )
    outcome = SkuOutcome(
        sku_id=sku_id,
        status=status,
        attempts=params.attempt,
        renders=[render],
        qcs=[qc],
        reason=None if status == "passed" else "qc: shopify:edge.halo",
    )
    job = SkuJob(sku_id=sku_id, sku=sku, dirname=sku, source_path="a.png", template="white_studio")
    source = SourceInfo(
        sku_id=sku_id, sha256="1" * 64, path="/nowhere/s.png", width=10, height=10, format="PNG", size_bytes=1
    )
    return ReviewItem(job=job, source=source, outcome=outcome)


@pytest.fixture
def catalog_url(tmp_path):
    url = f"sqlite:///{tmp_path / 'catalog.db'}"
    migrate(url)
    return url


def test_hold_failures_approves_passes_and_holds_failures_with_their_reason(catalog_url):
    from tasks.review import enter_review

    good, bad = _item(catalog_url, "b1", "GOOD", "passed"), _item(catalog_url, "b1", "BAD", "qc_failed", 1)
    hold = enter_review.fn(catalog_url, "b1", [good, bad], "hold-failures", 1)
    assert hold.round == 1 and [i.job.sku for i in hold.held] == ["BAD"]
    assert hold.held[0].outcome.reason == "qc: shopify:edge.halo"
    with session_scope(catalog_url) as s:
        states = {row.sku: row.state for row in repo.batch_skus(s, "b1")}
        decisions = [(d.sku_id, d.decision, d.reviewer, d.round) for d in s.scalars(select(ReviewDecision))]
    assert states == {"GOOD": "approved", "BAD": "held"}
    assert decisions == [(good.job.sku_id, "approve", "policy:auto", 1)]
    # nothing new and nothing held: no round is opened
    assert enter_review.fn(catalog_url, "b1", [], "hold-failures", 2).round == 2  # BAD still held
    rejected = _item(catalog_url, "b2", "X", "qc_failed")
    auto = enter_review.fn(catalog_url, "b2", [rejected], "auto", 1)
    assert auto.held == [] and enter_review.fn(catalog_url, "b2", [], "auto", 2).round == 1


def test_an_answer_approves_rejects_and_sends_back_and_keeps_the_rest_held(catalog_url):
    from tasks.review import enter_review, record_review_answer

    items = [_item(catalog_url, "b", sku, "passed", n) for n, sku in enumerate(["A", "B", "C", "D", "E"])]
    hold = enter_review.fn(catalog_url, "b", items, "hold-all", 1)
    answer = {
        "reviewer": " ana@ops ",
        "approve": ["A", "E"],
        "reject": ["B", "E"],
        "reject_note": "wrong product",
        "rerender": ["C"],
        "rerender_changes": ["new background"],
        "rerender_note": "and a softer shadow",
    }
    verdict = record_review_answer.fn(catalog_url, hold, answer)
    assert [i.job.sku for i in verdict.rerender] == ["C"]
    params = verdict.rerender[0].params
    assert params.attempt == 2 and params.seed == 1 and params.shadow_strength == 0.21 and params.fill == 0.8
    assert verdict.notes == ["'E' was listed under more than one decision; it stays held"]
    with session_scope(catalog_url) as s:
        states = {row.sku: (row.state, row.reason) for row in repo.batch_skus(s, "b")}
        notes = {d.decision: d.note for d in s.scalars(select(ReviewDecision))}
    assert states == {
        "A": ("approved", None),
        "B": ("rejected", "review: rejected by ana@ops: wrong product"),
        "C": ("held", None),
        "D": ("held", None),
        "E": ("held", None),
    }
    assert notes == {
        "approve": None,
        "reject": "wrong product",
        "rerender": "and a softer shadow; changes: new background, shadow softer",
    }
    # replayed with the same answer: the same rows, not new ones; a different answer refuses
    record_review_answer.fn(catalog_url, hold, answer)
    with pytest.raises(ValueError, match="already has a 'approve' decision"):
        record_review_answer.fn(catalog_url, hold, {"reviewer": "ben", "reject": ["A"]})


def test_approve_all_spares_listed_skus_and_a_rerender_needs_a_change(catalog_url):
    from tasks.review import enter_review, record_review_answer

    items = [_item(catalog_url, "b", sku, "qc_failed", n) for n, sku in enumerate(["A", "B", "C"])]
    hold = enter_review.fn(catalog_url, "b", items, "hold-failures", 1)
    verdict = record_review_answer.fn(
        catalog_url,
        hold,
        {"reviewer": "ana", "approve_all": True, "rerender": ["C"], "rerender_note": "hmm", "reject": ["ZZZ"]},
    )
    assert verdict.rerender == []
    assert verdict.notes[0] == "'ZZZ' is not waiting for review"
    assert verdict.notes[1].startswith("re-render of C needs a change (shadow softer,")
    with session_scope(catalog_url) as s:
        assert {row.sku: row.state for row in repo.batch_skus(s, "b")} == {
            "A": "approved",
            "B": "approved",
            "C": "held",
        }


def test_notes_map_to_render_changes():
    from tasks.review import parse_changes, rerender_params

    assert parse_changes("Shadow softer; PRODUCT LARGER pls") == ["shadow softer", "product larger"]
    assert parse_changes("a lighter shadow and zoom out") == ["shadow softer", "product smaller"]
    assert parse_changes("the halo around the handle") == ["cleaner edges"]
    assert parse_changes("looks odd") == [] and parse_changes("shadowsofter") == []
    outcome = SkuOutcome(sku_id=1, status="passed", attempts=2)
    assert rerender_params(outcome, ["product larger", "shadow stronger", "cleaner edges"]) == RenderParams(
        attempt=3, fill=0.9, shadow_strength=0.525, refine_strength=2, decontaminate=True
    )
    assert rerender_params(outcome, ["product smaller"]).fill == 0.8


def test_the_form_offers_exactly_the_held_skus():
    from prefect.input import RunInput

    from tasks.review import ReviewHold, review_form

    item = _dummy_item("MUG|1")
    form = review_form(ReviewHold(round=1, held=[item, _dummy_item("MUG-2")]), "### Review round 1")
    assert issubclass(form, RunInput) and form._description == "### Review round 1"
    schema = form.model_json_schema()
    assert schema["properties"]["approve"]["items"]["enum"] == ["MUG|1", "MUG-2"]
    assert schema["properties"]["rerender_changes"]["items"]["enum"][0] == "shadow softer"
    assert schema["required"] == ["reviewer"]
    with pytest.raises(ValueError):
        form(reviewer="ana", approve=["NOT-HELD"])
    with pytest.raises(ValueError):
        form(reviewer="   ")
    one = review_form(ReviewHold(round=2, held=[item]), "").model_json_schema()
    assert one["properties"]["reject"]["items"] == {"type": "string", "enum": ["MUG|1"]}


def _dummy_item(sku: str) -> ReviewItem:
    job = SkuJob(sku_id=1, sku=sku, dirname="x", source_path="a.png", template="white_studio")
    source = SourceInfo(sku_id=1, sha256="1" * 64, path="/s.png", width=1, height=1, format="PNG", size_bytes=1)
    return ReviewItem(job=job, source=source, outcome=SkuOutcome(sku_id=1, status="passed"))


def test_a_hold_needs_a_deployment_and_auto_does_not():
    from flows.review import require_deployment

    require_deployment("auto")
    with pytest.raises(ValueError, match="run the batch from a deployment"):
        require_deployment("hold-failures")


def test_review_text_is_escaped_and_thumbnails_are_small_jpegs(tmp_path):
    import cv2
    import numpy as np

    from tasks.review_artifact import md, thumbnail_jpeg

    assert md("a|b <img src=x> *bold* [link](y)\nnext") == "a\\|b &lt;img src=x&gt; \\*bold\\* \\[link\\]\\(y\\) next"
    rgba = np.zeros((300, 600, 4), np.uint8)  # fully transparent: shown over white
    cv2.imwrite(str(tmp_path / "t.png"), rgba)
    thumb = cv2.imdecode(np.frombuffer(thumbnail_jpeg(str(tmp_path / "t.png")), np.uint8), cv2.IMREAD_COLOR)
    assert thumb.shape == (80, 160, 3) and thumb.min() > 245
    with pytest.raises(FileNotFoundError, match="render missing"):
        thumbnail_jpeg(str(tmp_path / "gone.png"))


def test_review_thumbnails_come_from_the_stored_preview(tmp_path):
    import cv2
    import numpy as np

    from catalog.report_images import preview_jpeg, thumb_ref
    from tasks.review_artifact import thumbnail_jpeg
    from tasks.workdir import LocalWorkStore

    store = LocalWorkStore(tmp_path / "work")
    render = store.ref("ab" * 32, "0123456789abcdef-amazon-main.jpg")
    blue, red = np.zeros((400, 400, 3), np.uint8), np.zeros((400, 400, 3), np.uint8)
    blue[..., 2], red[..., 0] = 255, 255
    store.put(render, cv2.imencode(".jpg", cv2.cvtColor(blue, cv2.COLOR_RGB2BGR))[1].tobytes())
    shown = lambda: cv2.imdecode(np.frombuffer(thumbnail_jpeg(render, store=store), np.uint8), 1)  # noqa: E731
    assert shown()[..., 0].mean() > 200  # no preview: the render itself (BGR: blue)
    store.put(thumb_ref(render), preview_jpeg(red))
    assert shown().shape == (160, 160, 3) and shown()[..., 2].mean() > 200  # the preview


@pytest.mark.usefixtures("prefect_harness")
def test_a_large_hold_keeps_its_review_artifact_under_prefects_event_cap(tmp_path):
    """Prefect drops an artifact's event over 1.5 MB (its data rides in it): inline
    thumbnails stop at INLINE_BYTES and rows at ARTIFACT_BYTES, the rest counted."""
    import re

    import cv2
    import numpy as np
    from prefect import flow
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    from tasks.artifacts import ARTIFACT_BYTES
    from tasks.review import ReviewHold
    from tasks.review_artifact import INLINE_BYTES, publish_review

    render = tmp_path / "render.png"  # noise: a thumbnail of ~15 kB, larger than any product's
    cv2.imwrite(str(render), np.random.default_rng(0).integers(0, 255, (400, 300, 3), dtype=np.uint8))
    info = RenderInfo(
        profile="shopify", template="white_studio", path=str(render), sha256="0" * 64, scale=1.0,
        offset_x=0.0, offset_y=0.0, params=RenderParams(),
    )  # fmt: skip
    held = [
        ReviewItem(
            job=SkuJob(sku_id=i, sku=f"SKU-{i:05d}", dirname=f"d{i}", source_path="a.png", template="white_studio"),
            source=SourceInfo(sku_id=i, sha256="1" * 64, path="/s.png", width=1, height=1, format="PNG", size_bytes=1),
            outcome=SkuOutcome(sku_id=i, status="qc_failed", reason="qc: part of the product missing", renders=[info]),
        )
        for i in range(4000)
    ]

    @flow
    def publish() -> str:
        return publish_review("cd" * 16, "big", ReviewHold(round=1, held=held), [], 1)

    publish()
    with get_client(sync_client=True) as client:
        (artifact,) = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["review-cdcdcdcd-round-1"]))
        )
    data = artifact.data
    assert len(data.encode("utf-8")) <= ARTIFACT_BYTES + 1_000  # + the heading
    uris = re.findall(r"data:image/jpeg;base64,[A-Za-z0-9+/=]+", data)
    assert 0 < len(uris) < len(held)
    assert sum(len(u) for u in uris) <= INLINE_BYTES + max(len(u) for u in uris)  # the last one may cross it
    assert "not shown: no room for more inline thumbnails; set thumbnail_store" in data
    listed = data.count("| **SKU-")
    assert f"and {len(held) - listed} more held SKUs" in data
