"""A small asyncpg connection pool for one event loop: statements that are their own
transaction, no ping per checkout, one retry on a connection the server dropped.

The webhook receiver's intake runs on it (tasks.events.IntakeConnections, docs/ARCHITECTURE.md#intake):
asyncpg, not psycopg's ``AsyncConnection``: a fifth of the CPU and of the wall time per
round trip (20 against 90 µs of CPU, 57 against 324 µs of wall time for a one-row SELECT
on the 2-core test machine).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Sequence
from typing import Any

import asyncpg
from sqlalchemy.engine import make_url

log = logging.getLogger("catalog.pg_pool")


class StatementPool:
    """At most ``size`` asyncpg connections, used on one event loop, a request beyond
    waiting for one (first come first served), each statement prepared once per
    connection (asyncpg's statement cache), every statement its own transaction. No ping
    per checkout: a statement that fails because the server dropped its pooled connection
    runs once more on a new one (``run``).

    Connections are opened on first use and kept; ``close`` closes the idle ones (run it
    on the loop that used them). Use it from one event loop at a time: on another loop
    (tests run a loop per request) the old connections are dropped."""

    def __init__(self, database_url: str, size: int = 4, application_name: str = "lightbox") -> None:
        url = make_url(database_url)
        if url.get_backend_name() != "postgresql":
            raise ValueError("StatementPool is for PostgreSQL databases")
        query = dict(url.query)
        timeout = query.pop("connect_timeout", None)  # asyncpg's is an argument; the rest is libpq's DSN
        self._dsn = url.set(drivername="postgresql", query=query).render_as_string(hide_password=False)
        self._connect_timeout = float(timeout) if timeout else 60.0
        self.size, self.application_name = size, application_name
        self._idle: list[asyncpg.Connection] = []
        self._open = 0
        self._waiters: deque[asyncio.Future] = deque()
        self._loop: asyncio.AbstractEventLoop | None = None

    async def run(self, sql: str, args: Sequence[Any]) -> list[Any]:
        """The rows of one statement (its own transaction). When the pooled connection it
        ran on turns out closed by the server (a restart, an idle connection cut), once
        more on a new connection: the statement must be safe to repeat (the intake's is:
        ON CONFLICT DO NOTHING, and one that never arrived did nothing)."""
        try:
            return await self._run(sql, args, fresh=False)
        except _DroppedConnection as dropped:
            log.info(
                "%s: the database dropped a pooled connection (%s); once more", self.application_name, dropped.cause
            )
            self._drop_idle()  # the others are likely gone too
        return await self._run(sql, args, fresh=True)

    async def close(self) -> None:
        idle, self._idle = self._idle, []
        self._open -= len(idle)
        for conn in idle:
            try:
                await asyncio.wait_for(conn.close(), 5)
            except Exception:  # gone already, or not answering: just drop it
                conn.terminate()

    def __del__(self) -> None:  # dropped without ``close`` (tests): close the sockets now
        self._drop_idle()

    async def _run(self, sql: str, args: Sequence[Any], *, fresh: bool) -> list[Any]:
        conn, pooled = await self._acquire(fresh)
        try:
            rows = await conn.fetch(sql, *args)
        except Exception as exc:
            if not conn.is_closed():
                self._release(conn)  # a statement's error ends its own transaction
                raise
            self._discard(conn)
            if pooled:
                raise _DroppedConnection(type(exc).__name__) from exc
            raise
        except BaseException:  # cancelled mid-statement: the connection's state is unknown
            self._discard(conn)
            raise
        self._release(conn)
        return rows

    async def _acquire(self, fresh: bool) -> tuple[asyncpg.Connection, bool]:
        """(a connection, whether it was pooled): an idle one unless ``fresh``, else a new
        one while fewer than ``size`` are open, else the next one released."""
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            self._drop_idle()
            self._loop, self._waiters, self._open = loop, deque(), 0
        while True:
            while self._idle and not fresh:
                conn = self._idle.pop()
                if not conn.is_closed():
                    return conn, True
                self._discard(conn)  # the server closed it while it was idle
            if self._open < self.size:
                self._open += 1
                try:
                    conn = await asyncpg.connect(
                        self._dsn,
                        timeout=self._connect_timeout,
                        server_settings={"application_name": self.application_name},
                    )
                except BaseException:
                    self._open -= 1
                    self._hand_over(None)
                    raise
                return conn, False
            if fresh and self._idle:  # make room for the new connection
                self._discard(self._idle.pop())
                continue
            waiter = loop.create_future()
            self._waiters.append(waiter)
            try:
                conn = await waiter
            except BaseException:  # cancelled while waiting: pass on what it was handed
                if waiter.done() and not waiter.cancelled():
                    given = waiter.result()
                    if given is not None:
                        self._release(given)
                    else:
                        self._hand_over(None)
                elif waiter in self._waiters:
                    self._waiters.remove(waiter)
                raise
            if conn is None:
                continue  # a slot was freed
            if not fresh and not conn.is_closed():
                return conn, True
            self._discard(conn)

    def _release(self, conn: asyncpg.Connection) -> None:
        if not self._hand_over(conn):
            self._idle.append(conn)

    def _discard(self, conn: asyncpg.Connection) -> None:
        self._open -= 1
        _terminate(conn)
        self._hand_over(None)

    def _drop_idle(self) -> None:
        idle, self._idle = getattr(self, "_idle", []), []
        self._open -= len(idle)
        for conn in idle:
            _terminate(conn)

    def _hand_over(self, conn: asyncpg.Connection | None) -> bool:
        """Give ``conn`` (None: a free slot) to the longest waiter, if any."""
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(conn)
                return True
        return False


def _terminate(conn: asyncpg.Connection) -> None:
    try:
        conn.terminate()
    except RuntimeError:  # its event loop is closed already (tests): the socket goes with it
        pass


class _DroppedConnection(Exception):
    def __init__(self, cause: str) -> None:
        super().__init__(cause)
        self.cause = cause
