"""A lifestyle template through the whole batch flow, on tiny random SDXL components."""

import shutil

import pytest
from sqlalchemy import select

from catalog.db import session_scope
from catalog.models import Render
from imaging.provenance import COMPOSITE_WITH_AI, read_digital_source_type
from tasks.workdir import work_store
from tests.conftest import EXAMPLES

pytestmark = pytest.mark.usefixtures("prefect_harness")

TINY_PROFILE = {"tiny-scene": {"format": "jpeg", "canvas": [256, 256], "background": "template"}}


@pytest.fixture(scope="module")
def tiny_weights(tmp_path_factory):
    from tests.fixtures.tiny_models import save_tiny_clip, save_tiny_depth, save_tiny_diffusion

    root = tmp_path_factory.mktemp("tiny-weights")
    paths = save_tiny_diffusion(root)
    return {
        "inpaint": str(paths["inpaint"]),
        "controlnet_depth": str(paths["depth"]),
        "depth": str(save_tiny_depth(root / "depth")),
        "clip": str(save_tiny_clip(root / "clip")),
    }


# A team's own template, added without code: the built-in marble counter, cut to two steps
# and two variants so tiny CPU weights finish quickly.
TEST_TEMPLATE = """
name: test_counter
kind: lifestyle
description: marble counter, two steps (tests)
version: 1
prompt: a product photo on a white marble kitchen counter, {light}, soft daylight
negative_prompt: text, watermark, blurry
controlnet: depth
num_inference_steps: 2
variants: 2
anchor: floor
"""


def _manifest(tmp_path):
    folder = tmp_path / "catalog"
    folder.mkdir()
    shutil.copy(EXAMPLES / "images" / "espresso-cup.png", folder / "cup.png")
    (folder / "m.csv").write_text("sku,image,template\nCUP-1,cup.png,test_counter\n")
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "test_counter.yaml").write_text(TEST_TEMPLATE)
    return folder / "m.csv"


def _run(manifest, out, settings):
    from flows.catalog_batch import catalog_batch

    # one SKU: a test whose SKU fails on purpose still wants the report back
    return catalog_batch(
        manifest=str(manifest), out_dir=str(out), settings=settings, profiles=["tiny-scene"], max_failed_share=1.0
    )


def test_lifestyle_template_runs_end_to_end(tmp_path, run_settings, tiny_weights):
    settings = run_settings(
        diffusion=tiny_weights,
        profiles=TINY_PROFILE,
        generation_size=64,
        max_attempts=1,
        templates_dir=tmp_path / "templates",
    )
    report = _run(_manifest(tmp_path), tmp_path / "out", settings)
    (entry,) = report["skus"]
    assert entry["state"] in ("exported", "rejected"), entry  # random weights paint noise; QC decides
    assert entry["qc"]["tiny-scene"]["metrics"]["colour.delta_e_mean"] < 3.0  # product kept
    with session_scope(settings.database_url) as s:
        render = s.scalar(select(Render))
        assert render.template == "test_counter" and render.profile == "tiny-scene"
        assert render.seed is not None
        stored = work_store(settings).get(render.uri)
    # the generated scene says so in the file (IPTC DigitalSourceType, XMP) and in report.json
    assert read_digital_source_type(stored) == COMPOSITE_WITH_AI
    assert entry["qc"]["tiny-scene"]["provenance"] == COMPOSITE_WITH_AI
    if entry["state"] == "exported":
        shipped = (tmp_path / "out" / "CUP-1" / "tiny-scene.jpg").read_bytes()
        assert read_digital_source_type(shipped) == COMPOSITE_WITH_AI
        (export,) = [e for e in entry["exports"] if e["profile"] == "tiny-scene"]
        assert export["provenance"] == COMPOSITE_WITH_AI and "source.resolution" in export["rules"]


def test_lifestyle_without_weights_fails_the_sku_with_the_fix(tmp_path, run_settings):
    settings = run_settings(profiles=TINY_PROFILE, max_attempts=1, templates_dir=tmp_path / "templates")
    report = _run(_manifest(tmp_path), tmp_path / "out", settings)
    (entry,) = report["skus"]
    assert entry["state"] == "failed"
    assert "needs SDXL inpaint" in entry["reason"] and "ModelStore" in entry["reason"]
