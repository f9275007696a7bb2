"""The receiver's PostgreSQL path on the event loop (tasks.events): its connections
(``IntakeConnections``: a bounded pool, a retry on a connection the server dropped), the
relay's passes on them (``relay_pending_on``) and ``Relay`` run as a task on the loop.
The same statements as the SQLAlchemy path; test_webhook.py runs the receiver on both."""

import asyncio
import socket
import uuid
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
from sqlalchemy import select, text

from catalog.db import get_engine, session_scope
from catalog.models import OutboxEvent
from tasks.events import INTAKE_APPLICATION, IntakeConnections, Relay, event_uuid, relay_pending_on

pytestmark = pytest.mark.parametrize("database_url", ["postgres"], indirect=True)

SHOP = "lightbox-demo.myshopify.com"


def run(coro_fn, *args):
    """``coro_fn(*args)`` on uvloop, the receiver's loop."""
    import uvloop

    return uvloop.run(coro_fn(*args))


async def record(intake: IntakeConnections, product_id: str) -> str:
    now = datetime.now(UTC)
    payload = {
        "shop": SHOP,
        "product_id": product_id,
        "topic": "products/update",
        "webhook_id": f"wh-{product_id}",
        "image_urls": [],
        "updated_at": now.isoformat(),
        "triggered_at": None,
    }
    return await intake.record(payload, product_updated_at=now, triggered_at=None, payload_sha256=product_id, now=now)


def outbox(url: str) -> dict[str, tuple[bool, int, str | None]]:
    with session_scope(url) as s:
        return {r.event_id: (r.sent_at is not None, r.attempts, r.last_error) for r in s.scalars(select(OutboxEvent))}


class Refused(Exception):
    """What the Prefect client raises for a 4xx: it has a response with a status code."""

    def __init__(self, status: int = 422):
        super().__init__(f"HTTP {status}")
        self.response = SimpleNamespace(status_code=status)


def test_no_more_connections_than_its_size_and_every_waiter_served(database_url):
    async def go():
        intake = IntakeConnections(database_url, size=2)
        sql = (
            "SELECT $1::int, (SELECT count(*) FROM pg_stat_activity"
            " WHERE application_name = $2 AND datname = current_database()), pg_sleep(0.05)"
        )
        rows = await asyncio.gather(*[intake.run(sql, [i, INTAKE_APPLICATION]) for i in range(8)])
        await intake.close()
        return rows

    rows = run(go)
    assert [r[0][0] for r in rows] == list(range(8))
    assert max(r[0][1] for r in rows) <= 2


def test_a_waiter_cancelled_while_waiting_costs_no_connection(database_url):
    async def go():
        intake = IntakeConnections(database_url, size=1)
        busy = asyncio.create_task(intake.run("SELECT pg_sleep(0.2)", []))
        await asyncio.sleep(0.05)
        waiting = asyncio.create_task(intake.run("SELECT 1", []))
        await asyncio.sleep(0.05)
        waiting.cancel()
        await busy
        with pytest.raises(asyncio.CancelledError):
            await waiting
        ((value,),) = await asyncio.wait_for(intake.run("SELECT 2", []), 5)
        await intake.close()
        return value

    assert run(go) == 2


def test_connections_the_server_dropped_cost_no_statement(database_url):
    """Idle connections cut by the server (a restart, an idle timeout) are replaced: the
    next statements run, none fails."""

    async def go():
        intake = IntakeConnections(database_url, size=3)
        await asyncio.gather(*[intake.run("SELECT pg_sleep(0.05)", []) for _ in range(3)])
        with get_engine(database_url).begin() as conn:
            cut = conn.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE application_name = :name AND datname = current_database()"
                ),
                {"name": INTAKE_APPLICATION},
            ).all()
        assert len(cut) == 3
        await asyncio.sleep(0.2)  # the loop notices some of them closing, maybe not all
        rows = await asyncio.gather(*[intake.run("SELECT $1::int", [i]) for i in range(5)])
        statuses = [await record(intake, f"p{i}") for i in range(3)]
        await intake.close()
        return [r[0][0] for r in rows], statuses

    values, statuses = run(go)
    assert values == list(range(5)) and statuses == ["accepted"] * 3


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_database_down_raises_each_time_and_frees_its_slot(database_url):
    url = f"postgresql+psycopg://lightbox:pw-not-shown@127.0.0.1:{free_port()}/catalog"

    async def go():
        intake = IntakeConnections(url, size=1)
        for _ in range(3):  # a slot leaked by a failed connect would hang the second one
            with pytest.raises(OSError) as caught:
                await asyncio.wait_for(intake.run("SELECT 1", []), 10)
            assert "pw-not-shown" not in str(caught.value)

    run(go)


def test_used_from_one_event_loop_after_another(database_url):
    intake = IntakeConnections(database_url, size=2)

    async def go(product_id):
        status = await record(intake, product_id)
        return status

    # asyncio's own loop: uvloop's close() hangs under -W error::ResourceWarning when a
    # connection is left open on it, which this test does on purpose
    assert asyncio.run(go("1")) == "accepted"
    assert asyncio.run(go("2")) == "accepted"  # the first loop's connection is gone with its loop
    assert asyncio.run(go("1")) == "duplicate"
    asyncio.run(intake.close())


def test_relay_on_the_loop_sends_and_marks(database_url):
    sent: list[list[dict]] = []

    async def send(events):
        sent.append(events)

    async def go():
        intake = IntakeConnections(database_url, size=2)
        for i in range(5):
            assert await record(intake, str(i)) == "accepted"
        count = await relay_pending_on(intake, send, batch=2)
        again = await relay_pending_on(intake, send, batch=2)
        await intake.close()
        return count, again

    assert run(go) == (5, 0)
    assert [len(batch) for batch in sent] == [2, 2, 1]  # oldest first, a batch at a time
    ids = [e["id"] for batch in sent for e in batch]
    assert ids == [str(event_uuid(SHOP, f"wh-{i}")) for i in range(5)]
    assert sent[0][0]["payload"]["product_id"] == "0" and sent[0][0]["event"] == "lightbox.shopify.product.updated"
    assert all(done and attempts == 1 for done, attempts, _ in outbox(database_url).values())


def test_relay_on_the_loop_keeps_what_failed_and_passes_a_refused_event_by(database_url):
    calls = []

    async def down(events):
        raise ConnectionError("api down")

    async def refuses_the_second(events):
        calls.append([e["payload"]["product_id"] for e in events])
        if any(e["payload"]["product_id"] == "1" for e in events):
            raise Refused(422)

    async def go():
        intake = IntakeConnections(database_url, size=2)
        for i in range(3):
            await record(intake, str(i))
        with pytest.raises(ConnectionError):
            await relay_pending_on(intake, down, retry_after=timedelta(0))
        failed = outbox(database_url)
        count = await relay_pending_on(intake, refuses_the_second, retry_after=timedelta(0))
        held = await relay_pending_on(intake, refuses_the_second, retry_after=timedelta(0))
        await intake.close()
        return failed, count, held

    failed, count, held = run(go)
    assert set(failed.values()) == {(False, 1, "ConnectionError")}
    assert (count, held) == (2, 0)  # the refused one is held back, not retried at once
    assert calls == [["0", "1", "2"], ["0"], ["1"], ["2"]]
    rows = outbox(database_url)
    assert rows[str(event_uuid(SHOP, "wh-1"))] == (False, 2, "Refused (HTTP 422)")
    assert rows[str(event_uuid(SHOP, "wh-0"))][:2] == rows[str(event_uuid(SHOP, "wh-2"))][:2] == (True, 2)


def test_relay_as_a_task_on_the_loop(database_url):
    """Started on the loop: a first pass at once, then a pass after each wake; a send that
    fails is retried after its back-off; stopping ends the task and the sender's thread."""
    received: list[dict] = []
    failures = [ConnectionError("api down")]

    def send(events):  # the blocking sender, run in the relay's own thread
        if failures:
            raise failures.pop()
        received.extend(events)

    async def go():
        intake = IntakeConnections(database_url, size=2)
        await record(intake, "before")  # pending before the relay starts
        relay = Relay(database_url, send, poll_s=30, linger_s=0.01, max_backoff_s=0.2)
        relay.start_on(intake)
        for i in range(3):
            await record(intake, str(i))
            relay.wake()
        deadline = asyncio.get_running_loop().time() + 10
        while relay.sent < 4 and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.05)
        await relay.stop_on()
        await intake.close()
        return relay

    relay = run(go)
    assert relay.sent == 4 and not failures
    assert sorted(e["payload"]["product_id"] for e in received) == ["0", "1", "2", "before"]
    assert all(done for done, *_ in outbox(database_url).values())


def test_an_intake_url_password_reaches_the_server(database_url, pg_server_url):
    """The URL's password and special characters survive the conversion to asyncpg's DSN."""
    name = f"intake_{uuid.uuid4().hex[:8]}"
    password = "p@ss:w/rd%"
    with get_engine(database_url).begin() as conn:
        conn.execute(text(f"CREATE ROLE {name} LOGIN PASSWORD '{password}'"))
    try:
        from urllib.parse import quote

        base = database_url.split("://", 1)[1].split("@", 1)[1]
        url = f"postgresql+psycopg://{name}:{quote(password, safe='')}@{base}"

        async def go():
            intake = IntakeConnections(url, size=1)
            rows = await intake.run("SELECT current_user", [])
            await intake.close()
            return rows[0][0]

        assert run(go) == name
    finally:
        with get_engine(database_url).begin() as conn:
            conn.execute(text(f"DROP ROLE {name}"))
