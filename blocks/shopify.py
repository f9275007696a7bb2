"""A Shopify store as a Prefect block: Admin GraphQL API settings plus the export surface.

Export, through the Admin GraphQL API as documented for 2025-10: (1) ``stagedUploadsCreate``
(resource IMAGE, filename, mimeType, httpMethod POST, fileSize) gives a target url, form
parameters and a resourceUrl; (2) a multipart POST of every parameter, then ``file``, to
that url (Shopify's storage host: the token is never sent there); (3) ``productUpdate(product:
{id}, media: [{originalSource, alt, mediaContentType: IMAGE}])`` attaches it
(``productCreateMedia`` is deprecated: "use productUpdate or productSet"); (4) in "replace"
mode, after attaching, ``fileUpdate(files: [{id, referencesToRemove: [productId]}])``
detaches the SKU's previous Lightbox media of that profile (2025-10 names ``fileUpdate`` as
the replacement of the deprecated ``productDeleteMedia``; the app needs ``write_files``).

Exactly once: our alt text ends in ``[lightbox:<sha256[:12]>:<profile>:<sha256(sku)[:8]>]``;
``put`` lists the product's media first and returns the marked media's id instead of
uploading again. Rate limits: each response's ``extensions.cost.throttleStatus`` is kept and
a query waits until the bucket holds its last cost; THROTTLED, HTTP 429 and (where repeating
is safe) 5xx/transport errors get bounded exponential backoff with jitter. A mutation that
may have been applied is never re-sent.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import random
import re
import time
from collections.abc import Callable
from typing import Literal

import httpx
from prefect.blocks.core import Block
from pydantic import Field, PrivateAttr, SecretStr, field_validator

from blocks.destinations import ExportContext, block_logger, check_bytes, check_key, object_key

MAX_ALT = 512  # Shopify's limit on media alt text
MAX_IMAGE_BYTES = 20 * 1024 * 1024  # Shopify's limit on an image file
BACKOFF_CAP_S = 60.0
_DOMAIN = re.compile(r"[a-z0-9][a-z0-9-]*\.myshopify\.com")
_VERSION = re.compile(r"\d{4}-(01|04|07|10)|unstable")
_MARKER = re.compile(r"\[lightbox:([0-9a-f]{12}):([A-Za-z0-9._-]{1,64}):([0-9a-f]{8})\]")
_ROOT_FIELD = re.compile(r"^[^{]*\{\s*(\w+)")  # the first field of the operation
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout)  # the request never reached Shopify

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


class ShopifyError(RuntimeError):
    """Shopify refused or failed a request; the message names the SKU and product."""


def media_marker(sha256: str, context: ExportContext) -> str:
    sku_tag = hashlib.sha256(context.sku.encode("utf-8")).hexdigest()[:8]
    return f"[lightbox:{sha256[:12]}:{context.profile}:{sku_tag}]"


def alt_text(context: ExportContext, marker: str) -> str:
    text = " ".join((context.alt_text or context.title or context.sku).split())
    return f"{text[: MAX_ALT - len(marker) - 1]} {marker}"


class ShopifyStore(Block):
    """A Shopify store: Admin API access, the webhook secret, and image export to products.

    Example:
        ```python
        from blocks.shopify import ShopifyStore

        store = ShopifyStore(
            shop_domain="acme-goods.myshopify.com",
            access_token="shpat_...", webhook_secret="...",
            api_version="2025-10", media_mode="replace",
        )
        media_id = store.put(store.object_key("MUG-001", "shopify.jpg"), data,
                             content_type="image/jpeg", sha256=digest, context=context)
        ```
    """

    _block_type_name = "Lightbox Shopify Store"
    _description = "A Shopify store: Admin API token, webhook secret, image export to products"

    shop_domain: str = Field(description="The shop's permanent domain: <name>.myshopify.com.")
    admin_api_url: str | None = Field(
        default=None, description="Admin API base URL if not https://<shop_domain> (test servers)."
    )
    access_token: SecretStr = Field(description="Admin API access token (X-Shopify-Access-Token).")
    webhook_secret: SecretStr = Field(description="Secret Shopify signs webhook bodies with.")
    api_version: str = Field(default="2025-10", description="Admin API version, e.g. '2025-10'.")
    media_mode: Literal["replace", "append"] = Field(
        default="replace", description="'replace' detaches the SKU's older Lightbox image."
    )
    max_retries: int = Field(default=5, ge=0, le=10, description="Retries per request.")
    backoff_s: float = Field(default=1.0, gt=0, description="First retry delay; doubles each time.")
    timeout_s: float = Field(default=30.0, gt=0, description="HTTP timeout per request, seconds.")

    _http: httpx.Client | None = PrivateAttr(default=None)
    _sleep: Callable[[float], None] = PrivateAttr(default=time.sleep)
    _rng: random.Random = PrivateAttr(default_factory=random.Random)
    _throttle: dict | None = PrivateAttr(default=None)
    _throttle_at: float = PrivateAttr(default=0.0)
    _costs: dict = PrivateAttr(default_factory=dict)

    @field_validator("shop_domain")
    @classmethod
    def _check_domain(cls, value: str) -> str:
        value = value.strip().lower()
        if not _DOMAIN.fullmatch(value):
            raise ValueError(f"shop_domain {value!r} is not <name>.myshopify.com")
        return value

    @field_validator("admin_api_url")
    @classmethod
    def _check_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        url = httpx.URL(value)
        if url.scheme not in {"http", "https"} or not url.host or url.query or url.path not in {"", "/"}:
            raise ValueError(f"admin_api_url {value!r} must be http(s)://host[:port] with no path")
        return value.rstrip("/")

    @field_validator("api_version")
    @classmethod
    def _check_version(cls, value: str) -> str:
        if not _VERSION.fullmatch(value):
            raise ValueError(f"api_version {value!r} is not YYYY-01/04/07/10 or 'unstable'")
        return value

    @property
    def destination_id(self) -> str:
        return f"shopify:{self.shop_domain}"

    @property
    def graphql_url(self) -> str:
        base = self.admin_api_url or f"https://{self.shop_domain}"
        return f"{base}/admin/api/{self.api_version}/graphql.json"

    def object_key(self, dirname: str, filename: str) -> str:
        return object_key(dirname, filename)

    def set_sleep(self, sleep: Callable[[float], None]) -> None:
        """Replace ``time.sleep`` for backoff and rate-limit waits (tests pass a fake clock)."""
        self._sleep = sleep

    def verify_webhook(self, body: bytes, hmac_header: str) -> bool:
        """True when ``X-Shopify-Hmac-Sha256`` is the base64 HMAC-SHA256 of the raw body."""
        key = self.webhook_secret.get_secret_value().encode("utf-8")
        expected = base64.b64encode(hmac.new(key, body, hashlib.sha256).digest()).decode()
        return hmac.compare_digest(expected, hmac_header.strip())

    def close(self) -> None:
        if self._http is not None:
            self._http.close()
            self._http = None

    def put(self, key: str, data: bytes, *, content_type: str, sha256: str, context: ExportContext) -> str:
        """Attach the image to ``context.product_id``; returns the media id. Exactly once."""
        check_key(key)
        check_bytes(data, sha256)
        product_id, what = _product(context)
        if not content_type.startswith("image/") or len(data) > MAX_IMAGE_BYTES:
            raise ValueError(f"{what}: Shopify takes images ({content_type}) up to 20 MB")
        marker = media_marker(sha256, context)
        media = self._media(product_id, what)
        ours = [m for m in media if marker in (m["alt"] or "") and m["status"] != "FAILED"]
        log = block_logger(__name__)
        if ours:
            log.info("%s: already has this image as %s; not uploading again", what, ours[0]["id"])
        else:
            filename = key.replace("/", "-")
            target = self._stage(filename, data, content_type, what)
            self._upload(target, filename, data, content_type, what)
            self._attach(product_id, target["resourceUrl"], alt_text(context, marker), what)
            media = self._media(product_id, what)
            ours = [m for m in media if marker in (m["alt"] or "")][-1:]
            if not ours or ours[0]["status"] == "FAILED":
                raise ShopifyError(f"{what}: the attached image is missing or FAILED processing")
            log.info("%s: attached %s as %s", what, key, ours[0]["id"])
        media_id = ours[0]["id"]
        if self.media_mode == "replace":
            old = [m["id"] for m in media if m["id"] != media_id and _same_slot(m, marker)]
            self._detach(product_id, old, what)
        return media_id

    def cleanup_partial(self, key: str, sha256: str, context: ExportContext) -> list[str]:
        """Detach our media for these bytes that Shopify FAILED to process; returns their ids.

        A staged upload that was never attached needs nothing: Shopify expires it.
        """
        check_key(key)
        product_id, what = _product(context)
        marker = media_marker(sha256, context)
        failed = [
            m["id"] for m in self._media(product_id, what) if marker in (m["alt"] or "") and m["status"] == "FAILED"
        ]
        self._detach(product_id, failed, what)
        return failed

    def graphql(self, query: str, variables: dict, *, what: str, idempotent: bool = True) -> dict:
        """Run one Admin API query/mutation and return ``data``; raises ShopifyError.

        ``idempotent=False`` for a mutation that must not be re-sent once it may have
        reached Shopify (only throttling and connect failures are retried then).
        """
        found = _ROOT_FIELD.search(query)
        operation = found.group(1) if found else "graphql"  # e.g. "productUpdate"
        token = self.access_token.get_secret_value()

        def send() -> httpx.Response:
            self._await_budget(operation)
            return self._client().post(
                self.graphql_url,
                json={"query": query, "variables": variables},
                headers={"X-Shopify-Access-Token": token},
            )

        response = self._with_retries(
            send,
            what=f"{what}: {operation}",
            idempotent=idempotent,
            throttled=lambda r: self._note_cost(operation, r),
        )
        body = _json(response)
        if response.status_code != 200 or body is None:
            raise ShopifyError(
                f"{what}: {operation} got HTTP {response.status_code}: {self._redact(response.text[:300])}"
            )
        if body.get("errors"):
            messages = "; ".join(str(e.get("message", e)) for e in body["errors"])
            raise ShopifyError(f"{what}: {operation} failed: {self._redact(messages)}")
        return body["data"]

    def _media(self, product_id: str, what: str) -> list[dict]:
        nodes, after = [], None
        while True:
            data = self.graphql(MEDIA_QUERY, {"id": product_id, "after": after}, what=what)
            if data["product"] is None:
                raise ShopifyError(f"{what}: no such product in {self.shop_domain}")
            page = data["product"]["media"]
            nodes += page["nodes"]
            if not page["pageInfo"]["hasNextPage"]:
                return nodes
            after = page["pageInfo"]["endCursor"]

    def _stage(self, filename: str, data: bytes, content_type: str, what: str) -> dict:
        upload = {
            "resource": "IMAGE",
            "filename": filename,
            "mimeType": content_type,
            "httpMethod": "POST",
            "fileSize": str(len(data)),
        }
        payload = self.graphql(STAGE_MUTATION, {"input": [upload]}, what=what)
        self._user_errors(payload["stagedUploadsCreate"], "stagedUploadsCreate", what)
        return payload["stagedUploadsCreate"]["stagedTargets"][0]

    def _upload(self, target: dict, filename: str, data: bytes, content_type: str, what: str):
        fields = {p["name"]: p["value"] for p in target["parameters"]}
        response = self._with_retries(
            lambda: self._client().post(target["url"], data=fields, files={"file": (filename, data, content_type)}),
            what=f"{what}: staged upload",
            idempotent=True,
        )
        if response.status_code not in {200, 201, 204}:
            raise ShopifyError(
                f"{what}: staged upload got HTTP {response.status_code}: {self._redact(response.text[:300])}"
            )

    def _attach(self, product_id: str, resource_url: str, alt: str, what: str) -> None:
        media = [{"originalSource": resource_url, "alt": alt, "mediaContentType": "IMAGE"}]
        variables = {"product": {"id": product_id}, "media": media}
        payload = self.graphql(ATTACH_MUTATION, variables, what=what, idempotent=False)
        self._user_errors(payload["productUpdate"], "productUpdate", what)

    def _detach(self, product_id: str, media_ids: list[str], what: str) -> None:
        if not media_ids:
            return
        files = [{"id": media_id, "referencesToRemove": [product_id]} for media_id in media_ids]
        payload = self.graphql(DETACH_MUTATION, {"files": files}, what=what)["fileUpdate"]
        self._user_errors(payload, "fileUpdate", what)
        block_logger(__name__).info("%s: detached previous media %s", what, ", ".join(media_ids))

    def _user_errors(self, payload: dict, operation: str, what: str) -> None:
        errors = payload.get("userErrors") or []
        if errors:
            text = "; ".join(f"{'.'.join(e.get('field') or []) or '-'}: {e['message']}" for e in errors)
            raise ShopifyError(f"{what}: {operation} refused: {self._redact(text)}")

    def _client(self) -> httpx.Client:
        if self._http is None:
            timeout = httpx.Timeout(self.timeout_s, connect=min(10.0, self.timeout_s))
            self._http = httpx.Client(timeout=timeout, follow_redirects=False)
        return self._http

    def _redact(self, text: str) -> str:
        token = self.access_token.get_secret_value()
        return text.replace(token, "[redacted]") if token else text

    def _with_retries(
        self,
        send: Callable[[], httpx.Response],
        *,
        what: str,
        idempotent: bool,
        throttled: Callable[[httpx.Response], str | None] = lambda response: None,
    ) -> httpx.Response:
        attempts = self.max_retries + 1
        for attempt in range(1, attempts + 1):
            response, error = None, None
            try:
                response = send()
            except httpx.TransportError as exc:
                if not (idempotent or isinstance(exc, _NOT_SENT)):
                    raise ShopifyError(
                        f"{what}: {type(exc).__name__} after sending; not re-sent as it may have been applied"
                    ) from exc
                reason, error = type(exc).__name__, exc
            else:
                status = response.status_code
                if status == 429 or (status >= 500 and idempotent):
                    reason = f"HTTP {status}"
                else:
                    reason = throttled(response)
                    if reason is None:
                        return response
            if attempt == attempts:
                raise ShopifyError(f"{what}: gave up after {attempts} attempts ({reason})") from error
            delay = self._delay(attempt, response)
            block_logger(__name__).warning(
                "%s: %s; retry %d/%d in %.1f s", what, reason, attempt, self.max_retries, delay
            )
            self._sleep(delay)
        raise AssertionError("unreachable")

    def _delay(self, attempt: int, response: httpx.Response | None) -> float:
        ceiling = min(BACKOFF_CAP_S, self.backoff_s * 2 ** (attempt - 1))
        delay = ceiling / 2 + self._rng.uniform(0, ceiling / 2)
        retry_after = response.headers.get("Retry-After", "") if response is not None else ""
        if retry_after.replace(".", "", 1).isdigit():
            delay = max(delay, float(retry_after))
        return delay

    def _note_cost(self, operation: str, response: httpx.Response) -> str | None:
        """Remember the cost and bucket; say "THROTTLED" when Shopify refused for cost."""
        body = _json(response)
        if response.status_code != 200 or body is None:
            return None
        cost = (body.get("extensions") or {}).get("cost") or {}
        if cost.get("throttleStatus"):
            self._throttle, self._throttle_at = cost["throttleStatus"], time.monotonic()
            self._costs[operation] = cost.get("requestedQueryCost") or 10
        codes = {(e.get("extensions") or {}).get("code") for e in body.get("errors") or []}
        return "THROTTLED" if "THROTTLED" in codes else None

    def _await_budget(self, operation: str) -> None:
        """Wait until the leaky bucket holds what ``operation`` cost last time (10 unknown)."""
        if not self._throttle:
            return
        rate = float(self._throttle["restoreRate"]) or 1.0
        maximum = float(self._throttle["maximumAvailable"])
        elapsed = time.monotonic() - self._throttle_at
        available = min(maximum, float(self._throttle["currentlyAvailable"]) + rate * elapsed)
        need = min(float(self._costs.get(operation, 10)), maximum)
        if need > available:
            wait = (need - available) / rate
            block_logger(__name__).debug("waiting %.2f s for %s's query cost", wait, operation)
            self._sleep(wait)
            self._throttle = {**self._throttle, "currentlyAvailable": need}
            self._throttle_at = time.monotonic()


def _product(context: ExportContext) -> tuple[str, str]:
    """The product id and how errors name this export."""
    if not context.product_id:
        raise ValueError(f"SKU {context.sku!r}: no Shopify product_id in the export context")
    return context.product_id, f"SKU {context.sku!r} (product {context.product_id})"


def _same_slot(media: dict, marker: str) -> bool:
    """Lightbox media of the same SKU and profile as ``marker`` (any bytes)."""
    found, ours = _MARKER.search(media["alt"] or ""), _MARKER.search(marker)
    return bool(found) and found.group(2, 3) == ours.group(2, 3)


def _json(response: httpx.Response) -> dict | None:
    """The JSON object of a response, or None when the body is not one."""
    try:
        body = response.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None
