"""``make up``'s own API calls (infra/stack._api) ride out a busy Prefect server.

A full ``make test`` once failed in tests/deployments/test_integration_stack.py because the
stack's Prefect server (SQLite) answered 503 "Service Unavailable" to the PATCH that pauses
the reconciliation schedule while the machine was loaded. That state cannot be produced on
demand from a real Prefect server, so these tests put a plain HTTP server on loopback in
its place, answering the status codes such a server answers; the client side is the real
code path (urllib over a socket), nothing patched.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from infra.stack import StackError, _api


class Busy:
    """A loopback server answering ``codes`` in turn (the last one from then on)."""

    def __init__(self, codes: list[int], retry_after: str | None = "0") -> None:
        self.codes, self.seen = list(codes), []
        busy = self

        class Handler(BaseHTTPRequestHandler):
            def do_PATCH(self):  # noqa: N802 (http.server's naming)
                length = int(self.headers.get("Content-Length") or 0)
                busy.seen.append((self.command, self.path, json.loads(self.rfile.read(length) or b"null")))
                code = busy.codes.pop(0) if len(busy.codes) > 1 else busy.codes[0]
                payload = json.dumps({"ok": code == 200, "n": len(busy.seen)}).encode()
                self.send_response(code)
                if code != 200 and retry_after is not None:
                    self.send_header("Retry-After", retry_after)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_PATCH  # noqa: N815

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> Busy:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_a_busy_server_is_asked_again_until_it_answers():
    with Busy([503, 503, 502, 200]) as server:
        answer = _api(f"{server.url}/deployments/d/schedules/s", method="PATCH", body={"active": False})
    assert answer == {"ok": True, "n": 4}
    assert [s[0] for s in server.seen] == ["PATCH"] * 4
    assert all(s[2] == {"active": False} for s in server.seen)  # the same body every time


def test_a_client_error_is_not_retried_and_names_the_call():
    with Busy([404]) as server:
        with pytest.raises(StackError, match=r"GET .*/deployments/name/x answered 404"):
            _api(f"{server.url}/deployments/name/x")
    assert len(server.seen) == 1


def test_a_server_busy_past_the_limit_fails_with_its_status():
    with Busy([503], retry_after=None) as server:  # no Retry-After: the growing pause
        started = time.monotonic()
        with pytest.raises(StackError, match="answered 503"):
            _api(f"{server.url}/deployments/name/x", retry_s=2.0)
        took = time.monotonic() - started
    assert 2 <= len(server.seen) <= 4  # 0.5 s, 1 s, then the next pause would pass the limit
    assert took < 3.0
