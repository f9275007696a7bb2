"""The automatic re-render loop, with failures forced through the thresholds in RunSettings:
each attempt changes what the failed defect asks for, unfixable failures cost no retry,
and the attempt kept is the best one."""

import pytest
from PIL import Image
from sqlalchemy import select

from catalog.db import session_scope
from catalog.models import Render, Sku
from tests.conftest import CLASSICAL_ENLARGEMENT, EXAMPLES

pytestmark = pytest.mark.usefixtures("prefect_harness")

CUP = "CUP-ESPRESSO-01"
ALWAYS = {"warn": -1.0, "fail": -1.0}  # every value is above: the check always fails
FITS = CLASSICAL_ENLARGEMENT  # the sample cup needs ~4x: accepted here, so the forced failure is the only one


@pytest.fixture
def cup_catalog(tmp_path):
    folder = tmp_path / "catalog"
    (folder / "images").mkdir(parents=True)
    # Mirrored: the session shares one Prefect result store, and other flow tests render the
    # sample cup itself; this test's cached work must not be theirs, nor theirs this one's.
    with Image.open(EXAMPLES / "images" / "espresso-cup.png") as cup:
        cup.transpose(Image.FLIP_LEFT_RIGHT).save(folder / "images" / "espresso-cup.png")
    rows = [line for line in (EXAMPLES / "manifest.csv").read_text().splitlines() if line.startswith(("sku,", CUP))]
    (folder / "manifest.csv").write_text("\n".join(rows) + "\n")
    return folder / "manifest.csv"


def _run(manifest, out, settings):
    from flows.catalog_batch import catalog_batch

    report = catalog_batch(manifest=str(manifest), out_dir=str(out), settings=settings, profiles=["amazon-main"])
    with session_scope(settings.database_url) as s:
        sku = s.scalar(select(Sku).where(Sku.sku == CUP))
        params = [r.params for r in s.scalars(select(Render).where(Render.sku_id == sku.id).order_by(Render.id))]
    return next(e for e in report["skus"] if e["sku"] == CUP), params


def test_a_halo_is_retried_with_cleaner_edges_up_to_the_limit(cup_catalog, tmp_path, run_settings):
    settings = run_settings(thresholds={"halo_share": ALWAYS, **FITS}, max_attempts=3)
    entry, params = _run(cup_catalog, tmp_path / "out", settings)
    assert entry["state"] == "rejected" and entry["reason"] == "qc: halo around the product (amazon-main)", entry
    assert [p["attempt"] for p in params] == [1, 2, 3]
    assert [p["refine_strength"] for p in params] == [1, 2, 3]
    assert [p["decontaminate"] for p in params] == [False, True, True]


def test_a_source_too_small_goes_to_review_without_a_retry(cup_catalog, tmp_path, run_settings):
    settings = run_settings(thresholds={"source_enlargement": {"warn": 0.01, "fail": 0.01}}, max_attempts=3)
    entry, params = _run(cup_catalog, tmp_path / "out", settings)
    assert entry["state"] == "rejected"
    assert "source too small for amazon-main: needs" in entry["reason"] and "enlargement" in entry["reason"]
    assert [p["attempt"] for p in params] == [1]


def test_a_filled_hole_is_cut_again_with_holes_open(cup_catalog, tmp_path, run_settings):
    settings = run_settings(thresholds={"cut_background_inside": ALWAYS, **FITS}, max_attempts=2)
    entry, params = _run(cup_catalog, tmp_path / "out", settings)
    assert "background inside the product" in entry["reason"]
    assert [(p["fill_holes"], p["refine_strength"]) for p in params] == [(True, 1), (False, 2)]
