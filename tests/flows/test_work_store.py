"""Work files in S3 (a loopback S3-compatible server): nothing on the node's disk, the same
bytes out as a local run, and a second node finds the first one's work."""

import hashlib
import shutil

import pytest
from prefect.settings import PREFECT_LOCAL_STORAGE_PATH, temporary_settings

from tasks.workdir import LocalWorkStore, S3WorkStore
from tests.conftest import EXAMPLES
from tests.fakes.s3 import create_bucket, s3_client, s3_destination, s3_endpoint  # noqa: F401 (fixture)

pytestmark = pytest.mark.usefixtures("prefect_harness")
SKUS = ("CUP-ESPRESSO-01", "STICKER-LOGO")


@pytest.mark.parametrize("kind", ["local", "s3"])
def test_store_put_get_exists_and_missing(kind, tmp_path, s3_endpoint):
    if kind == "local":
        store = LocalWorkStore(tmp_path / "work")
    else:
        store = S3WorkStore(s3_destination(s3_endpoint, create_bucket(s3_endpoint), prefix="lightbox/work"))
    sha = "ab" * 32
    ref = store.ref(sha, "mask-0123.png")
    assert not store.exists(ref)
    with pytest.raises(FileNotFoundError):
        store.get(ref)
    store.put(ref, b"pixels")
    assert store.exists(ref) and store.get(ref) == b"pixels"
    if kind == "s3":
        assert ref.startswith("s3://") and ref.endswith(f"lightbox/work/ab/{sha}/mask-0123.png")
        with pytest.raises(ValueError, match="not in this work store"):
            store.get("s3://another-bucket/x")


@pytest.fixture
def catalog(tmp_path):
    folder = tmp_path / "catalog"
    shutil.copytree(EXAMPLES / "images", folder / "images")
    rows = [line for line in (EXAMPLES / "manifest.csv").read_text().splitlines() if line.startswith(("sku,", *SKUS))]
    (folder / "manifest.csv").write_text("\n".join(rows) + "\n")
    return folder / "manifest.csv"


def _run(manifest, out, settings):
    from flows.catalog_batch import catalog_batch

    report = catalog_batch(
        manifest=str(manifest), out_dir=str(out), settings=settings, profiles=["amazon-main", "transparent"]
    )
    files = {
        str(p.relative_to(out)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(out.rglob("*"))
        if p.is_file() and p.parent != out  # the images and masks, not the report
    }
    return report, files


def test_a_batch_with_its_work_in_s3(catalog, tmp_path, run_settings, s3_endpoint):
    bucket = create_bucket(s3_endpoint)
    s3_destination(s3_endpoint, bucket, prefix="work").save("lb-test-work", overwrite=True)
    local_report, local_files = _run(catalog, tmp_path / "out-local", run_settings(data_dir=tmp_path / "local"))
    exported = [e["sku"] for e in local_report["skus"] if e["state"] == "exported"]
    assert exported, local_report

    node_a = run_settings(data_dir=tmp_path / "node-a", work_store="lightbox-s3-destination/lb-test-work")
    report, files = _run(catalog, tmp_path / "out-s3", node_a)
    assert files == local_files  # byte-identical exports and masks
    assert not (tmp_path / "node-a" / "work").exists()  # nothing on this node's disk
    keys = [o["Key"] for o in s3_client(s3_endpoint).list_objects_v2(Bucket=bucket)["Contents"]]
    assert any(k.endswith("/source") for k in keys) and any(k.endswith(".png") for k in keys)

    # Another node (its own data dir, catalog and result cache) meets the same photos: it
    # renders them again, but their masks come from the bucket; the exports are the same bytes.
    node_b = run_settings(
        data_dir=tmp_path / "node-b",
        database_url=f"sqlite:///{tmp_path / 'node-b.db'}",
        work_store="lightbox-s3-destination/lb-test-work",
    )
    with temporary_settings({PREFECT_LOCAL_STORAGE_PATH: str(tmp_path / "node-b-results")}):
        again, files_b = _run(catalog, tmp_path / "out-b", node_b)
    assert files_b == local_files
    for entry in again["skus"]:
        if entry["sku"] in exported:
            assert entry["state"] == "exported", entry
            assert entry["timings"]["segment"] == "cached" and entry["timings"]["render"] != "cached", entry
