"""The webhook receiver's HTTP server settings: uvicorn on httptools and uvloop, with a
read deadline per request.

httptools (llhttp, in C) and uvloop are what ``uvicorn[standard]`` installs; on the
receiver's hot path they spend about a third of the CPU that h11 and asyncio's own loop
spent on parsing, writing and scheduling (bench/webhook_load.py prints the figure).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

log = logging.getLogger("deployments.webhook")


class ReadTimeoutProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a read deadline: a connection's request (headers
    and body) must arrive within ``read_timeout_s`` of its first byte, or of the
    connection, else the connection is closed. uvicorn itself has no such limit (its
    keep-alive timeout only covers the idle time after a response)."""

    read_timeout_s: float = 10.0
    _deadline: asyncio.TimerHandle | None = None
    _reading = False  # between a request's first byte and its last

    def connection_made(self, transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def data_received(self, data: bytes) -> None:
        if self._deadline is None and not self._reading:
            self._arm()  # the first bytes of the next request on a kept-alive connection
        super().data_received(data)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._reading = True

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._reading = False
        self._disarm()  # the whole request is in

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(self.read_timeout_s, self._timed_out)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _timed_out(self) -> None:
        self._deadline = None
        if not self.transport.is_closing():
            log.info("closing a connection that sent no complete request in %.0f s", self.read_timeout_s)
            self.transport.close()


def read_timeout_protocol(read_timeout_s: float) -> type[ReadTimeoutProtocol]:
    return type("ReadTimeoutProtocol", (ReadTimeoutProtocol,), {"read_timeout_s": read_timeout_s})


def uvicorn_config(app: Any, **kwargs: Any) -> uvicorn.Config:
    """The receiver's uvicorn settings: httptools with a read deadline, uvloop, a short
    keep-alive, no server header, no access log (one line per delivery is logged already)."""
    read_timeout_s = kwargs.pop("read_timeout_s", 10.0)
    kwargs.setdefault("loop", "uvloop")
    kwargs.setdefault("access_log", False)  # the receiver logs each delivery itself
    kwargs.setdefault("proxy_headers", False)  # the client's address is not used
    return uvicorn.Config(
        app,
        http=read_timeout_protocol(read_timeout_s),
        timeout_keep_alive=5,
        server_header=False,
        **kwargs,
    )
