"""Images on Shopify products: what ``ShopifyStore.put`` does (Admin GraphQL 2025-10).

1. List the product's media. Media whose alt text carries our marker for these bytes are
   this image, attached by an earlier attempt: not sent again.
2. Otherwise ``stagedUploadsCreate``, the multipart POST to the storage host, and
   ``productUpdate(product: {id}, media: [...])`` attach it.
3. Shopify processes an attached image asynchronously: ``status`` goes UPLOADED ->
   PROCESSING -> READY, or ends FAILED with ``mediaErrors``. Poll it (0.5 s, doubling up
   to 8 s, at most ``media_timeout_s``). A FAILED image is deleted (``fileDelete``: a
   FAILED file cannot be changed by ``fileUpdate``, which answers
   ``INVALID_FAILED_MEDIA_STATE``) and uploaded again, up to ``media_attempts`` uploads;
   then the export fails with Shopify's reason, naming the SKU, and is not recorded done.
4. Replace mode, only once the new image is READY: ``fileUpdate(files: [{id,
   referencesToRemove: [product]}])`` detaches the SKU's older Lightbox media of the same
   profile that were on the product before this upload, and READY. Nothing a concurrent
   upload attached is touched, and the product never loses its image to a failed one.
   (Two workers never upload one SKU and profile at once: the export lease,
   ``catalog/delivery.py``.)
"""

from __future__ import annotations

import hashlib
import re
from typing import TYPE_CHECKING

from blocks.destinations import ExportContext, block_logger, check_bytes, check_key

if TYPE_CHECKING:
    from blocks.shopify import ShopifyStore

MAX_ALT = 512  # Shopify's limit on media alt text
MAX_IMAGE_BYTES = 20 * 1024 * 1024  # Shopify's limit on an image file
FIRST_POLL_S = 0.5
POLL_CAP_S = 8.0
_MARKER = re.compile(r"\[lightbox:([0-9a-f]{12}):([A-Za-z0-9._-]{1,64}):([0-9a-f]{8})\]")

MEDIA_QUERY = """query LightboxProductMedia($id: ID!, $after: String) {
  product(id: $id) {
    id
    media(first: 50, after: $after) { nodes { id alt status } pageInfo { hasNextPage endCursor } }
  }
}"""
STAGE_MUTATION = """mutation LightboxStageUpload($input: [StagedUploadInput!]!) {
  stagedUploadsCreate(input: $input) {
    stagedTargets { url resourceUrl parameters { name value } }
    userErrors { field message }
  }
}"""
ATTACH_MUTATION = """mutation LightboxAttachMedia(
  $product: ProductUpdateInput!, $media: [CreateMediaInput!]
) {
  productUpdate(product: $product, media: $media) { product { id } userErrors { field message } }
}"""
DETACH_MUTATION = """mutation LightboxDetachMedia($files: [FileUpdateInput!]!) {
  fileUpdate(files: $files) { files { id } userErrors { field message code } }
}"""
MEDIA_STATUS_QUERY = """query LightboxMediaStatus($id: ID!) {
  node(id: $id) { ... on Media { id status mediaErrors { code details message } } }
}"""
DELETE_MUTATION = """mutation LightboxDeleteMedia($ids: [ID!]!) {
  fileDelete(fileIds: $ids) { deletedFileIds userErrors { field message code } }
}"""


class ShopifyError(RuntimeError):
    """Shopify refused or failed a request; the message names the SKU and product."""


def media_marker(sha256: str, context: ExportContext) -> str:
    sku_tag = hashlib.sha256(context.sku.encode("utf-8")).hexdigest()[:8]
    return f"[lightbox:{sha256[:12]}:{context.profile}:{sku_tag}]"


def alt_text(context: ExportContext, marker: str) -> str:
    text = " ".join((context.alt_text or context.title or context.sku).split())
    return f"{text[: MAX_ALT - len(marker) - 1]} {marker}"


def put_image(store: ShopifyStore, key: str, data: bytes, *, content_type: str, sha256: str, context) -> str:
    """Steps 1-4 of the module docstring; returns the READY media's id."""
    check_key(key)
    check_bytes(data, sha256)
    product_id, what = _product(context)
    if not content_type.startswith("image/") or len(data) > MAX_IMAGE_BYTES:
        raise ValueError(f"{what}: Shopify takes images ({content_type}) up to 20 MB")
    marker = media_marker(sha256, context)
    before = list_media(store, product_id, what)
    ours = [m for m in before if marker in (m["alt"] or "") and m["status"] != "FAILED"]
    log = block_logger(__name__)
    reason = ""
    for _ in range(store.media_attempts):
        if ours:
            node = ours[0]
            log.info("%s: already has this image as %s; not uploading again", what, node["id"])
        else:
            node = _upload_image(store, product_id, key, data, content_type, alt_text(context, marker), what)
        media_id = node["id"]
        if node["status"] != "READY":
            node = await_processing(store, media_id, what)
        if node["status"] == "READY":
            break
        reason = failure_reason(node)
        log.warning("%s: Shopify FAILED to process %s (%s)", what, media_id, reason)
        delete_media(store, [media_id], what)
        ours = []
    else:
        raise ShopifyError(
            f"{what}: Shopify could not process the image after {store.media_attempts} upload(s): {reason}; "
            "the product keeps its previous image"
        )
    if store.media_mode == "replace":
        old = [m["id"] for m in before if m["id"] != media_id and _same_slot(m, marker) and m["status"] == "READY"]
        detach(store, product_id, old, what)
    return media_id


def delete_failed(store: ShopifyStore, key: str, sha256: str, context: ExportContext) -> list[str]:
    """``cleanup_partial``: delete our media for these bytes that FAILED processing."""
    check_key(key)
    product_id, what = _product(context)
    marker = media_marker(sha256, context)
    media = list_media(store, product_id, what)
    failed = [m["id"] for m in media if marker in (m["alt"] or "") and m["status"] == "FAILED"]
    delete_media(store, failed, what)
    return failed


def list_media(store: ShopifyStore, product_id: str, what: str) -> list[dict]:
    nodes, after = [], None
    while True:
        data = store.graphql(MEDIA_QUERY, {"id": product_id, "after": after}, what=what)
        if data["product"] is None:
            raise ShopifyError(f"{what}: no such product in {store.shop_domain}")
        page = data["product"]["media"]
        nodes += page["nodes"]
        if not page["pageInfo"]["hasNextPage"]:
            return nodes
        after = page["pageInfo"]["endCursor"]


def await_processing(store: ShopifyStore, media_id: str, what: str) -> dict:
    """Poll until READY or FAILED; returns the node. Still processing after
    ``store.media_timeout_s``: ``ShopifyError`` (the export stays pending)."""
    waited, delay = 0.0, FIRST_POLL_S
    while True:
        node = store.graphql(MEDIA_STATUS_QUERY, {"id": media_id}, what=what)["node"]
        if not node:
            raise ShopifyError(f"{what}: media {media_id} disappeared while Shopify processed it")
        if node["status"] in {"READY", "FAILED"}:
            return node
        if waited >= store.media_timeout_s:
            raise ShopifyError(
                f"{what}: media {media_id} still {node['status']} after {waited:.0f} s; "
                "not recorded as exported (the next run checks it again)"
            )
        pause = min(delay, store.media_timeout_s - waited)
        store.wait(pause)
        waited += pause
        delay = min(delay * 2, POLL_CAP_S)


def failure_reason(node: dict) -> str:
    """Shopify's reasons for a FAILED media, on one line."""
    reasons = [
        f"{e['code']}: {e['message']}" + (f" ({e['details']})" if e.get("details") else "")
        for e in node.get("mediaErrors") or []
    ]
    return "; ".join(reasons) or "no reason given"


def detach(store: ShopifyStore, product_id: str, media_ids: list[str], what: str) -> None:
    if not media_ids:
        return
    files = [{"id": media_id, "referencesToRemove": [product_id]} for media_id in media_ids]
    payload = store.graphql(DETACH_MUTATION, {"files": files}, what=what)["fileUpdate"]
    store.check_user_errors(payload, "fileUpdate", what)
    block_logger(__name__).info("%s: detached previous media %s", what, ", ".join(media_ids))


def delete_media(store: ShopifyStore, media_ids: list[str], what: str) -> None:
    """Delete our own media files (``fileDelete`` also drops their product references)."""
    if not media_ids:
        return
    payload = store.graphql(DELETE_MUTATION, {"ids": media_ids}, what=what)["fileDelete"]
    store.check_user_errors(payload, "fileDelete", what)
    block_logger(__name__).info("%s: deleted media that failed processing: %s", what, ", ".join(media_ids))


def _upload_image(
    store: ShopifyStore, product_id: str, key: str, data: bytes, content_type: str, alt: str, what: str
) -> dict:
    """Stage, upload and attach; returns the new media (id, alt, status), found by its marker."""
    filename = key.replace("/", "-")
    upload = {
        "resource": "IMAGE",
        "filename": filename,
        "mimeType": content_type,
        "httpMethod": "POST",
        "fileSize": str(len(data)),
    }
    payload = store.graphql(STAGE_MUTATION, {"input": [upload]}, what=what)["stagedUploadsCreate"]
    store.check_user_errors(payload, "stagedUploadsCreate", what)
    target = payload["stagedTargets"][0]
    store.post_staged(target, filename, data, content_type, what)
    media = [{"originalSource": target["resourceUrl"], "alt": alt, "mediaContentType": "IMAGE"}]
    variables = {"product": {"id": product_id}, "media": media}
    attached = store.graphql(ATTACH_MUTATION, variables, what=what, idempotent=False)["productUpdate"]
    store.check_user_errors(attached, "productUpdate", what)
    marker = _MARKER.search(alt).group(0)
    ours = [m for m in list_media(store, product_id, what) if marker in (m["alt"] or "")]
    if not ours:
        raise ShopifyError(f"{what}: the attached image is not on the product")
    block_logger(__name__).info("%s: attached %s as %s (%s)", what, key, ours[-1]["id"], ours[-1]["status"])
    return ours[-1]


def _product(context: ExportContext) -> tuple[str, str]:
    """The product id and how errors name this export."""
    if not context.product_id:
        raise ValueError(f"SKU {context.sku!r}: no Shopify product_id in the export context")
    return context.product_id, f"SKU {context.sku!r} (product {context.product_id})"


def _same_slot(media: dict, marker: str) -> bool:
    """Lightbox media of the same SKU and profile as ``marker`` (any bytes)."""
    found, ours = _MARKER.search(media["alt"] or ""), _MARKER.search(marker)
    return bool(found) and found.group(2, 3) == ours.group(2, 3)
