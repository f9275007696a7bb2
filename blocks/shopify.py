"""A Shopify store as a Prefect block: Admin GraphQL API settings plus the export surface.

Export (``blocks/shopify_media.py``), through the Admin GraphQL API as documented for 2025-10:
(1) ``stagedUploadsCreate``
(resource IMAGE, filename, mimeType, httpMethod POST, fileSize) gives a target url, form
parameters and a resourceUrl; (2) a multipart POST of every parameter, then ``file``, to
that url (Shopify's storage host: the token is never sent there); (3) ``productUpdate(product:
{id}, media: [{originalSource, alt, mediaContentType: IMAGE}])`` attaches it
(``productCreateMedia`` is deprecated: "use productUpdate or productSet"); (4) Shopify
processes the image asynchronously: ``put`` polls its status until READY
(``blocks/shopify_media.py``); a FAILED one is deleted and uploaded again, up to
``media_attempts`` uploads, then the export fails naming the SKU and Shopify's reason;
(5) in "replace" mode, only once the new image is READY,
``fileUpdate(files: [{id, referencesToRemove: [productId]}])`` detaches the SKU's previous
Lightbox media of that profile that were on the product before this upload (2025-10 names
``fileUpdate`` as the replacement of the deprecated ``productDeleteMedia``; the app needs
``write_files``). The export's lease (``catalog/delivery.py``) keeps a second worker out of
the same SKU and profile meanwhile.

Exactly once: our alt text ends in ``[lightbox:<sha256[:12]>:<profile>:<sha256(sku)[:8]>]``;
``put`` lists the product's media first and returns the marked media's id instead of
uploading again. Rate limits: the shop's bucket is shared by every process of the fleet
(``fleet_rate_limit``: a Prefect global concurrency limit per shop with slot decay,
``blocks/shopify_bucket.py``); each response's ``extensions.cost.throttleStatus`` is also
kept and a query waits until the bucket holds its last cost; THROTTLED, HTTP 429 and (where
repeating is safe) 5xx/transport errors get bounded exponential backoff with jitter. A
mutation that may have been applied is never re-sent.
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

from blocks import shopify_media
from blocks.destinations import ExportContext, block_logger, object_key
from blocks.shopify_bucket import FleetBucket, fleet_available
from blocks.shopify_media import STAGE_MUTATION, ShopifyError, alt_text, media_marker  # noqa: F401  (re-exported)

BACKOFF_CAP_S = 60.0
_DOMAIN = re.compile(r"[a-z0-9][a-z0-9-]*\.myshopify\.com")
_VERSION = re.compile(r"\d{4}-(01|04|07|10)|unstable")
_ROOT_FIELD = re.compile(r"^[^{]*\{\s*(\w+)")  # the first field of the operation
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout)  # the request never reached Shopify


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
    media_timeout_s: float = Field(
        default=300.0, gt=0, description="How long to wait for Shopify to process an uploaded image, seconds."
    )
    media_attempts: int = Field(
        default=2, ge=1, le=5, description="Uploads per image when Shopify's processing of it FAILS."
    )
    fleet_rate_limit: bool = Field(
        default=True,
        description="Share the shop's API rate limit with every worker: a Prefect global concurrency limit "
        "'shopify-api:<shop>' with slot decay (needs PREFECT_API_URL; off, each process paces itself alone).",
    )

    _http: httpx.Client | None = PrivateAttr(default=None)
    _sleep: Callable[[float], None] = PrivateAttr(default=time.sleep)
    _rng: random.Random = PrivateAttr(default_factory=random.Random)
    _throttle: dict | None = PrivateAttr(default=None)
    _throttle_at: float = PrivateAttr(default=0.0)
    _costs: dict = PrivateAttr(default_factory=dict)
    _fleet: FleetBucket | None = PrivateAttr(default=None)

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

    def wait(self, seconds: float) -> None:
        self._sleep(seconds)

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
        """Attach the image to ``context.product_id`` once Shopify has processed it; returns
        the media id. Exactly once: media carrying our marker are found, not sent again."""
        return shopify_media.put_image(self, key, data, content_type=content_type, sha256=sha256, context=context)

    def cleanup_partial(self, key: str, sha256: str, context: ExportContext) -> list[str]:
        """Delete our media for these bytes that Shopify FAILED to process; returns their ids.

        A staged upload that was never attached needs nothing: Shopify expires it.
        """
        return shopify_media.delete_failed(self, key, sha256, context)

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
            fleet = self._fleet_bucket()
            taken = fleet.take(self._costs.get(operation, 10)) if fleet else 0
            response = self._client().post(
                self.graphql_url,
                json={"query": query, "variables": variables},
                headers={"X-Shopify-Access-Token": token},
            )
            if fleet:
                fleet.settle(taken, *_throttle_and_cost(response))
            return response

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

    def post_staged(self, target: dict, filename: str, data: bytes, content_type: str, what: str) -> None:
        """The multipart POST of a staged upload to Shopify's storage host (no token sent)."""
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

    def check_user_errors(self, payload: dict, operation: str, what: str) -> None:
        errors = payload.get("userErrors") or []
        if errors:
            text = "; ".join(f"{'.'.join(e.get('field') or []) or '-'}: {e['message']}" for e in errors)
            raise ShopifyError(f"{what}: {operation} refused: {self._redact(text)}")

    def _fleet_bucket(self) -> FleetBucket | None:
        """The shop's shared bucket, when this block shares it and a Prefect server is set."""
        if self._fleet is None and self.fleet_rate_limit and fleet_available():
            self._fleet = FleetBucket(self.shop_domain)
        return self._fleet if self._fleet is not None and self._fleet.active else None

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
        if retry_after.replace(".", "", 1).isdigit():  # honoured up to the backoff cap: a header
            delay = max(delay, min(float(retry_after), BACKOFF_CAP_S))  # asking for hours stalls no worker
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


def _throttle_and_cost(response: httpx.Response) -> tuple[dict | None, float | None]:
    """(throttleStatus, the cost Shopify charged up front) of an answer; Nones when absent.
    A THROTTLED answer charged nothing."""
    body = (_json(response) if response.status_code == 200 else None) or {}
    cost = (body.get("extensions") or {}).get("cost") or {}
    errors = [e for e in body.get("errors") or [] if isinstance(e, dict)]
    throttled = any((e.get("extensions") or {}).get("code") == "THROTTLED" for e in errors)
    requested = cost.get("requestedQueryCost")
    charged = None if throttled or not isinstance(requested, int | float) else float(requested)
    return cost.get("throttleStatus"), charged


def _json(response: httpx.Response) -> dict | None:
    """The JSON object of a response, or None when the body is not one."""
    try:
        body = response.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None
