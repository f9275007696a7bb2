"""Shopify product webhooks → one durable record + one outbox event, answered fast.

OSS Prefect has no incoming webhooks, so this small ASGI app stands in front of it:

    POST /webhooks/shopify   body ≤ max_body_bytes (413), X-Shopify-Hmac-Sha256 =
                             base64(HMAC-SHA256(secret, raw body)) (401), X-Shopify-Topic,
                             -Shop-Domain and -Webhook-Id present (400), the shop one of
                             ``shops`` (403, nothing recorded); a topic we do not handle →
                             200 ignored (Shopify retries anything but 2xx); JSON product
                             with an id and an ``updated_at`` no later than now + skew
                             (400); then one transaction records the delivery and its
                             pending Prefect event (tasks.events) → 200 accepted |
                             duplicate | stale, or 503 when the database failed.
    GET  /healthz            200 with the count of unsent events when the catalog database
                             answers, else 503.

Intake is an outbox (docs/ARCHITECTURE.md#intake): 200 goes back only after the delivery
and its event are committed; the relay (``tasks.events.Relay``, a thread started with the
app) sends pending events to the Prefect API, at start-up, after each accepted delivery
and every few seconds, and marks them sent once the API accepted them. Blocking work runs
in Starlette's threadpool. The secret and the signature are never logged; untrusted
header values are logged with repr(); errors are logged by class, never with their text
(which can hold the database URL).

A connection must deliver each request's headers and body within ``read_timeout_s``
(10 s), and an idle keep-alive connection is closed after 5 s; put a reverse proxy in
front anyway (README, "Webhook receiver").

    LIGHTBOX_DATABASE_URL=... PREFECT_API_URL=... python -m deployments.webhook \\
        --host 127.0.0.1 --port 8787 --shop STORE.myshopify.com [--secret-file PATH]
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import hashlib
import hmac
import logging
import os
import re
from collections.abc import Callable, Collection, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import uvicorn
from anyio import CapacityLimiter, to_thread
from sqlalchemy.exc import SQLAlchemyError
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from catalog.db import check_url, migrate, session_scope
from catalog.webhooks import InvalidDelivery, ProductPayload, parse_product, parse_timestamp, unsent_count
from deployments.webhook_http import uvicorn_config
from tasks.events import Relay, in_transaction, record_product_delivery, statement_engine

DEFAULT_TOPICS = ("products/create", "products/update")
SHOP_DOMAIN = re.compile(r"^[a-z0-9][a-z0-9-]{0,200}\.myshopify\.com$")
MAX_FUTURE_SKEW = timedelta(minutes=5)
RETRY_AFTER_S = 30  # what a 503 asks Shopify to wait; Shopify's own schedule is longer
log = logging.getLogger("deployments.webhook")  # not __main__ under python -m


def utc_now() -> datetime:
    return datetime.now(UTC)


def signature_ok(secret: bytes, body: bytes, header: str) -> bool:
    expected = base64.b64encode(hmac.new(secret, body, hashlib.sha256).digest())
    return hmac.compare_digest(expected, header.strip().encode("latin-1", "replace"))


def _header(request: Request, name: str, max_length: int, required: bool = True) -> str | None:
    value = request.headers.get(name, "").strip()
    if not value:
        if required:
            raise InvalidDelivery(f"missing {name} header")
        return None
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


def _answer(status_code: int, status: str, headers: dict[str, str] | None = None, **extra: Any) -> JSONResponse:
    return JSONResponse({"status": status, **extra}, status_code=status_code, headers=headers)


def _unavailable() -> JSONResponse:
    return _answer(503, "unavailable", headers={"Retry-After": str(RETRY_AFTER_S)})


def normalise_shops(shops: Collection[str]) -> frozenset[str]:
    result = frozenset(s.strip().lower() for s in shops if s.strip())
    bad = sorted(s for s in result if not SHOP_DOMAIN.match(s))
    if bad:
        raise ValueError(f"not myshopify.com shop domains: {', '.join(map(repr, bad))}")
    return result


def create_app(
    *,
    get_secret: Callable[[], Any],
    database_url: str,
    shops: Collection[str],
    relay: Relay | None = None,
    max_body_bytes: int = 1_048_576,
    allowed_topics: Sequence[str] = DEFAULT_TOPICS,
    clock: Callable[[], datetime] = utc_now,
    max_future_skew: timedelta = MAX_FUTURE_SKEW,
) -> Starlette:
    """The receiver. ``get_secret`` returns the shared secret (str or SecretStr) and is
    called per request: cache it. ``shops``: the shop domains deliveries are taken from.
    ``relay`` is started and stopped with the app (its lifespan) and woken after each
    accepted delivery; without one, events wait in the outbox for another relay."""
    check_url(database_url)
    if max_body_bytes < 1:
        raise ValueError(f"max_body_bytes must be >= 1, got {max_body_bytes}")
    topics, served = frozenset(allowed_topics), normalise_shops(shops)
    # No more transactions at once than the pool holds (catalog.db: 5, one left for the relay):
    # more threads would open and close overflow connections, a new session each time.
    db_slots = CapacityLimiter(4)

    def secret_bytes() -> bytes:
        secret = get_secret()
        secret = secret.get_secret_value() if hasattr(secret, "get_secret_value") else secret
        if not isinstance(secret, str) or not secret:
            raise RuntimeError("the Shopify webhook secret is empty or not a string")
        return secret.encode()

    def record(payload: dict, product: ProductPayload, triggered_at, body_sha256: str, event_id: str | None) -> str:
        # One transaction: the delivery and its outbox event. On PostgreSQL that is one
        # statement (catalog.webhooks), so autocommit saves the BEGIN and COMMIT round trips.
        return in_transaction(
            statement_engine(database_url),
            lambda conn: record_product_delivery(
                conn,
                payload,
                product_updated_at=product.updated_at,
                triggered_at=triggered_at,
                payload_sha256=body_sha256,
                now=clock(),
                shopify_event_id=event_id,
            ),
        )

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
            if shop not in served:
                log.warning("shopify webhook %r: shop %r is not served here, refused", webhook_id, shop)
                return _answer(403, "rejected", reason="shop not served by this receiver")
            if topic not in topics:
                log.info("shopify webhook %r shop=%s topic=%r: ignored", webhook_id, shop, topic)
                return _answer(200, "ignored")
            event_id = _header(request, "x-shopify-event-id", 200, required=False)
            triggered_at = parse_timestamp("X-Shopify-Triggered-At", request.headers.get("x-shopify-triggered-at"))
            product = parse_product(body)
            if product.updated_at is None:
                raise InvalidDelivery("product updated_at missing: the version comes from the signed body only")
            if product.updated_at > clock() + max_future_skew:
                raise InvalidDelivery(f"product updated_at {product.updated_at.isoformat()} is in the future")
        except InvalidDelivery as exc:
            log.warning("shopify webhook %r: bad delivery: %s", webhook_id, exc)
            return _answer(400, "rejected", reason=str(exc))
        if product.refused_urls:
            log.warning(
                "shopify webhook %r: %d image URLs were not http(s), left out", webhook_id, product.refused_urls
            )
        payload = {
            "shop": shop,
            "product_id": product.product_id,
            "topic": topic,
            "webhook_id": webhook_id,
            "image_urls": list(product.image_urls),
            "updated_at": product.updated_at.isoformat(),
            "triggered_at": triggered_at.isoformat() if triggered_at is not None else None,
        }
        try:
            digest = hashlib.sha256(body).hexdigest()
            status = await to_thread.run_sync(
                record, payload, product, triggered_at, digest, event_id, limiter=db_slots
            )
        except Exception as exc:  # answered 503: Shopify retries; the text may hold the URL
            log.error(
                "shopify webhook %r shop=%s: not recorded (%s); Shopify will retry",
                webhook_id,
                shop,
                type(exc).__name__,
            )
            return _unavailable()
        if status == "accepted" and relay is not None:
            relay.wake()
        log.info(
            "shopify webhook %r shop=%s topic=%s product=%s: %s", webhook_id, shop, topic, product.product_id, status
        )
        return _answer(200, status)

    def count_unsent() -> int:
        with session_scope(database_url) as session:
            return unsent_count(session)

    async def healthz(request: Request) -> JSONResponse:
        try:
            unsent = await to_thread.run_sync(count_unsent, limiter=db_slots)
        except SQLAlchemyError as exc:
            log.error("healthz: catalog database unavailable (%s)", type(exc).__name__)
            return _unavailable()
        return _answer(200, "ok", unsent_events=unsent)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette):
        if relay is not None:
            relay.start()  # its first pass sends what an earlier process left pending
        try:
            yield
        finally:
            if relay is not None:
                await run_in_threadpool(relay.stop)

    return Starlette(
        routes=[
            Route("/webhooks/shopify", shopify, methods=["POST"]),
            Route("/healthz", healthz, methods=["GET"]),
        ],
        lifespan=lifespan,
    )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m deployments.webhook", description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8787)
    parser.add_argument(
        "--shop",
        action="append",
        default=[],
        help="a shop domain deliveries are taken from; repeat for more "
        "(default: $LIGHTBOX_SHOPIFY_SHOPS, comma-separated, or $LIGHTBOX_SHOPIFY_SHOP; none: all refused)",
    )
    parser.add_argument(
        "--secret-file", type=Path, help="file holding the webhook secret (default: $LIGHTBOX_SHOPIFY_WEBHOOK_SECRET)"
    )
    parser.add_argument("--max-body-bytes", type=int, default=1_048_576)
    parser.add_argument("--read-timeout", type=float, default=10.0, help="seconds for a request's headers and body")
    parser.add_argument("--migrate", action="store_true", help="bring the catalog schema up to date first")
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    args = parser.parse_args(argv)
    # The catalog URL may hold a password: it comes from the environment, never argv.
    database_url = os.environ.get("LIGHTBOX_DATABASE_URL")
    if not database_url:
        parser.error("no catalog database: set LIGHTBOX_DATABASE_URL")
    try:
        check_url(database_url)
    except ValueError:  # its message would quote the URL, password included
        parser.error("LIGHTBOX_DATABASE_URL is not a supported database URL")
    listed = args.shop or (os.environ.get("LIGHTBOX_SHOPIFY_SHOPS") or os.environ.get("LIGHTBOX_SHOPIFY_SHOP") or "")
    try:
        shops = normalise_shops(listed.split(",") if isinstance(listed, str) else listed)
    except ValueError as exc:
        parser.error(str(exc))
    if not os.environ.get("PREFECT_API_URL"):
        parser.error("no Prefect API: set PREFECT_API_URL (the relay sends the events there)")
    if args.secret_file is not None:
        secret = args.secret_file.read_text().strip()
    else:
        secret = os.environ.get("LIGHTBOX_SHOPIFY_WEBHOOK_SECRET", "")
    if not secret:
        parser.error("no webhook secret: pass --secret-file or set LIGHTBOX_SHOPIFY_WEBHOOK_SECRET")
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s")
    if not shops:
        log.warning("no shop configured (--shop, LIGHTBOX_SHOPIFY_SHOPS): every delivery is refused with 403")
    if args.migrate:
        migrate(database_url)  # its error names the URL without the password
    app = create_app(
        get_secret=lambda: secret,
        database_url=database_url,
        shops=shops,
        relay=Relay(database_url),
        max_body_bytes=args.max_body_bytes,
    )
    config = uvicorn_config(
        app, host=args.host, port=args.port, log_level=args.log_level, read_timeout_s=args.read_timeout
    )
    uvicorn.Server(config).run()


if __name__ == "__main__":
    main()
