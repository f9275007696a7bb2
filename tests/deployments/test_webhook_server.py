"""The receiver as it is served: its command line (the database URL from the environment
only) and uvicorn with the receiver's own settings on a loopback socket (a thread): a real
round trip, and a read deadline no stalled request outlives."""

import socket
import threading
import time

import httpx
import pytest
import uvicorn

from deployments.webhook import create_app, main, uvicorn_config
from tests.deployments.test_webhook import NOW, SECRET, SHOP, headers, outbox, product, rows


@pytest.fixture
def app(database_url):
    return create_app(
        get_secret=lambda: SECRET, database_url=database_url, shops=[SHOP], max_body_bytes=8192, clock=lambda: NOW
    )


def test_main_takes_the_database_from_the_environment_only(monkeypatch, capsys):
    for name in ("LIGHTBOX_DATABASE_URL", "LIGHTBOX_SHOPIFY_WEBHOOK_SECRET", "LIGHTBOX_SHOPIFY_SHOPS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("LIGHTBOX_SHOPIFY_SHOP", raising=False)
    with pytest.raises(SystemExit):
        main(["--port", "0"])
    assert "LIGHTBOX_DATABASE_URL" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # the option is gone: a URL on argv is visible to every user
        main(["--database-url", "sqlite:///x.db"])
    assert "unrecognized arguments: --database-url" in capsys.readouterr().err
    monkeypatch.setenv("LIGHTBOX_DATABASE_URL", "mysql://lightbox:pw-s3cret@db/x")
    with pytest.raises(SystemExit):
        main([])
    err = capsys.readouterr().err
    assert "not a supported database URL" in err and "pw-s3cret" not in err
    monkeypatch.setenv("LIGHTBOX_DATABASE_URL", "sqlite:///x.db")
    monkeypatch.setenv("LIGHTBOX_SHOPIFY_SHOPS", "evil.example.com")
    with pytest.raises(SystemExit):
        main([])
    assert "not myshopify.com" in capsys.readouterr().err
    monkeypatch.setenv("LIGHTBOX_SHOPIFY_SHOPS", SHOP)
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    with pytest.raises(SystemExit):
        main([])
    assert "PREFECT_API_URL" in capsys.readouterr().err
    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:9/api")
    with pytest.raises(SystemExit):
        main([])
    assert "LIGHTBOX_SHOPIFY_WEBHOOK_SECRET" in capsys.readouterr().err


@pytest.fixture
def live_server(app):
    """The app served by uvicorn (the receiver's own settings, a 1 s read deadline) on a
    free loopback port, in a thread; its shutdown closes the app's connections."""
    # proto IPPROTO_TCP, or asyncio leaves Nagle on for accepted connections (+40 ms each)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn_config(app, log_level="warning", read_timeout_s=1.0))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "uvicorn did not start"
        time.sleep(0.02)
    yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    server.should_exit = True
    thread.join(timeout=10)
    sock.close()


def test_over_a_real_socket(live_server, database_url):
    body = product()
    with httpx.Client(base_url=live_server, timeout=10) as client:
        r = client.post("/webhooks/shopify", content=body, headers=headers(body))
        assert (r.status_code, r.json()) == (200, {"status": "accepted"})
        assert client.post("/webhooks/shopify", content=body, headers=headers(body)).json() == {"status": "duplicate"}
        r = client.post("/webhooks/shopify", content=(b"x" * 1000 for _ in range(20)), headers=headers(b""))
        assert r.status_code == 413
        assert client.get("/healthz").status_code == 200
    assert len(outbox(database_url)) == 1 and len(rows(database_url)) == 1


def _closed_within(sock: socket.socket, seconds: float) -> float:
    """Seconds until the server closed ``sock`` (recv gives b"" or a reset)."""
    started = time.monotonic()
    sock.settimeout(seconds)
    try:
        while sock.recv(4096):
            pass
    except ConnectionResetError:
        pass
    return time.monotonic() - started


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_stalled_request_cannot_hold_a_connection(live_server, database_url):
    """Headers or a body that stop arriving: the connection is closed at the read deadline
    (1 s here, 10 s by default), and the receiver still answers others."""
    host, port = live_server.removeprefix("http://").split(":")
    body = product()
    head = "".join(f"{k}: {v}\r\n" for k, v in headers(body).items())
    stalls = [
        b"",  # connects, sends nothing
        b"POST /webhooks/shopify HTTP/1.1\r\nHost: x\r\n",  # headers never finish
        f"POST /webhooks/shopify HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n{head}\r\n".encode()
        + body[:10],  # the body stops after 10 bytes
    ]
    socks = []
    for first_bytes in stalls:
        sock = socket.create_connection((host, int(port)))
        sock.sendall(first_bytes)
        socks.append(sock)
    with httpx.Client(base_url=live_server, timeout=5) as client:
        assert client.get("/healthz").status_code == 200
    for sock in socks:
        with sock:
            assert _closed_within(sock, 5.0) < 3.0


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_a_connection_the_database_dropped_costs_no_delivery(live_server, database_url):
    """The intake's pooled connections are not pinged before use (a round trip and a tenth
    of its CPU): when PostgreSQL has cut them (a restart, an idle timeout), the delivery
    runs once more on a fresh connection and is answered 200, not 503."""
    from sqlalchemy import text

    from catalog.db import get_engine
    from tasks.events import INTAKE_APPLICATION

    first, second = product(pid=1), product(pid=2)
    with httpx.Client(base_url=live_server, timeout=10) as client:
        assert client.post("/webhooks/shopify", content=first, headers=headers(first, "wh-a")).status_code == 200
        with get_engine(database_url).begin() as conn:  # the server ends the pooled connection
            cut = conn.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE application_name = :name AND datname = current_database()"
                ),
                {"name": INTAKE_APPLICATION},
            ).all()
        assert cut, "the intake's connection was not found in pg_stat_activity"
        r = client.post("/webhooks/shopify", content=second, headers=headers(second, "wh-b"))
        assert (r.status_code, r.json()) == (200, {"status": "accepted"})
    assert len(rows(database_url)) == 2 and len(outbox(database_url)) == 2
