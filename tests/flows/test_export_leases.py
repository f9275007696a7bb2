"""Exports under a lease (catalog/delivery.py), with real workers racing: two threads
delivering to one product of the fake Shopify store (tests/fakes/shopify_admin.py, its
media PROCESSING before READY) on SQLite and PostgreSQL; a worker SIGKILLed in the middle
of an S3 multipart upload (the loopback moto server), whose lease is taken over once it
expires and whose open upload is aborted; and a Shopify image that FAILED processing,
which fails the export (naming the SKU), leaves the product its old image and does not
hold the key."""

from __future__ import annotations

import hashlib
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from blocks.destinations import ExportContext
from blocks.shopify import ShopifyError
from catalog import repository as repo
from catalog.db import session_scope
from catalog.manifest import ManifestEntry
from catalog.models import Export
from tasks.export import deliver
from tests.fakes.s3 import create_bucket, s3_client, s3_destination, s3_endpoint  # noqa: F401
from tests.fakes.shopify_admin import shopify_admin, shopify_store  # noqa: F401

REPO = Path(__file__).resolve().parents[2]
SKU = "CUP-01"
KEY = f"{SKU}/shopify.jpg"


def sku_row(url: str) -> int:
    with session_scope(url) as s:
        repo.create_batch(
            s,
            batch_id="b",
            name="t",
            manifest_path="m.csv",
            manifest_sha256="0" * 64,
            template="white_studio",
            profiles=["shopify"],
            review_policy="auto",
        )
        (row,) = repo.add_skus(s, "b", [ManifestEntry(1, SKU, Path("a.png"))], "white_studio")
        return row.id


def args(sku_id: int, data: bytes, product: str | None = None, key: str = KEY) -> dict:
    return dict(
        sku_id=sku_id,
        render_id=None,
        profile="shopify",
        key=key,
        data=data,
        content_type="image/jpeg",
        context=ExportContext(sku=SKU, title="Cup", profile="shopify", product_id=product),
    )


def race(*workers) -> list:
    """Run the callables on threads released together; their results, or their errors."""
    start, results = threading.Barrier(len(workers)), [None] * len(workers)

    def run(i: int, work) -> None:
        start.wait()
        try:
            results[i] = work()
        except Exception as exc:  # reported to the test, which asserts there is none
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i, w)) for i, w in enumerate(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    return results


@pytest.mark.parametrize("mode", ["replace", "append"])
@pytest.mark.parametrize("same_bytes", [True, False], ids=["same-render", "two-renders"])
def test_two_workers_racing_on_one_product_attach_each_image_once(database_url, shopify_admin, mode, same_bytes):  # noqa: F811
    fake = shopify_admin
    product = fake.add_product("Cup")
    merchant = fake.add_media(product, "The merchant's own photo")
    sku = sku_row(database_url)
    renders = [b"\xff\xd8 render one", b"\xff\xd8 render one" if same_bytes else b"\xff\xd8 render two"]
    fake.slow("stagedUploadsCreate", 0.3)  # both would list the product before either attached

    def worker(data: bytes):
        store = shopify_store(fake, media_mode=mode)  # each worker its own client
        try:
            return deliver(store, database_url, **args(sku, data, product))
        finally:
            store.close()

    results = race(*(lambda d=d: worker(d) for d in renders))
    assert not [r for r in results if isinstance(r, Exception)], results
    attached = [f for f in fake.files.values() if f["data"] in renders]
    assert sorted(f["data"] for f in attached) == sorted(set(renders))  # each image attached once
    assert fake.operations().count("productUpdate") == len(set(renders))
    ours = [m for m in fake.product_media(product) if m["id"] != merchant]
    assert all(m["status"] == "READY" for m in ours)
    assert len(ours) == (1 if mode == "replace" or same_bytes else 2)
    assert min(fake.media_counts(product)) >= 1 and len(fake.product_media(product)) >= 2
    if same_bytes:
        assert sorted(r.skipped for r in results) == [False, True]  # one uploaded, one found it done
    with session_scope(database_url) as s:
        assert {e.status for e in s.scalars(select(Export))} == {"done"}


def test_replace_mode_race_never_leaves_the_product_without_an_image(database_url, shopify_admin):  # noqa: F811
    fake = shopify_admin
    product = fake.add_product("Cup")
    sku = sku_row(database_url)
    first = deliver(shopify_store(fake, media_mode="replace"), database_url, **args(sku, b"\xff\xd8 v1", product))
    assert not first.skipped
    fake.slow("productUpdate", 0.2)
    renders = [b"\xff\xd8 v2", b"\xff\xd8 v3"]
    results = race(
        *[
            lambda d=d: deliver(shopify_store(fake, media_mode="replace"), database_url, **args(sku, d, product))
            for d in renders
        ]
    )
    assert not [r for r in results if isinstance(r, Exception)], results
    [left] = fake.product_media(product)
    assert left["data"] in renders and left["status"] == "READY"
    counts = fake.media_counts(product)
    assert counts[0] == 1 and min(counts) == 1  # from the first image on, never none


def test_a_worker_killed_mid_multipart_upload_is_taken_over_and_its_upload_aborted(database_url, s3_endpoint, tmp_path):  # noqa: F811
    bucket = create_bucket(s3_endpoint)
    client = s3_client(s3_endpoint)
    sku = sku_row(database_url)
    data = bytes(range(256)) * (40 * 4096)  # 40 MiB: eight 5 MiB parts
    script = textwrap.dedent(
        f"""
        import hashlib
        from blocks.destinations import ExportContext
        from catalog.delivery import deliver
        from tests.fakes.s3 import s3_destination
        data = bytes(range(256)) * (40 * 4096)
        dest = s3_destination({s3_endpoint!r}, {bucket!r}, prefix="exports", multipart_threshold_mb=5)
        deliver(dest, {database_url!r}, sku_id={sku}, render_id=None, profile="shopify", key={KEY!r},
                data=data, content_type="image/jpeg", lease_s=3,
                context=ExportContext(sku={SKU!r}, profile="shopify"))
        """
    )
    log = tmp_path / "worker.log"
    with log.open("w") as out:
        child = subprocess.Popen([sys.executable, "-c", script], cwd=REPO, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        while not client.list_multipart_uploads(Bucket=bucket).get("Uploads"):
            assert child.poll() is None, f"the worker ended before its upload started:\n{log.read_text()}"
            assert time.monotonic() < deadline, "the worker never started its multipart upload"
            time.sleep(0.005)
        child.send_signal(signal.SIGKILL)
        assert child.wait(10) == -signal.SIGKILL
    finally:
        child.kill()
        child.wait(10)
    [left] = client.list_multipart_uploads(Bucket=bucket)["Uploads"]
    killed_at = time.monotonic()

    dest = s3_destination(s3_endpoint, bucket, prefix="exports", multipart_threshold_mb=5)
    info = deliver(dest, database_url, **args(sku, data))
    assert not info.skipped and time.monotonic() - killed_at > 0.5  # waited for the dead lease
    assert client.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []  # aborted
    head = client.head_object(Bucket=bucket, Key=f"exports/{KEY}")
    assert head["Metadata"]["sha256"] == hashlib.sha256(data).hexdigest() and left["Key"] == f"exports/{KEY}"
    with session_scope(database_url) as s:
        assert [(e.status, e.destination_key) for e in s.scalars(select(Export))] == [("done", KEY)]


def test_a_failed_shopify_image_fails_the_export_naming_the_sku_and_frees_the_key(database_url, shopify_admin):  # noqa: F811
    fake = shopify_admin
    product = fake.add_product("Cup")
    sku = sku_row(database_url)
    store = shopify_store(fake, media_mode="replace", media_attempts=2)
    deliver(store, database_url, **args(sku, b"\xff\xd8 v1", product))
    [old] = fake.product_media(product)
    fake.fail_processing(times=2)
    with pytest.raises(ShopifyError, match=f"SKU '{SKU}'.*IMAGE_PROCESSING_FAILURE"):
        deliver(store, database_url, **args(sku, b"\xff\xd8 v2", product))
    assert fake.product_media(product) == [old]  # the product keeps its image
    with session_scope(database_url) as s:
        assert sorted(e.status for e in s.scalars(select(Export))) == ["done", "pending"]  # never "done"
    started = time.monotonic()
    info = deliver(store, database_url, **args(sku, b"\xff\xd8 v2", product))  # Shopify recovered
    assert not info.skipped and time.monotonic() - started < 5  # the failed attempt freed the key
    [new] = fake.product_media(product)
    assert new["data"] == b"\xff\xd8 v2" and new["status"] == "READY"
    with session_scope(database_url) as s:
        assert sorted(e.status for e in s.scalars(select(Export))) == ["done", "done"]


def test_the_holder_renews_its_lease_through_an_upload_longer_than_the_lease(database_url, shopify_admin):  # noqa: F811
    from catalog import delivery

    fake = shopify_admin
    product = fake.add_product("Cup")
    sku = sku_row(database_url)
    fake.slow("productUpdate", 2.5)  # the attach takes 2.5 leases

    def holder():
        return delivery.deliver(shopify_store(fake), database_url, lease_s=1.0, **args(sku, b"\xff\xd8 v1", product))

    def latecomer():
        time.sleep(1.5)  # past the first lease: only a renewed one keeps it out
        return delivery.deliver(shopify_store(fake), database_url, lease_s=1.0, **args(sku, b"\xff\xd8 v1", product))

    first, second = race(holder, latecomer)
    assert not first.skipped and second.skipped  # the latecomer waited, then found it done
    assert fake.operations().count("productUpdate") == 1 and len(fake.product_media(product)) == 1
