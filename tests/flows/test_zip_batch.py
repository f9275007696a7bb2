"""A batch from a ZIP manifest: the archive is unpacked into a folder of its own under
``<data_dir>/unpacked`` and that folder is gone when the batch ends (the originals live
on in the work store), while another unpack of the same archive is left alone."""

from __future__ import annotations

import zipfile

import pytest

from catalog.manifest import load_manifest
from tests.conftest import EXAMPLES

pytestmark = pytest.mark.usefixtures("prefect_harness")
CUP = "CUP-ESPRESSO-01"


def test_a_zip_batch_removes_its_unpacked_folder_when_it_ends(tmp_path, run_settings):
    from flows.catalog_batch import catalog_batch

    archive = tmp_path / "catalog.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("catalog/manifest.csv", f"sku,image\n{CUP},images/cup.png\n")
        z.write(EXAMPLES / "images" / "espresso-cup.png", "catalog/images/cup.png")
    settings = run_settings(max_attempts=1)
    unpacked = settings.data_dir / "unpacked"
    other = load_manifest(archive, unpack_dir=unpacked)  # say, a submission still counting it

    out = tmp_path / "out"
    report = catalog_batch(manifest=str(archive), out_dir=str(out), settings=settings, profiles=["shopify"])

    (entry,) = report["skus"]
    assert entry["state"] in ("exported", "rejected"), entry
    assert sorted(p.name for p in unpacked.iterdir()) == [other.unpacked.name]
    assert other.entries[0].image.is_file()
