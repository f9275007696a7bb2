"""Shopify product webhooks → one durable record + one Prefect event, answered fast.

OSS Prefect has no incoming webhooks, so this small ASGI app stands in front of it:

    POST /webhooks/shopify   body ≤ max_body_bytes (413), X-Shopify-Hmac-Sha256 =
                             base64(HMAC-SHA256(secret, raw body)) (401), X-Shopify-Topic,
                             -Shop-Domain and -Webhook-Id present (400); a topic we do not
                             handle → 200 ignored (Shopify retries anything but 2xx); JSON
                             product with an id (400); then one transaction records the
                             delivery (catalog.webhooks) and, when accepted, emits the event
                             and stores its id → 200 accepted | duplicate | stale.
    GET  /healthz            200 when the catalog database answers, else 503.

Recording and emitting share one transaction: if the emit fails, nothing is recorded and
the 500 makes Shopify retry; if the commit fails after the emit, the retry emits again
with the same event id (derived from the webhook id), which Prefect's event store and
triggers drop as already seen. Blocking work runs in Starlette's threadpool. The secret and the signature
are never logged; untrusted header values are logged with repr().

    python -m deployments.webhook --host 127.0.0.1 --port 8787 [--database-url URL]
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import logging
import os
import re
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import uvicorn
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from catalog.db import check_url, get_engine, migrate, session_scope
from catalog.webhooks import (
    InvalidDelivery,
    ProductPayload,
    parse_product,
    parse_timestamp,
    record_delivery,
    set_event_id,
)
from tasks.events import drain_prefect_events, emit_product_event

DEFAULT_TOPICS = ("products/create", "products/update")
SHOP_DOMAIN = re.compile(r"^[a-z0-9][a-z0-9-]{0,200}\.myshopify\.com$")
log = logging.getLogger("deployments.webhook")  # not __main__ under python -m


def utc_now() -> datetime:
    return datetime.now(UTC)


def signature_ok(secret: bytes, body: bytes, header: str) -> bool:
    expected = base64.b64encode(hmac.new(secret, body, hashlib.sha256).digest())
    return hmac.compare_digest(expected, header.strip().encode("latin-1", "replace"))


def _header(request: Request, name: str, max_length: int) -> str:
    value = request.headers.get(name, "").strip()
    if not value:
        raise InvalidDelivery(f"missing {name} header")
    if len(value) > max_length or not value.isprintable():
        raise InvalidDelivery(f"{name} header is too long or not printable")
    return value


async def _read_body(request: Request, max_bytes: int) -> bytes | None:
    """The raw body, or None as soon as it runs past ``max_bytes``."""
    chunks, total = [], 0
    async for chunk in request.stream():
        total += len(chunk)
        if total > max_bytes:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _answer(status_code: int, status: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"status": status, **extra}, status_code=status_code)


def create_app(
    *,
    get_secret: Callable[[], Any],
    database_url: str,
    emit_event: Callable[[dict[str, Any]], str] = emit_product_event,
    max_body_bytes: int = 1_048_576,
    allowed_topics: Sequence[str] = DEFAULT_TOPICS,
    clock: Callable[[], datetime] = utc_now,
) -> Starlette:
    """The receiver. ``get_secret`` returns the shared secret (str or SecretStr) and is
    called per request: cache it (e.g. the ShopifyStore block's field, loaded once)."""
    check_url(database_url)
    if max_body_bytes < 1:
        raise ValueError(f"max_body_bytes must be >= 1, got {max_body_bytes}")
    topics = frozenset(allowed_topics)

    def secret_bytes() -> bytes:
        secret = get_secret()
        secret = secret.get_secret_value() if hasattr(secret, "get_secret_value") else secret
        if not isinstance(secret, str) or not secret:
            raise RuntimeError("the Shopify webhook secret is empty or not a string")
        return secret.encode()

    def record_and_emit(
        webhook_id: str,
        shop: str,
        topic: str,
        triggered_at: datetime | None,
        product: ProductPayload,
        payload_sha256: str,
    ) -> str:
        with session_scope(database_url) as session:
            status = record_delivery(
                session,
                webhook_id=webhook_id,
                shop=shop,
                topic=topic,
                product_id=product.product_id,
                triggered_at=triggered_at,
                product_updated_at=product.updated_at,
                payload_sha256=payload_sha256,
                now=clock(),
            )
            if status == "accepted":
                event_id = emit_event(
                    {
                        "shop": shop,
                        "product_id": product.product_id,
                        "topic": topic,
                        "webhook_id": webhook_id,
                        "image_urls": list(product.image_urls),
                        "updated_at": _iso(product.updated_at),
                        "triggered_at": _iso(triggered_at),
                    }
                )
                set_event_id(session, webhook_id, event_id)
        return status

    async def shopify(request: Request) -> JSONResponse:
        declared = request.headers.get("content-length")
        if declared is not None and not declared.strip().isdigit():
            return _answer(400, "rejected", reason="invalid Content-Length")
        if declared is not None and int(declared) > max_body_bytes:
            return _answer(413, "rejected", reason=f"body over {max_body_bytes} bytes")
        try:
            body = await _read_body(request, max_body_bytes)
        except ClientDisconnect:
            log.info("shopify webhook: client disconnected while sending the body")
            return _answer(400, "rejected", reason="client disconnected")
        if body is None:
            return _answer(413, "rejected", reason=f"body over {max_body_bytes} bytes")
        webhook_id = request.headers.get("x-shopify-webhook-id")
        signature = request.headers.get("x-shopify-hmac-sha256")
        if not signature or not signature_ok(secret_bytes(), body, signature):
            log.warning("shopify webhook %r: missing or wrong signature", webhook_id)
            return _answer(401, "rejected", reason="missing or wrong X-Shopify-Hmac-Sha256")
        try:
            webhook_id = _header(request, "x-shopify-webhook-id", 200)
            shop = _header(request, "x-shopify-shop-domain", 255).lower()
            topic = _header(request, "x-shopify-topic", 64)
            if not SHOP_DOMAIN.match(shop):
                raise InvalidDelivery(f"not a myshopify.com shop domain: {shop[:80]!r}")
            if topic not in topics:
                log.info("shopify webhook %r shop=%s topic=%r: ignored", webhook_id, shop, topic)
                return _answer(200, "ignored")
            triggered_at = parse_timestamp("X-Shopify-Triggered-At", request.headers.get("x-shopify-triggered-at"))
            product = parse_product(body)
        except InvalidDelivery as exc:
            log.warning("shopify webhook %r: bad delivery: %s", webhook_id, exc)
            return _answer(400, "rejected", reason=str(exc))
        if product.refused_urls:
            log.warning(
                "shopify webhook %r: %d image URLs were not http(s), left out", webhook_id, product.refused_urls
            )
        try:
            status = await run_in_threadpool(
                record_and_emit,
                webhook_id,
                shop,
                topic,
                triggered_at,
                product,
                hashlib.sha256(body).hexdigest(),
            )
        except Exception as exc:  # re-raised: the server answers 500 and logs the traceback
            log.error(
                "shopify webhook %r shop=%s topic=%s: not recorded (%s); Shopify will retry",
                webhook_id,
                shop,
                topic,
                exc.__class__.__name__,
            )
            raise
        log.info(
            "shopify webhook %r shop=%s topic=%s product=%s: %s", webhook_id, shop, topic, product.product_id, status
        )
        return _answer(200, status)

    def ping() -> None:
        with get_engine(database_url).connect() as conn:
            conn.execute(text("SELECT id FROM webhook_deliveries LIMIT 1"))

    async def healthz(request: Request) -> JSONResponse:
        try:
            await run_in_threadpool(ping)
        except SQLAlchemyError as exc:
            log.error("healthz: catalog database unavailable: %s", exc.__class__.__name__)
            return _answer(503, "unavailable", database=exc.__class__.__name__)
        return _answer(200, "ok")

    return Starlette(
        routes=[
            Route("/webhooks/shopify", shopify, methods=["POST"]),
            Route("/healthz", healthz, methods=["GET"]),
        ]
    )


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m deployments.webhook", description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8787)
    parser.add_argument("--database-url", help="catalog database (default: $LIGHTBOX_DATABASE_URL)")
    parser.add_argument(
        "--secret-file", type=Path, help="file holding the webhook secret (default: $LIGHTBOX_SHOPIFY_WEBHOOK_SECRET)"
    )
    parser.add_argument("--max-body-bytes", type=int, default=1_048_576)
    parser.add_argument("--migrate", action="store_true", help="bring the catalog schema up to date first")
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    args = parser.parse_args(argv)
    database_url = args.database_url or os.environ.get("LIGHTBOX_DATABASE_URL")
    if not database_url:
        parser.error("no catalog database: pass --database-url or set LIGHTBOX_DATABASE_URL")
    if args.secret_file is not None:
        secret = args.secret_file.read_text().strip()
    else:
        secret = os.environ.get("LIGHTBOX_SHOPIFY_WEBHOOK_SECRET", "")
    if not secret:
        parser.error("no webhook secret: pass --secret-file or set LIGHTBOX_SHOPIFY_WEBHOOK_SECRET")
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s")
    if args.migrate:
        migrate(database_url)
    app = create_app(get_secret=lambda: secret, database_url=database_url, max_body_bytes=args.max_body_bytes)
    try:
        uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level)
    finally:
        drain_prefect_events()


if __name__ == "__main__":
    main()
