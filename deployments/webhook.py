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
and its event are committed; the relay (``tasks.events.Relay``, started with the app)
sends pending events to the Prefect API, at start-up, after each accepted delivery and
every few seconds, and marks them sent once the API accepted them. The app is bare ASGI
(``Receiver``, no framework): on PostgreSQL each delivery is one statement on the event
loop (asyncpg, ``tasks.events.IntakeConnections``) and the relay a task on the same loop;
on SQLite the transaction runs in a worker thread and the relay in a thread of its own.
The secret and the signature are never logged; untrusted header values are logged with
repr(); errors are logged by class, never with their text (which can hold the database
URL).

A connection must deliver each request's headers and body within ``read_timeout_s``
(10 s), and an idle keep-alive connection is closed after 5 s; put a reverse proxy in
front anyway (README, "Webhook receiver").

    LIGHTBOX_DATABASE_URL=... PREFECT_API_URL=... python -m deployments.webhook \\
        --host 127.0.0.1 --port 8787 --shop STORE.myshopify.com [--secret-file PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import hmac
import json
import logging
import os
import re
import traceback
from collections.abc import Awaitable, Callable, Collection, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import uvicorn
from anyio import CapacityLimiter, to_thread
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from catalog.db import check_url, migrate, session_scope
from catalog.webhooks import (
    InvalidDelivery,
    ProductPayload,
    parse_product,
    parse_timestamp,
    postgres_recording_statement,
    unsent_count,
)
from deployments.webhook_http import uvicorn_config
from tasks.events import IntakeConnections, Relay, in_transaction, record_product_delivery, statement_engine

DEFAULT_TOPICS = ("products/create", "products/update")
SHOP_DOMAIN = re.compile(r"^[a-z0-9][a-z0-9-]{0,200}\.myshopify\.com$")
MAX_FUTURE_SKEW = timedelta(minutes=5)
RETRY_AFTER_S = 30  # what a 503 asks Shopify to wait; Shopify's own schedule is longer
DB_SLOTS = 4  # SQLite: transactions at once, each in a worker thread
INTAKE_CONNECTIONS = 8  # PostgreSQL: statements at once (a 4-connection pool queued at 200/s on a busy host)
log = logging.getLogger("deployments.webhook")  # not __main__ under python -m

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
Answer = tuple[int, bytes, tuple[tuple[bytes, bytes], ...]]  # status, JSON body, extra headers


def utc_now() -> datetime:
    return datetime.now(UTC)


def signature_ok(secret: bytes, body: bytes, header: str) -> bool:
    expected = base64.b64encode(hmac.digest(secret, body, "sha256"))
    return hmac.compare_digest(expected, header.strip().encode("latin-1", "replace"))


def _header(headers: dict[str, str], name: str, max_length: int, required: bool = True) -> str | None:
    value = headers.get(name, "").strip()
    if not value:
        if required:
            raise InvalidDelivery(f"missing {name} header")
        return None
    if len(value) > max_length or not value.isprintable():
        raise InvalidDelivery(f"{name} header is too long or not printable")
    return value


def _headers(scope: Scope) -> dict[str, str]:
    """The request's headers by lower-case name; the first of repeated ones, as Starlette."""
    return {name.decode("latin-1"): value.decode("latin-1") for name, value in reversed(scope["headers"])}


class ClientDisconnect(Exception):
    """The client went away before its body was in."""


async def _read_body(receive: Receive, max_bytes: int) -> bytes | None:
    """The raw body, or None as soon as it runs past ``max_bytes``."""
    chunks, total = [], 0
    while True:
        message = await receive()
        if message["type"] != "http.request":  # http.disconnect
            raise ClientDisconnect
        chunk = message.get("body", b"")
        total += len(chunk)
        if total > max_bytes:
            return None
        if chunk:
            chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _answer(status_code: int, status: str, headers: tuple[tuple[bytes, bytes], ...] = (), **extra: Any) -> Answer:
    body = json.dumps({"status": status, **extra}, ensure_ascii=False, separators=(",", ":")).encode()
    return status_code, body, headers


_RECORDED = {status: _answer(200, status) for status in ("accepted", "duplicate", "stale", "ignored")}
_UNAVAILABLE = _answer(503, "unavailable", ((b"retry-after", str(RETRY_AFTER_S).encode()),))
_NOT_FOUND = _answer(404, "not found")
_SERVER_ERROR = _answer(500, "error")


def _not_allowed(allow: str) -> Answer:
    return _answer(405, "method not allowed", ((b"allow", allow.encode()),))


async def _respond(send: Send, answer: Answer) -> None:
    status_code, body, extra = answer
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), *extra]
    await send({"type": "http.response.start", "status": status_code, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def normalise_shops(shops: Collection[str]) -> frozenset[str]:
    result = frozenset(s.strip().lower() for s in shops if s.strip())
    bad = sorted(s for s in result if not SHOP_DOMAIN.match(s))
    if bad:
        raise ValueError(f"not myshopify.com shop domains: {', '.join(map(repr, bad))}")
    return result


class Receiver:
    """The receiver as a bare ASGI application (``create_app``). Two routes, no framework:
    a request goes from the server's protocol straight to its handler, and on PostgreSQL
    the delivery's transaction runs on the event loop (``IntakeConnections``), so the hot
    path has no middleware, no routing table and no thread hop. On SQLite the transaction
    runs in a worker thread (at most ``DB_SLOTS`` at once), as before."""

    def __init__(
        self,
        *,
        get_secret: Callable[[], Any],
        database_url: str,
        shops: Collection[str],
        relay: Relay | None,
        max_body_bytes: int,
        allowed_topics: Sequence[str],
        clock: Callable[[], datetime],
        max_future_skew: timedelta,
    ) -> None:
        check_url(database_url)
        if max_body_bytes < 1:
            raise ValueError(f"max_body_bytes must be >= 1, got {max_body_bytes}")
        self.get_secret, self.database_url, self.relay, self.clock = get_secret, database_url, relay, clock
        self.max_body_bytes, self.max_future_skew = max_body_bytes, max_future_skew
        self.topics, self.served = frozenset(allowed_topics), normalise_shops(shops)
        self.too_large = _answer(413, "rejected", reason=f"body over {max_body_bytes} bytes")
        postgres = make_url(database_url).get_backend_name() == "postgresql"
        self.intake = IntakeConnections(database_url, size=INTAKE_CONNECTIONS) if postgres else None
        if postgres:
            postgres_recording_statement()  # compiled now, not by the first delivery
        # SQLite: no more transactions at once than the pool holds (catalog.db: 5, one left
        # for the relay); more threads would open and close overflow connections.
        self.db_slots = CapacityLimiter(DB_SLOTS)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            path, method = scope["path"], scope["method"]
            if path == "/webhooks/shopify":
                handler = self.shopify if method == "POST" else None
                allow = "POST"
            elif path == "/healthz":
                handler = self.healthz if method in ("GET", "HEAD") else None
                allow = "GET, HEAD"
            else:
                await _respond(send, _NOT_FOUND)
                return
            if handler is None:
                await _respond(send, _not_allowed(allow))
                return
            try:
                answer = await handler(scope, receive)
            except Exception as exc:  # a bug: its text may quote a URL; the class and frames only
                frames = "".join(traceback.format_tb(exc.__traceback__))
                log.error("%s %s: unexpected %s\n%s", method, path, type(exc).__name__, frames)
                answer = _SERVER_ERROR
            await _respond(send, answer)
        elif kind == "lifespan":
            await self.lifespan(receive, send)
        elif kind == "websocket":
            await send({"type": "websocket.close", "code": 1000})

    def secret_bytes(self) -> bytes:
        secret = self.get_secret()
        secret = secret.get_secret_value() if hasattr(secret, "get_secret_value") else secret
        if not isinstance(secret, str) or not secret:
            raise RuntimeError("the Shopify webhook secret is empty or not a string")
        return secret.encode()

    async def shopify(self, scope: Scope, receive: Receive) -> Answer:
        headers = _headers(scope)
        declared = headers.get("content-length")
        if declared is not None and not declared.strip().isdigit():
            return _answer(400, "rejected", reason="invalid Content-Length")
        if declared is not None and int(declared) > self.max_body_bytes:
            return self.too_large
        try:
            body = await _read_body(receive, self.max_body_bytes)
        except ClientDisconnect:
            log.info("shopify webhook: client disconnected while sending the body")
            return _answer(400, "rejected", reason="client disconnected")
        if body is None:
            return self.too_large
        webhook_id = headers.get("x-shopify-webhook-id")
        signature = headers.get("x-shopify-hmac-sha256")
        if not signature or not signature_ok(self.secret_bytes(), body, signature):
            log.warning("shopify webhook %r: missing or wrong signature", webhook_id)
            return _answer(401, "rejected", reason="missing or wrong X-Shopify-Hmac-Sha256")
        clock = self.clock
        try:
            webhook_id = _header(headers, "x-shopify-webhook-id", 200)
            shop = _header(headers, "x-shopify-shop-domain", 255).lower()
            topic = _header(headers, "x-shopify-topic", 64)
            if not SHOP_DOMAIN.match(shop):
                raise InvalidDelivery(f"not a myshopify.com shop domain: {shop[:80]!r}")
            if shop not in self.served:
                log.warning("shopify webhook %r: shop %r is not served here, refused", webhook_id, shop)
                return _answer(403, "rejected", reason="shop not served by this receiver")
            if topic not in self.topics:
                log.info("shopify webhook %r shop=%s topic=%r: ignored", webhook_id, shop, topic)
                return _RECORDED["ignored"]
            event_id = _header(headers, "x-shopify-event-id", 200, required=False)
            triggered_at = parse_timestamp("X-Shopify-Triggered-At", headers.get("x-shopify-triggered-at"))
            product = parse_product(body)
            if product.updated_at is None:
                raise InvalidDelivery("product updated_at missing: the version comes from the signed body only")
            if product.updated_at > clock() + self.max_future_skew:
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
        digest = hashlib.sha256(body).hexdigest()
        try:
            if self.intake is not None:
                status = await self.intake.record(
                    payload,
                    product_updated_at=product.updated_at,
                    triggered_at=triggered_at,
                    payload_sha256=digest,
                    now=clock(),
                    shopify_event_id=event_id,
                )
            else:
                status = await to_thread.run_sync(
                    self._record, payload, product, triggered_at, digest, event_id, limiter=self.db_slots
                )
        except Exception as exc:  # answered 503: Shopify retries; the text may hold the URL
            log.error(
                "shopify webhook %r shop=%s: not recorded (%s); Shopify will retry",
                webhook_id,
                shop,
                type(exc).__name__,
            )
            return _UNAVAILABLE
        if status == "accepted" and self.relay is not None:
            self.relay.wake()
        log.info(
            "shopify webhook %r shop=%s topic=%s product=%s: %s", webhook_id, shop, topic, product.product_id, status
        )
        return _RECORDED[status]

    def _record(self, payload: dict, product: ProductPayload, triggered_at, digest: str, event_id: str | None) -> str:
        """The delivery and its outbox event in one transaction, in a worker thread (SQLite)."""
        return in_transaction(
            statement_engine(self.database_url),
            lambda conn: record_product_delivery(
                conn,
                payload,
                product_updated_at=product.updated_at,
                triggered_at=triggered_at,
                payload_sha256=digest,
                now=self.clock(),
                shopify_event_id=event_id,
            ),
        )

    def _count_unsent(self) -> int:
        with session_scope(self.database_url) as session:
            return unsent_count(session)

    async def healthz(self, scope: Scope, receive: Receive) -> Answer:
        try:
            if self.intake is not None:
                unsent = await self.intake.unsent_count()
            else:
                unsent = await to_thread.run_sync(self._count_unsent, limiter=self.db_slots)
        except (SQLAlchemyError, asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError) as exc:
            log.error("healthz: catalog database unavailable (%s)", type(exc).__name__)
            return _UNAVAILABLE
        return _answer(200, "ok", unsent_events=unsent)

    async def lifespan(self, receive: Receive, send: Send) -> None:
        """Starts the relay (its first pass sends what an earlier process left pending: on
        PostgreSQL a task on this loop, else a thread) and stops it, then closes the
        intake's connections."""
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    if self.relay is not None and self.intake is not None:
                        self.relay.start_on(self.intake)
                    elif self.relay is not None:
                        self.relay.start()
                except Exception as exc:
                    await send({"type": "lifespan.startup.failed", "message": type(exc).__name__})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self.relay is not None and self.intake is not None:
                    await self.relay.stop_on()
                elif self.relay is not None:
                    await asyncio.get_running_loop().run_in_executor(None, self.relay.stop)
                if self.intake is not None:
                    await self.intake.close()
                await send({"type": "lifespan.shutdown.complete"})
                return


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
) -> Receiver:
    """The receiver (an ASGI application). ``get_secret`` returns the shared secret (str or
    SecretStr) and is called per request: cache it. ``shops``: the shop domains deliveries
    are taken from. ``relay`` is started and stopped with the app (its lifespan) and woken
    after each accepted delivery; without one, events wait in the outbox for another relay."""
    return Receiver(
        get_secret=get_secret,
        database_url=database_url,
        shops=shops,
        relay=relay,
        max_body_bytes=max_body_bytes,
        allowed_topics=allowed_topics,
        clock=clock,
        max_future_skew=max_future_skew,
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
