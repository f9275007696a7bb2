"""ShopifyStore against the loopback fake Admin API (tests/fakes/shopify_admin.py).

A fake stands in because no machine here reaches Shopify; it validates every request
against the documented schema and upload contract.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging

import httpx
import pytest

from blocks.destinations import ExportContext
from blocks.shopify import BACKOFF_CAP_S, STAGE_MUTATION, ShopifyError, ShopifyStore, media_marker
from tests.fakes.shopify_admin import (  # noqa: F401  (shopify_admin is a fixture)
    ACCESS_TOKEN,
    SHOP_DOMAIN,
    ShopifyAdminFake,
    serve,
    shopify_admin,
    shopify_store,
)

DATA = b"\x89PNG\r\n\x1a\n studio render of a blue mug"
SHA = hashlib.sha256(DATA).hexdigest()
KEY = "MUG-001/shopify.png"
ATTACH_FLOW = ["product", "stagedUploadsCreate", "productUpdate", "product", "node"]  # node: processing


@pytest.fixture(autouse=True)
def token_never_logged(caplog):
    """Every test here also checks that the access token reached no log record."""
    caplog.set_level(logging.DEBUG)
    yield
    assert ACCESS_TOKEN not in caplog.text
    assert all(ACCESS_TOKEN not in r.getMessage() for r in caplog.records)


def context(fake: ShopifyAdminFake, product_id: str | None = None, **fields) -> ExportContext:
    base = {
        "sku": "MUG-001",
        "title": "Blue mug",
        "profile": "shopify",
        "product_id": product_id or fake.add_product(),
        "alt_text": "Blue mug on white",
    }
    return ExportContext(**{**base, **fields})


def put(store: ShopifyStore, ctx: ExportContext, data: bytes = DATA) -> str:
    return store.put(KEY, data, content_type="image/png", sha256=hashlib.sha256(data).hexdigest(), context=ctx)


def recording_sleep(fake: ShopifyAdminFake, store: ShopifyStore) -> list[float]:
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        fake.clock.advance(seconds)

    store.set_sleep(sleep)
    return sleeps


def assert_token_absent(exc: BaseException) -> None:
    while exc is not None:
        assert ACCESS_TOKEN not in str(exc) and ACCESS_TOKEN not in repr(exc)
        exc = exc.__cause__ or exc.__context__


def test_block_fields_are_validated_and_secrets_hidden():
    store = ShopifyStore(shop_domain="Acme-Goods.myshopify.com", access_token=ACCESS_TOKEN, webhook_secret="whsec")
    assert store.destination_id == "shopify:acme-goods.myshopify.com"
    assert store.graphql_url == "https://acme-goods.myshopify.com/admin/api/2025-10/graphql.json"
    assert ACCESS_TOKEN not in repr(store) and ACCESS_TOKEN not in str(store.model_dump())
    for bad in [
        {"shop_domain": "acme.com"},
        {"shop_domain": "x.myshopify.com.evil.io"},
        {"admin_api_url": "ftp://127.0.0.1"},
        {"admin_api_url": "http://127.0.0.1/x"},
        {"api_version": "2025-11"},
        {"media_mode": "merge"},
        {"max_retries": -1},
    ]:
        with pytest.raises(ValueError):
            ShopifyStore(**{"shop_domain": SHOP_DOMAIN, "access_token": "t", "webhook_secret": "s", **bad})


def test_verify_webhook_checks_the_base64_hmac():
    store = ShopifyStore(shop_domain=SHOP_DOMAIN, access_token="t", webhook_secret="whsec")
    body = b'{"id": 1}'
    good = base64.b64encode(hmac.new(b"whsec", body, hashlib.sha256).digest()).decode()
    assert store.verify_webhook(body, good)
    assert not store.verify_webhook(body + b" ", good)


def test_put_stages_uploads_and_attaches_with_alt_text(shopify_admin):  # noqa: F811
    fake, store = shopify_admin, shopify_store(shopify_admin)
    ctx = context(fake)
    media_id = put(store, ctx)
    assert fake.operations() == ATTACH_FLOW
    staged = next(c for c in fake.calls if c.operation == "stagedUploadsCreate").variables
    assert staged["input"] == [
        {
            "resource": "IMAGE",
            "filename": "MUG-001-shopify.png",
            "mimeType": "image/png",
            "httpMethod": "POST",
            "fileSize": str(len(DATA)),
        }
    ]
    upload = next(c for c in fake.calls if c.kind == "staged_upload")
    assert upload.status == 200 and upload.variables["fields"][-1] == "file"
    attach = next(c for c in fake.calls if c.operation == "productUpdate").variables
    assert attach["product"] == {"id": ctx.product_id}
    assert attach["media"][0]["mediaContentType"] == "IMAGE"
    assert attach["media"][0]["originalSource"].startswith(f"{fake.base_url}/staged-uploads/tmp/")
    [media] = fake.product_media(ctx.product_id)
    assert media["id"] == media_id and media["data"] == DATA and media["status"] == "READY"
    assert media["alt"] == f"Blue mug on white {media_marker(SHA, ctx)}"


def test_put_again_finds_the_marker_and_uploads_nothing(shopify_admin):  # noqa: F811
    fake, store = shopify_admin, shopify_store(shopify_admin)
    ctx = context(fake)
    first = put(store, ctx)
    assert put(store, ctx) == first
    assert fake.operations() == [*ATTACH_FLOW, "product"]
    assert len(fake.product_media(ctx.product_id)) == 1


def test_replace_mode_detaches_only_the_previous_image_after_attaching(shopify_admin):  # noqa: F811
    fake, store = shopify_admin, shopify_store(shopify_admin, media_mode="replace")
    ctx = context(fake)
    merchant = fake.add_media(ctx.product_id, "Merchant's own photo")
    other_profile = fake.add_media(
        ctx.product_id, "x " + media_marker(SHA, ctx.model_copy(update={"profile": "lifestyle"}))
    )
    other_sku = fake.add_media(ctx.product_id, "x " + media_marker(SHA, ctx.model_copy(update={"sku": "MUG-002"})))
    old = put(store, ctx, b"yesterday's render")
    new = put(store, ctx)
    ids = [m["id"] for m in fake.product_media(ctx.product_id)]
    assert ids == [merchant, other_profile, other_sku, new] and old not in ids
    ops = fake.operations()
    assert ops[-2:] == ["node", "fileUpdate"]  # only after the new image was READY
    detach = next(c for c in fake.calls if c.operation == "fileUpdate").variables
    assert detach == {"files": [{"id": old, "referencesToRemove": [ctx.product_id]}]}


def test_append_mode_keeps_previous_images(shopify_admin):  # noqa: F811
    fake, store = shopify_admin, shopify_store(shopify_admin, media_mode="append")
    ctx = context(fake)
    old, new = put(store, ctx, b"yesterday's render"), put(store, ctx)
    assert [m["id"] for m in fake.product_media(ctx.product_id)] == [old, new]
    assert "fileUpdate" not in fake.operations()


def test_marker_is_found_beyond_the_first_page_of_media(shopify_admin):  # noqa: F811
    fake, store = shopify_admin, shopify_store(shopify_admin, media_mode="append")
    ctx = context(fake)
    for i in range(120):
        fake.add_media(ctx.product_id, f"photo {i}")
    ours = fake.add_media(ctx.product_id, f"earlier export {media_marker(SHA, ctx)}")
    assert put(store, ctx) == ours
    assert fake.operations() == ["product", "product", "product"]


def test_throttled_answer_is_retried_after_the_injected_sleep(shopify_admin):  # noqa: F811
    fake, store = shopify_admin, shopify_store(shopify_admin)
    sleeps = recording_sleep(fake, store)
    fake.fail("productUpdate", "throttled")
    ctx = context(fake)
    media_id = put(store, ctx)
    assert fake.operations().count("productUpdate") == 2
    assert len(sleeps) == 1 and 0.5 <= sleeps[0] <= 1.0  # backoff_s=1 with equal jitter
    assert [m["id"] for m in fake.product_media(ctx.product_id)] == [media_id]


def test_small_bucket_waits_before_spending_instead_of_being_throttled():
    with serve(ShopifyAdminFake(bucket_size=60, restore_rate=10)) as fake:
        store = shopify_store(fake)
        sleeps = recording_sleep(fake, store)
        put(store, context(fake))
        put(store, context(fake))  # a second product: the media query's cost is known now
    assert [c.fault for c in fake.calls] == [None] * len(fake.calls)
    assert sum(sleeps) >= 5.0  # 53-point media queries on a 60-point bucket refilling 10/s


def test_persistent_throttling_gives_up_after_max_retries(shopify_admin):  # noqa: F811
    fake, store = shopify_admin, shopify_store(shopify_admin, max_retries=3)
    sleeps = recording_sleep(fake, store)
    fake.fail("product", "throttled", times=10)
    with pytest.raises(ShopifyError, match="gave up after 4 attempts \\(THROTTLED\\)"):
        put(store, context(fake))
    assert len(sleeps) >= 3 and fake.operations() == ["product"] * 4


def test_retry_after_is_honoured_up_to_the_backoff_cap(shopify_admin):  # noqa: F811
    fake, store = shopify_admin, shopify_store(shopify_admin)
    sleeps = recording_sleep(fake, store)
    fake.retry_after = "86400"  # a day
    fake.fail("stagedUploadsCreate", "http_429")
    put(store, context(fake))
    assert sleeps and max(sleeps) == BACKOFF_CAP_S


def test_429_and_5xx_are_retried_where_repeating_is_safe(shopify_admin):  # noqa: F811
    fake, store = shopify_admin, shopify_store(shopify_admin)
    sleeps = recording_sleep(fake, store)
    fake.fail("product", "http_500")
    fake.fail("stagedUploadsCreate", "http_429")
    fake.fail("staged_upload", "http_500")
    fake.fail("staged_upload", "drop_after")
    ctx = context(fake)
    put(store, ctx)
    assert fake.operations("staged_upload") == ["staged_upload"] * 3
    assert len(sleeps) == 4 and max(sleeps) >= 1.0  # Retry-After: 1.0 honoured
    assert len(fake.product_media(ctx.product_id)) == 1


def test_a_mutation_that_may_have_applied_is_not_resent(shopify_admin):  # noqa: F811
    fake, store = shopify_admin, shopify_store(shopify_admin)
    fake.fail("productUpdate", "http_500")
    ctx = context(fake)
    with pytest.raises(ShopifyError, match="productUpdate got HTTP 500"):
        put(store, ctx)
    assert fake.operations().count("productUpdate") == 1
    put(store, ctx)
    assert len(fake.product_media(ctx.product_id)) == 1


def test_crash_after_attach_then_rerun_attaches_exactly_once(shopify_admin):  # noqa: F811
    fake, store = shopify_admin, shopify_store(shopify_admin)
    fake.fail("productUpdate", "drop_after")  # attached, but the answer never arrives
    ctx = context(fake)
    with pytest.raises(ShopifyError, match="MUG-001.*not re-sent") as crash:
        put(store, ctx)
    assert_token_absent(crash.value)
    [attached] = fake.product_media(ctx.product_id)
    rerun = shopify_store(fake)  # a fresh process after the crash
    assert rerun.put(KEY, DATA, content_type="image/png", sha256=SHA, context=ctx) == attached["id"]
    assert fake.operations().count("stagedUploadsCreate") == 1
    assert fake.operations().count("productUpdate") == 1
    assert len(fake.product_media(ctx.product_id)) == 1


def test_user_errors_raise_naming_the_sku_and_product(shopify_admin):  # noqa: F811
    fake, store = shopify_admin, shopify_store(shopify_admin)
    ctx = context(fake)
    fake.fail("productUpdate", "user_error")
    with pytest.raises(ShopifyError) as refused:
        put(store, ctx)
    message = str(refused.value)
    assert "MUG-001" in message and ctx.product_id in message
    assert "productUpdate refused: id: Injected failure" in message
    missing = context(fake, product_id="gid://shopify/Product/999")
    with pytest.raises(ShopifyError, match="MUG-001.*Product/999.*no such product"):
        put(store, missing)


def test_wrong_token_fails_without_echoing_any_token(shopify_admin):  # noqa: F811
    fake = shopify_admin
    store = shopify_store(fake, access_token="shpat_wrong_token_value")
    with pytest.raises(ShopifyError, match="HTTP 401") as refused:
        put(store, context(fake))
    assert "shpat_wrong_token_value" not in str(refused.value)
    assert_token_absent(refused.value)


def test_cleanup_partial_detaches_our_failed_media_only(shopify_admin):  # noqa: F811
    fake, store = shopify_admin, shopify_store(shopify_admin)
    ctx = context(fake)
    failed = fake.add_media(ctx.product_id, f"x {media_marker(SHA, ctx)}", status="FAILED")
    fine = fake.add_media(ctx.product_id, "merchant photo", status="FAILED")
    assert store.cleanup_partial(KEY, SHA, ctx) == [failed]
    assert [m["id"] for m in fake.product_media(ctx.product_id)] == [fine]
    assert store.cleanup_partial(KEY, SHA, ctx) == []


def test_put_refuses_bad_input_before_any_request(shopify_admin):  # noqa: F811
    fake, store = shopify_admin, shopify_store(shopify_admin)
    ctx = context(fake)
    with pytest.raises(ValueError, match="product_id"):
        put(store, ctx.model_copy(update={"product_id": None}))
    with pytest.raises(ValueError, match="images"):
        store.put(KEY, DATA, content_type="text/plain", sha256=SHA, context=ctx)
    with pytest.raises(ValueError):
        store.put("../x.png", DATA, content_type="image/png", sha256=SHA, context=ctx)
    with pytest.raises(ValueError, match="sha256"):
        store.put(KEY, DATA, content_type="image/png", sha256="0" * 64, context=ctx)
    assert fake.calls == []


STAGE_INPUT = {"resource": "IMAGE", "filename": "a.png", "mimeType": "image/png", "httpMethod": "POST", "fileSize": "5"}


def test_fake_holds_graphql_requests_to_the_documented_contract(shopify_admin):  # noqa: F811
    fake, store = shopify_admin, shopify_store(shopify_admin)
    url, token = store.graphql_url, {"X-Shopify-Access-Token": ACCESS_TOKEN}
    query = {"query": 'query { product(id: "gid://shopify/Product/1") { id } }'}
    assert httpx.post(url, json=query, timeout=10).status_code == 401
    old = url.replace("2025-10", "2024-01")
    assert httpx.post(old, json=query, headers=token, timeout=10).status_code == 404
    deprecated = 'mutation M { productCreateMedia(productId: "1", media: []) { media { id } } }'
    with pytest.raises(ShopifyError, match="productCreateMedia"):
        store.graphql(deprecated, {}, what="test")
    with pytest.raises(ShopifyError, match="resource"):
        store.graphql(STAGE_MUTATION, {"input": [{**STAGE_INPUT, "resource": None}]}, what="test")
    assert [c.status for c in fake.calls] == [401, 404, 200, 200]


def test_fake_holds_staged_uploads_to_fields_size_and_no_token(shopify_admin):  # noqa: F811
    store = shopify_store(shopify_admin)
    staged = store.graphql(STAGE_MUTATION, {"input": [STAGE_INPUT]}, what="test")
    target = staged["stagedUploadsCreate"]["stagedTargets"][0]
    fields = {p["name"]: p["value"] for p in target["parameters"]}

    def post(data: dict, body: bytes = b"12345", headers: dict | None = None) -> int:
        files = {"file": ("a.png", body, "image/png")}
        return httpx.post(target["url"], data=data, files=files, headers=headers, timeout=10).status_code

    assert post(fields, b"1234") == 400  # not the declared fileSize
    assert post({k: v for k, v in fields.items() if k != "policy"}) == 400
    assert post({**fields, "policy": "forged"}) == 403
    assert post(fields, headers={"X-Shopify-Access-Token": ACCESS_TOKEN}) == 400
    assert post(fields) == 201
