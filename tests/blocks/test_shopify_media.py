"""Shopify media processing: an attached image is PROCESSING until Shopify says READY or
FAILED (the loopback fake models it, tests/fakes/shopify_admin.py). ``put`` waits for READY
before replace mode detaches anything, a FAILED upload is deleted and sent again or the
export fails naming the SKU, and nothing is reported done before the image is READY."""

from __future__ import annotations

import hashlib

import pytest

from blocks.destinations import ExportContext
from blocks.shopify import ShopifyError, media_marker
from tests.fakes.shopify_admin import (  # noqa: F401  (shopify_admin is a fixture)
    ShopifyAdminFake,
    serve,
    shopify_admin,
    shopify_store,
)

OLD, NEW = b"yesterday's render", b"today's render"
KEY = "MUG-001/shopify.png"


def context(product_id: str) -> ExportContext:
    return ExportContext(sku="MUG-001", title="Blue mug", profile="shopify", product_id=product_id)


def put(store, ctx: ExportContext, data: bytes) -> str:
    return store.put(KEY, data, content_type="image/png", sha256=hashlib.sha256(data).hexdigest(), context=ctx)


def recording_sleep(fake: ShopifyAdminFake, store) -> list[float]:
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        fake.clock.advance(seconds)

    store.set_sleep(sleep)
    return sleeps


def test_replace_detaches_the_old_image_only_once_the_new_one_is_ready():
    with serve(ShopifyAdminFake(processing_polls=4)) as fake:
        store = shopify_store(fake, media_mode="replace")
        ctx = context(fake.add_product())
        old = put(store, ctx, OLD)
        calls = len(fake.calls)
        sleeps = recording_sleep(fake, store)
        new = put(store, ctx, NEW)
    ops = [c.operation for c in fake.calls[calls:] if c.kind == "graphql"]
    # listed, staged, attached, listed (PROCESSING), then polled until READY, then detached
    assert ops == ["product", "stagedUploadsCreate", "productUpdate", "product", *["node"] * 4, "fileUpdate"]
    assert sleeps == [0.5, 1.0, 2.0]  # backoff between the polls that still said PROCESSING
    [media] = fake.product_media(ctx.product_id)
    assert media["id"] == new != old and media["status"] == "READY" and media["data"] == NEW
    assert min(fake.media_counts(ctx.product_id)[1:]) == 1  # never without an image


def test_an_image_that_fails_processing_is_deleted_and_uploaded_again(shopify_admin):  # noqa: F811
    fake, store = shopify_admin, shopify_store(shopify_admin, media_mode="replace")
    ctx = context(fake.add_product())
    old = put(store, ctx, OLD)
    fake.fail_processing(times=1)
    new = put(store, ctx, NEW)
    assert fake.operations().count("productUpdate") == 3  # old, the failed one, the retry
    assert fake.operations().count("fileDelete") == 1
    [media] = fake.product_media(ctx.product_id)
    assert media["id"] == new and media["status"] == "READY" and media["data"] == NEW
    assert old not in fake.product_media(ctx.product_id) and old in fake.files  # detached, kept
    assert min(fake.media_counts(ctx.product_id)[1:]) == 1


def test_an_image_that_keeps_failing_fails_the_export_and_keeps_the_old_image(shopify_admin):  # noqa: F811
    fake, store = shopify_admin, shopify_store(shopify_admin, media_mode="replace", media_attempts=2)
    ctx = context(fake.add_product())
    old = put(store, ctx, OLD)
    fake.fail_processing(times=2)
    with pytest.raises(ShopifyError) as failed:
        put(store, ctx, NEW)
    message = str(failed.value)
    assert "SKU 'MUG-001'" in message and ctx.product_id in message
    assert "after 2 upload(s): IMAGE_PROCESSING_FAILURE" in message and "keeps its previous image" in message
    assert [m["id"] for m in fake.product_media(ctx.product_id)] == [old]  # the old one stays
    assert "fileUpdate" not in fake.operations()  # nothing was detached
    assert fake.operations().count("fileDelete") == 2  # both failed uploads removed
    assert all(f["status"] != "FAILED" for f in fake.files.values())


def test_still_processing_at_the_deadline_fails_and_the_next_put_finds_the_image():
    with serve(ShopifyAdminFake(processing_polls=1000)) as fake:
        store = shopify_store(fake, media_mode="replace", media_timeout_s=20)
        ctx = context(fake.add_product())
        old = fake.add_media(ctx.product_id, f"x {media_marker(hashlib.sha256(OLD).hexdigest(), ctx)}")
        sleeps = recording_sleep(fake, store)
        with pytest.raises(ShopifyError, match="MUG-001.*still PROCESSING after 20 s"):
            put(store, ctx, NEW)
        assert sum(sleeps) == 20 and max(sleeps) == 8.0  # bounded, backing off to the cap
        assert [m["id"] for m in fake.product_media(ctx.product_id)][0] == old  # not detached
        [processing] = [m for m in fake.product_media(ctx.product_id) if m["id"] != old]
        processing["polls_left"] = 0  # Shopify finishes meanwhile
        assert put(shopify_store(fake, media_mode="replace"), ctx, NEW) == processing["id"]
    assert fake.operations().count("productUpdate") == 1  # found by its marker, not re-sent
    assert [m["id"] for m in fake.product_media(ctx.product_id)] == [processing["id"]]


def test_cleanup_partial_deletes_our_failed_media_with_file_delete(shopify_admin):  # noqa: F811
    fake, store = shopify_admin, shopify_store(shopify_admin)
    ctx = context(fake.add_product())
    sha = hashlib.sha256(NEW).hexdigest()
    failed = fake.add_media(ctx.product_id, f"x {media_marker(sha, ctx)}", status="FAILED")
    merchant = fake.add_media(ctx.product_id, "merchant photo", status="FAILED")
    assert store.cleanup_partial(KEY, sha, ctx) == [failed]
    assert failed not in fake.files and [m["id"] for m in fake.product_media(ctx.product_id)] == [merchant]
    assert fake.operations() == ["product", "fileDelete"]


def test_fake_refuses_to_update_a_file_that_is_not_ready(shopify_admin):  # noqa: F811
    fake, store = shopify_admin, shopify_store(shopify_admin)
    product = fake.add_product()
    failed = fake.add_media(product, "a", status="FAILED")
    busy = fake.add_media(product, "b", status="PROCESSING", polls=5)
    detach = "mutation D($f: [FileUpdateInput!]!) { fileUpdate(files: $f) { userErrors { code } } }"
    for gid, code in [(failed, "INVALID_FAILED_MEDIA_STATE"), (busy, "NON_READY_STATE")]:
        payload = store.graphql(detach, {"f": [{"id": gid, "referencesToRemove": [product]}]}, what="t")
        assert payload["fileUpdate"]["userErrors"] == [{"code": code}]
    delete = "mutation X($ids: [ID!]!) { fileDelete(fileIds: $ids) { userErrors { code } } }"
    assert store.graphql(delete, {"ids": [busy]}, what="t")["fileDelete"]["userErrors"] == [{"code": "FILE_LOCKED"}]
    assert len(fake.product_media(product)) == 2
