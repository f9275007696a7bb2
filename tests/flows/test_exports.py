"""Exports to configured destinations: local disk, S3 (a loopback moto server) and Shopify
(the loopback fake Admin API, tests/fakes/shopify_admin.py), exactly once — through a
crash after Shopify attached the image, and across a re-run of the batch."""

from __future__ import annotations

import hashlib
import re
import shutil

import httpx
import pytest
from sqlalchemy import select

from blocks.destinations import ExportContext
from catalog.db import migrate, session_scope
from catalog.models import Export
from tasks.export import check_destinations, deliver, plan_deliveries
from tasks.records import DestinationSpec, SkuJob, SourceInfo
from tasks.results import ReviewItem, SkuOutcome
from tests.conftest import EXAMPLES
from tests.fakes.s3 import create_bucket, s3_client, s3_destination, s3_endpoint  # noqa: F401
from tests.fakes.shopify_admin import shopify_admin, shopify_store  # noqa: F401

CUP = "CUP-ESPRESSO-01"


@pytest.fixture
def cup_manifest(tmp_path, shopify_admin):
    """The espresso cup, linked to a product of the fake shop by a shopify_product_id column."""
    product = shopify_admin.add_product("Espresso cup")
    folder = tmp_path / "catalog"
    (folder / "images").mkdir(parents=True)
    shutil.copy(EXAMPLES / "images" / "espresso-cup.png", folder / "images")
    number = product.rsplit("/", 1)[1]
    (folder / "manifest.csv").write_text(
        f"sku,image,title,shopify_product_id\n{CUP},images/espresso-cup.png,Espresso cup with saucer,{number}\n"
    )
    return folder / "manifest.csv", product


@pytest.fixture
def saved_destinations(prefect_harness, s3_endpoint, shopify_admin):  # noqa: F811
    """An S3 destination and the fake shop saved as blocks; the specs that name them."""
    bucket = create_bucket(s3_endpoint)
    s3_destination(s3_endpoint, bucket, prefix="exports").save("lb-test-s3", overwrite=True)
    shopify_store(shopify_admin).save("lb-test-shop", overwrite=True)
    specs = [
        DestinationSpec(),
        DestinationSpec(block="lightbox-s3-destination/lb-test-s3"),
        DestinationSpec(block="lightbox-shopify-store/lb-test-shop", profiles=["shopify"]),
    ]
    return bucket, specs


def _exports(url: str) -> list[tuple]:
    with session_scope(url) as s:
        return sorted(
            (e.destination.split(":")[0], e.profile, e.status, e.external_id is not None)
            for e in s.scalars(select(Export))
        )


def test_batch_exports_to_disk_s3_and_shopify_once_through_a_dropped_connection_and_a_rerun(
    cup_manifest, saved_destinations, shopify_admin, s3_endpoint, tmp_path, run_settings
):  # noqa: F811
    from flows.catalog_batch import catalog_batch

    manifest, product = cup_manifest
    bucket, specs = saved_destinations
    settings, out = run_settings(), tmp_path / "out"
    # Shopify applies the attach, then the connection drops before we hear back: the export
    # task's retry must find the attached image by its marker instead of attaching a second
    shopify_admin.fail("productUpdate", "drop_after")
    report = catalog_batch(
        manifest=str(manifest),
        out_dir=str(out),
        settings=settings,
        profiles=["amazon-main", "shopify"],
        destinations=specs,
    )

    (entry,) = report["skus"]
    assert entry["state"] == "exported", entry
    assert sorted(p.name for p in (out / CUP).iterdir()) == ["amazon-main.jpg", "mask.png", "shopify.jpg"]
    objects = s3_client(s3_endpoint).list_objects_v2(Bucket=bucket)["Contents"]
    assert sorted(o["Key"] for o in objects) == [
        f"exports/{CUP}/{name}" for name in ("amazon-main.jpg", "mask.png", "shopify.jpg")
    ]
    local = (out / CUP / "shopify.jpg").read_bytes()
    head = s3_client(s3_endpoint).head_object(Bucket=bucket, Key=f"exports/{CUP}/shopify.jpg")
    assert head["Metadata"]["sha256"] == hashlib.sha256(local).hexdigest()
    (media,) = shopify_admin.product_media(product)
    assert media["data"] == local and media["alt"].startswith("Espresso cup with saucer [lightbox:")
    assert shopify_admin.operations().count("productUpdate") == 1
    assert [c.fault for c in shopify_admin.calls if c.operation == "productUpdate"] == ["drop_after"]
    assert _exports(settings.database_url) == sorted(
        [("local", p, "done", True) for p in ("amazon-main", "shopify", "mask")]
        + [("s3", p, "done", True) for p in ("amazon-main", "shopify", "mask")]
        + [("shopify", "shopify", "done", True)]
    )

    # the batch again: everything is found done; nothing is uploaded anywhere
    calls = len(shopify_admin.calls)
    again = catalog_batch(
        manifest=str(manifest),
        out_dir=str(out),
        settings=settings,
        profiles=["amazon-main", "shopify"],
        destinations=specs,
    )
    (entry,) = again["skus"]
    assert entry["state"] == "exported" and entry["timings"]["export"].startswith("skipped")
    assert len(shopify_admin.calls) == calls and len(shopify_admin.product_media(product)) == 1
    assert len(_exports(settings.database_url)) == 7


def test_a_crash_after_shopify_attached_is_finished_by_the_next_run_without_a_second_upload(shopify_admin, tmp_path):  # noqa: F811
    from blocks.shopify import ShopifyError

    url = f"sqlite:///{tmp_path / 'catalog.db'}"
    migrate(url)
    product = shopify_admin.add_product()
    sku_id = _sku_row(url)
    data = b"\xff\xd8 the studio render"
    args = dict(
        sku_id=sku_id,
        render_id=None,
        profile="shopify",
        key=f"{CUP}/shopify.jpg",
        data=data,
        content_type="image/jpeg",
        context=ExportContext(sku=CUP, title="Cup", profile="shopify", product_id=product),
    )
    shopify_admin.fail("productUpdate", "drop_after")
    with pytest.raises(ShopifyError, match="may have been applied"):
        deliver(shopify_store(shopify_admin), url, **args)  # the run dies here
    assert [row[2] for row in _exports(url)] == ["pending"]
    info = deliver(shopify_store(shopify_admin), url, **args)  # the next run
    assert not info.skipped and _exports(url) == [("shopify", "shopify", "done", True)]
    assert len(shopify_admin.product_media(product)) == 1
    assert shopify_admin.operations().count("productUpdate") == 1
    assert deliver(shopify_store(shopify_admin), url, **args).skipped  # and once done, done


def test_shopify_needs_the_skus_product_id(shopify_admin, tmp_path):  # noqa: F811
    job = SkuJob(sku_id=1, sku=CUP, dirname=CUP, source_path="a.png", template="white_studio")
    with pytest.raises(ValueError, match="has no shopify_product_id in the manifest"):
        plan_deliveries(
            shopify_store(shopify_admin),
            DestinationSpec(block="lightbox-shopify-store/x"),
            job,
            SkuOutcome(sku_id=1, status="passed"),
            {},
        )


def test_destinations_are_checked_before_any_work(saved_destinations, tmp_path):
    _, specs = saved_destinations
    check_destinations.fn(specs, str(tmp_path), ["amazon-main", "shopify"])
    with pytest.raises(ValueError, match="not rendered in this batch"):
        check_destinations.fn([DestinationSpec(profiles=["transparent"])], str(tmp_path), ["shopify"])
    with pytest.raises(ValueError, match="takes images, not masks"):
        check_destinations.fn([specs[2].model_copy(update={"mask": True})], str(tmp_path), ["shopify"])
    with pytest.raises(ValueError, match="not '<block-type-slug>/<block-name>'"):
        check_destinations.fn([DestinationSpec(block="lb-test-s3")], str(tmp_path), ["shopify"])
    with pytest.raises(ValueError):
        check_destinations.fn([DestinationSpec(block="lightbox-s3-destination/missing")], str(tmp_path), ["shopify"])


def test_review_thumbnails_can_be_presigned_s3_urls(saved_destinations, s3_endpoint, tmp_path):  # noqa: F811
    import cv2
    import numpy as np
    from prefect import flow
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    from tasks.review import ReviewHold
    from tasks.review_artifact import publish_review

    bucket, _ = saved_destinations
    render = tmp_path / "render.png"
    cv2.imwrite(str(render), np.full((400, 300, 4), 200, np.uint8))
    job = SkuJob(sku_id=1, sku="MUG|1", dirname="x", source_path="a.png", template="white_studio")
    source = SourceInfo(sku_id=1, sha256="1" * 64, path="/s.png", width=1, height=1, format="PNG", size_bytes=1)
    outcome = SkuOutcome(sku_id=1, status="passed", renders=[_render_info(str(render))])
    hold = ReviewHold(round=1, held=[ReviewItem(job=job, source=source, outcome=outcome)])

    @flow
    def publish() -> str:
        return publish_review(
            "ab" * 16, "b", hold, ["'X' is not waiting"], 1, "lightbox-s3-destination/lb-test-s3", 600
        )

    text = publish()
    assert "review-abababab-round-1" in text and "MUG\\|1" in text and "'X' is not waiting" in text
    with get_client(sync_client=True) as client:
        (artifact,) = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["review-abababab-round-1"]))
        )
    (url,) = re.findall(r"!\[MUG\\\|1\]\((http[^)]+)\)", artifact.data)
    assert url.startswith(f"{s3_endpoint}/{bucket}/exports/review-{'ab' * 16}/x-") and "Signature=" in url
    got = httpx.get(url)
    assert got.status_code == 200 and got.headers["content-type"] == "image/jpeg"
    decoded = cv2.imdecode(np.frombuffer(got.content, np.uint8), cv2.IMREAD_COLOR)
    assert decoded.shape[:2] == (160, 120)


def _render_info(path: str):
    from tasks.records import RenderInfo, RenderParams

    return RenderInfo(
        profile="shopify",
        template="white_studio",
        path=path,
        sha256="0" * 64,
        scale=1.0,
        offset_x=0.0,
        offset_y=0.0,
        params=RenderParams(),
    )


def _sku_row(url: str) -> int:
    from pathlib import Path

    from catalog import repository as repo
    from catalog.manifest import ManifestEntry

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
        (row,) = repo.add_skus(s, "b", [ManifestEntry(1, CUP, Path("a.png"))], "white_studio")
        return row.id
