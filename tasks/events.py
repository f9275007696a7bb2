"""The Prefect event a Shopify product delivery becomes, its outbox, and the relay.

Shared by the webhook receiver (deployments/webhook.py, an edge) and the reconciliation
task (tasks/reconcile.py), so tasks/ imports nothing from deployments/
(docs/ARCHITECTURE.md, "Layers").

Intake is an outbox (docs/ARCHITECTURE.md#intake): ``record_product_delivery`` writes the
delivery and its event in the caller's transaction (``IntakeConnections.record`` is the
receiver's own path on PostgreSQL: the same statement on asyncpg, on its event loop);
``relay_pending`` sends pending events to the Prefect API (``POST /api/events``, answered
204 once the server has taken them) and stamps them sent (``relay_pending_on``: the same
on the event loop). ``Relay`` runs it in the receiver's background: at start-up, after
each accepted delivery, and every ``poll_s``. An event's id is ``uuid5`` of shop and
webhook id, and its ``occurred`` the delivery's arrival, so a resend is the same event:
Prefect's event store and its triggers drop an id they have seen.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from sqlalchemy import Connection, Engine, create_engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from catalog.db import get_engine
from catalog.pg_pool import StatementPool
from catalog.webhooks import (
    MAX_ERROR_LENGTH,
    DeliveryStatus,
    claim_pending,
    mark_failed,
    mark_sent,
    postgres_recording_statement,
    postgres_relay_statements,
    postgres_unsent_statement,
    record_delivery,
    recording_params,
)

EVENT_NAME = "lightbox.shopify.product.updated"
RELAY_BATCH = 100
RELAY_LEASE = timedelta(seconds=60)  # longer than one POST with the client's timeout
REFUSED_HOLD = timedelta(seconds=60)  # an event the API refused is tried again after this
log = logging.getLogger("tasks.events")

SendEvents = Callable[[list[dict[str, Any]]], None]


def event_uuid(shop: str, webhook_id: str) -> UUID:
    """The Prefect event id for one delivery: the same on every retry of that delivery."""
    return uuid5(NAMESPACE_URL, f"lightbox:shopify-webhook:{shop}:{webhook_id}")


def product_event_fields(payload: dict[str, Any]) -> dict[str, Any]:
    """The fields of the Prefect event for one product delivery (the trigger in
    prefect.yaml matches ``prefect.resource.id`` and reads ``event.payload``)."""
    shop, product_id = payload["shop"], payload["product_id"]
    return {
        "event": EVENT_NAME,
        "resource": {
            "prefect.resource.id": f"shopify.product.{shop}.{product_id}",
            "prefect.resource.name": f"{shop} product {product_id}",
            "shopify.shop": shop,
            "shopify.product-id": product_id,
        },
        "payload": payload,
        "id": event_uuid(shop, payload["webhook_id"]),
    }


def product_event(payload: dict[str, Any], occurred: datetime) -> dict[str, Any]:
    """The event as the API takes it (JSON-ready): exactly what Prefect's ``Event`` model
    dumps for these fields (tests/deployments/test_webhook.py holds the two equal), built
    without the model (56 against 12 µs per delivery; the receiver no longer imports
    Prefect at all unless it sends to it). The API validates it again; one it refuses
    stays in the outbox with the reason."""
    if occurred.utcoffset() is None:
        raise ValueError(f"occurred must be timezone-aware, got naive {occurred.isoformat()}")
    fields = product_event_fields(payload)
    stamp = occurred.isoformat()
    return {
        "occurred": stamp[:-6] + "Z" if stamp.endswith("+00:00") else stamp,
        "event": fields["event"],
        "resource": fields["resource"],
        "related": [],
        "payload": dict(payload),  # a dict of its own, as the model dumps it
        "id": str(fields["id"]),
        "follows": None,
    }


def record_product_delivery(
    db: Session | Connection,
    payload: dict[str, Any],
    *,
    product_updated_at: datetime | None,
    triggered_at: datetime | None,
    payload_sha256: str,
    now: datetime,
    shopify_event_id: str | None = None,
) -> DeliveryStatus:
    """Record one delivery and, when accepted, its pending event, in ``db``'s transaction
    (a Session or a Connection): the receiver's path and the reconciliation's."""
    fields = delivery_fields(payload, product_updated_at, triggered_at, payload_sha256, now, shopify_event_id)
    return record_delivery(db, **fields, event=product_event(payload, now))


def delivery_fields(
    payload: dict[str, Any],
    product_updated_at: datetime | None,
    triggered_at: datetime | None,
    payload_sha256: str,
    now: datetime,
    shopify_event_id: str | None,
) -> dict[str, Any]:
    """The delivery row's fields, as ``record_delivery`` and ``recording_params`` take them."""
    return dict(
        webhook_id=payload["webhook_id"],
        shop=payload["shop"],
        topic=payload["topic"],
        product_id=payload["product_id"],
        triggered_at=triggered_at,
        product_updated_at=product_updated_at,
        payload_sha256=payload_sha256,
        now=now,
        shopify_event_id=shopify_event_id,
    )


INTAKE_APPLICATION = "lightbox-intake"  # pg_stat_activity's name for these connections


@lru_cache(maxsize=8)
def statement_engine(database_url: str) -> Engine:
    """The catalog's engine for work done in one statement per transaction (the receiver's
    intake, the relay). On PostgreSQL its own small pool, opened in autocommit (no BEGIN
    and COMMIT round trips, no switching per checkout) and without a ping per checkout (a
    round trip and a tenth of the receiver's CPU): a connection the server dropped fails
    its statement instead, and ``in_transaction`` runs the work once more on a fresh one.
    On SQLite the catalog's engine as it is (BEGIN IMMEDIATE)."""
    engine = get_engine(database_url)
    if engine.dialect.name != "postgresql":
        return engine
    return create_engine(
        database_url,
        isolation_level="AUTOCOMMIT",
        pool_size=5,
        max_overflow=5,
        connect_args={"application_name": INTAKE_APPLICATION},
    )


class IntakeConnections(StatementPool):
    """The receiver's own PostgreSQL connections, used on its event loop (catalog.pg_pool):
    the outbox's statements, compiled from the same SQLAlchemy Core statements as the
    SQLite path. No thread hop and no SQLAlchemy on the hot path (with the bare ASGI app
    and the relay on the loop, the receiver's CPU per delivery in bench/webhook_load.py
    halved)."""

    def __init__(self, database_url: str, size: int = 4) -> None:
        super().__init__(database_url, size=size, application_name=INTAKE_APPLICATION)

    async def record(
        self,
        payload: dict[str, Any],
        *,
        product_updated_at: datetime | None,
        triggered_at: datetime | None,
        payload_sha256: str,
        now: datetime,
        shopify_event_id: str | None = None,
    ) -> DeliveryStatus:
        """``record_product_delivery`` on these connections: the delivery and its pending
        event in one statement, committed when this returns."""
        event = product_event(payload, now)
        sql, names, constants = postgres_recording_statement()
        fields = delivery_fields(payload, product_updated_at, triggered_at, payload_sha256, now, shopify_event_id)
        params = recording_params(**fields, event_id=event["id"])
        params.update(constants)
        params["p_event"] = json.dumps(event, separators=(",", ":"))
        rows = await self.run(sql, [params[name] for name in names])
        return rows[0][1] if rows else "duplicate"

    async def unsent_count(self) -> int:
        sql, names, constants = postgres_unsent_statement()
        ((count,),) = await self.run(sql, [constants[name] for name in names])
        return count

    async def claim_pending(self, *, now: datetime, lease_until: datetime, limit: int) -> list[tuple[int, str]]:
        """``catalog.webhooks.claim_pending`` on these connections: (outbox id, the event as
        JSON text), oldest first."""
        rows = await self._relay("claim", now_=now, lease_until_=lease_until, limit_=limit)
        return sorted((row_id, event) for row_id, event in rows)

    async def mark_sent(self, ids: list[int], now: datetime) -> None:
        if ids:
            await self._relay("sent", ids_=ids, now_=now)

    async def mark_failed(self, ids: list[int], *, error: str, retry_at: datetime) -> None:
        await self._relay("failed", ids_=ids, retry_at_=retry_at, error_=error[:MAX_ERROR_LENGTH])

    async def _relay(self, name: str, **params: Any) -> list[Any]:
        sql, names, constants = postgres_relay_statements()[name]
        params.update(constants)
        return await self.run(sql, [params[name] for name in names])


def in_transaction(engine: Engine, work: Callable[[Connection], Any]) -> Any:
    """``work(conn)`` in one transaction of ``engine``; when the pooled connection turns
    out to be dead (the server restarted, an idle connection was cut), once more on a new
    connection. ``work`` must be safe to repeat: the intake's insert is (ON CONFLICT DO
    NOTHING), and a statement that never reached the server did nothing."""
    try:
        with engine.begin() as conn:
            return work(conn)
    except DBAPIError as exc:
        if not exc.connection_invalidated:
            raise
    with engine.begin() as conn:  # the pool dropped the dead connections: this one is new
        return work(conn)


class PrefectEventSender:
    """Sends events with the Prefect client (PREFECT_API_URL and its auth settings) and
    returns only once the API accepted them; raises otherwise. One client is kept open
    between calls and dropped after a failure: Prefect's client retries a refused
    connection for minutes once it has connected, and the relay has its own back-off."""

    def __init__(self) -> None:
        self._client = None
        import prefect.client.orchestration  # noqa: F401  (seconds: at start-up, not at the first send)

    def __call__(self, events: list[dict[str, Any]]) -> None:
        from prefect.client.orchestration import get_client
        from prefect.settings import PREFECT_API_URL

        if not PREFECT_API_URL.value():
            raise RuntimeError("PREFECT_API_URL is not set: the relay sends events to a Prefect server")
        if self._client is None:
            self._client = get_client(sync_client=True)
            self._client.__enter__()
        try:
            self._client.request("POST", "/events", json=events)  # raises unless 2xx
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            client.__exit__(None, None, None)


def error_text(exc: BaseException) -> str:
    """What is stored and logged about a failed send: the class and HTTP status only (an
    exception's text can carry URLs)."""
    status = getattr(getattr(exc, "response", None), "status_code", None)
    return exc.__class__.__name__ + (f" (HTTP {status})" if status else "")


def refused(exc: BaseException) -> bool:
    """The API answered and refused these events (4xx other than 408/429): sending the same
    again will not help, unlike a connection error, a timeout or a 5xx."""
    status = getattr(getattr(exc, "response", None), "status_code", None)
    return status is not None and 400 <= status < 500 and status not in (408, 429)


def relay_pending(
    database_url: str,
    send: SendEvents,
    *,
    retry_after: timedelta = timedelta(seconds=5),
    batch: int = RELAY_BATCH,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> int:
    """Send the pending events, ``batch`` at a time, until a claim comes back short; return
    how many were sent. A failed send leaves its events pending (not before
    ``retry_after``), records why, and raises. A batch the API refuses is sent again one
    event at a time, so one event it will not take (kept pending, with the reason, for at
    least ``REFUSED_HOLD``) does not hold back the others."""
    sent, engine = 0, statement_engine(database_url)
    while True:
        now = clock()
        with engine.begin() as conn:
            claimed = claim_pending(conn, now=now, lease_until=now + RELAY_LEASE, limit=batch)
        if not claimed:
            return sent
        try:
            send([event for _, event in claimed])
            done = [row_id for row_id, _ in claimed]
        except Exception as exc:
            if not (refused(exc) and len(claimed) > 1):
                with engine.begin() as conn:
                    mark_failed(conn, [i for i, _ in claimed], error=error_text(exc), retry_at=clock() + retry_after)
                raise
            now = clock()
            done = _send_one_by_one(
                engine, send, claimed, retry_at=now + retry_after, hold=now + max(retry_after, REFUSED_HOLD)
            )
        with engine.begin() as conn:
            mark_sent(conn, done, clock())
        sent += len(done)
        if len(claimed) < batch:  # all there was; what arrives meanwhile wakes the relay again
            return sent


def _send_one_by_one(
    engine: Engine, send: SendEvents, claimed: list[tuple[int, dict]], *, retry_at: datetime, hold: datetime
) -> list[int]:
    """Send each event alone; the refused ones stay pending until ``hold``; return the ids
    sent. Any other failure marks what is left failed (until ``retry_at``) and raises."""
    done = []
    for position, (row_id, event) in enumerate(claimed):
        try:
            send([event])
        except Exception as exc:
            if not refused(exc):
                with engine.begin() as conn:
                    mark_sent(conn, done, datetime.now(UTC))
                    left = [i for i, _ in claimed[position:]]
                    mark_failed(conn, left, error=error_text(exc), retry_at=retry_at)
                raise
            log.warning("event relay: the Prefect API refused event %s (%s)", event.get("id"), error_text(exc))
            with engine.begin() as conn:
                mark_failed(conn, [row_id], error=error_text(exc), retry_at=hold)
            continue
        done.append(row_id)
    return done


async def relay_pending_on(
    intake: IntakeConnections,
    send: Callable[[list[dict[str, Any]]], Awaitable[None]],
    *,
    retry_after: timedelta = timedelta(seconds=5),
    batch: int = RELAY_BATCH,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> int:
    """``relay_pending`` on the event loop: the same passes, the database work on
    ``intake``'s connections, ``send`` awaited (the receiver runs the blocking sender in a
    thread of its own)."""
    sent = 0
    while True:
        now = clock()
        claimed = await intake.claim_pending(now=now, lease_until=now + RELAY_LEASE, limit=batch)
        if not claimed:
            return sent
        events = [(row_id, json.loads(event)) for row_id, event in claimed]
        try:
            await send([event for _, event in events])
            done = [row_id for row_id, _ in events]
        except Exception as exc:
            if not (refused(exc) and len(events) > 1):
                ids = [i for i, _ in events]
                await intake.mark_failed(ids, error=error_text(exc), retry_at=clock() + retry_after)
                raise
            now = clock()
            hold = now + max(retry_after, REFUSED_HOLD)
            done = await _send_one_by_one_on(intake, send, events, retry_at=now + retry_after, hold=hold)
        await intake.mark_sent(done, clock())
        sent += len(done)
        if len(claimed) < batch:  # all there was; what arrives meanwhile wakes the relay again
            return sent


async def _send_one_by_one_on(
    intake: IntakeConnections,
    send: Callable[[list[dict[str, Any]]], Awaitable[None]],
    claimed: list[tuple[int, dict]],
    *,
    retry_at: datetime,
    hold: datetime,
) -> list[int]:
    """``_send_one_by_one`` on the event loop."""
    done = []
    for position, (row_id, event) in enumerate(claimed):
        try:
            await send([event])
        except Exception as exc:
            if not refused(exc):
                await intake.mark_sent(done, datetime.now(UTC))
                left = [i for i, _ in claimed[position:]]
                await intake.mark_failed(left, error=error_text(exc), retry_at=retry_at)
                raise
            log.warning("event relay: the Prefect API refused event %s (%s)", event.get("id"), error_text(exc))
            await intake.mark_failed([row_id], error=error_text(exc), retry_at=hold)
            continue
        done.append(row_id)
    return done


class Relay:
    """``relay_pending`` in the background: a first pass at once, then after each
    ``wake()`` (an accepted delivery) and every ``poll_s``, ``linger_s`` later (a burst
    shares one POST); after a failure it waits 1, 2, 4 ... up to ``max_backoff_s``
    seconds, whatever wakes it.

    Two ways to run it: ``start`` / ``stop``, a thread of its own with SQLAlchemy (any
    catalog); or ``start_on`` / ``stop_on``, a task on the running event loop whose
    database work runs on the receiver's ``IntakeConnections`` (PostgreSQL), each send in
    one worker thread (the sender blocks). There ``wake`` must be called on the loop's
    thread. The loop's way has no engine of its own to set up, no SQLAlchemy per
    statement and no thread woken per delivery: about 0.25 ms less of the receiver's CPU
    per delivery in bench/webhook_load.py."""

    def __init__(
        self,
        database_url: str,
        send: SendEvents | None = None,
        *,
        poll_s: float = 5.0,
        linger_s: float = 0.1,
        max_backoff_s: float = 30.0,
    ) -> None:
        self.database_url = database_url
        self.poll_s, self.linger_s, self.max_backoff_s = poll_s, linger_s, max_backoff_s
        self.send = send if send is not None else PrefectEventSender()
        self.sent = 0
        self._wake, self._stop = threading.Event(), threading.Event()
        self._thread = threading.Thread(target=self._run, name="event-relay", daemon=True)
        self._task: asyncio.Task | None = None
        self._loop_wake: asyncio.Event | None = None
        self._sender: ThreadPoolExecutor | None = None

    def start(self) -> None:
        self._thread.start()

    def wake(self) -> None:
        if self._loop_wake is not None:
            self._loop_wake.set()
        else:
            self._wake.set()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout)
        if isinstance(self.send, PrefectEventSender):
            self.send.close()

    def start_on(self, intake: IntakeConnections) -> None:
        """Run on the running event loop (see the class)."""
        self._loop_wake = asyncio.Event()
        self._sender = ThreadPoolExecutor(max_workers=1, thread_name_prefix="event-relay-send")
        self._task = asyncio.get_running_loop().create_task(self._run_on(intake), name="event-relay")

    async def stop_on(self, timeout: float = 10.0) -> None:
        """Stop the loop's relay: the pass under way ends first (up to ``timeout``); what it
        had not sent stays pending."""
        self._stop.set()
        self.wake()
        if self._task is not None:
            try:
                await asyncio.wait_for(self._task, timeout)
            except TimeoutError:  # a send hanging: its claim lapses, the next relay sends it
                log.warning("event relay: still sending after %.0f s; stopped, its events stay pending", timeout)
            except Exception as exc:  # it ended on a bug; what it had not sent stays pending
                log.error("event relay: ended on %s", type(exc).__name__)
        if self._sender is not None:
            if isinstance(self.send, PrefectEventSender):
                await asyncio.get_running_loop().run_in_executor(self._sender, self.send.close)
            self._sender.shutdown(wait=False)

    async def _send_in_thread(self, events: list[dict[str, Any]]) -> None:
        await asyncio.get_running_loop().run_in_executor(self._sender, self.send, events)

    async def _run_on(self, intake: IntakeConnections) -> None:
        backoff = 0.0
        while not self._stop.is_set():
            self._loop_wake.clear()
            try:
                sent = await relay_pending_on(intake, self._send_in_thread, retry_after=timedelta(0))
            except Exception as exc:  # the events stay pending: retried after the back-off
                backoff = min(max(1.0, 2 * backoff), self.max_backoff_s)
                log.warning("event relay: send failed (%s); pending events retried in %.0f s", error_text(exc), backoff)
                await self._pause(backoff, wakeable=False)
                continue
            if sent:
                self.sent += sent
                log.info("event relay: %d events accepted by the Prefect API", sent)
            backoff = 0.0
            await self._pause(self.poll_s, wakeable=True)
            if self.linger_s and not self._stop.is_set():
                await asyncio.sleep(self.linger_s)  # let a burst of deliveries share one POST

    async def _pause(self, seconds: float, *, wakeable: bool) -> None:
        """Up to ``seconds``; less when stopped, or when woken if ``wakeable``."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while not self._stop.is_set() and (left := deadline - loop.time()) > 0:
            if not wakeable:
                self._loop_wake.clear()
            try:
                await asyncio.wait_for(self._loop_wake.wait(), left)
            except TimeoutError:
                return
            if wakeable:
                return

    def _run(self) -> None:
        backoff = 0.0
        while not self._stop.is_set():
            self._wake.clear()
            try:
                # its own back-off times the retry: the events are free again at once
                sent = relay_pending(self.database_url, self.send, retry_after=timedelta(0))
            except Exception as exc:  # the events stay pending: retried after the back-off
                backoff = min(max(1.0, 2 * backoff), self.max_backoff_s)
                log.warning("event relay: send failed (%s); pending events retried in %.0f s", error_text(exc), backoff)
                self._stop.wait(backoff)
                continue
            if sent:
                self.sent += sent
                log.info("event relay: %d events accepted by the Prefect API", sent)
            backoff = 0.0
            self._wake.wait(self.poll_s)
            if self.linger_s:
                time.sleep(self.linger_s)  # let a burst of deliveries share one POST
