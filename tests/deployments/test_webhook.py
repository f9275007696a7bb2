"""The Shopify receiver on SQLite and PostgreSQL: in-process (httpx.ASGITransport) and on a
real loopback socket (uvicorn in a thread)."""

import asyncio
import base64
import hashlib
import hmac
import json
import socket
import threading
import time
from datetime import UTC, datetime

import httpx
import pytest
import uvicorn
from sqlalchemy import select

from catalog.db import session_scope
from catalog.models import WebhookDelivery
from catalog.webhooks import parse_product
from deployments.webhook import create_app, main
from tasks.events import EVENT_NAME, emit_product_event, event_uuid

SECRET = "shpss_0123456789abcdef"
SHOP = "lightbox-demo.myshopify.com"
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


class Emitter:
    """Records event payloads in place of Prefect; can be told to fail."""

    def __init__(self):
        self.events, self.fail = [], False

    def __call__(self, payload):
        if self.fail:
            raise RuntimeError("events API down")
        self.events.append(payload)
        return f"evt-{len(self.events)}"


def product(pid=42, updated_at="2026-03-01T12:00:00+01:00", **extra):
    body = {
        "id": pid,
        "title": "Mug",
        "updated_at": updated_at,
        "images": [{"src": "https://cdn.shopify.com/s/files/mug.png"}],
        **extra,
    }
    return json.dumps(body).encode()


def sign(body, secret=SECRET):
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def headers(body, webhook_id="wh-1", topic="products/update", **overrides):
    h = {
        "X-Shopify-Hmac-Sha256": sign(body),
        "X-Shopify-Topic": topic,
        "X-Shopify-Shop-Domain": SHOP,
        "X-Shopify-Webhook-Id": webhook_id,
        "X-Shopify-Triggered-At": "2026-03-01T11:00:01.123456789Z",
        "Content-Type": "application/json",
    }
    h.update(overrides)
    return {k: v for k, v in h.items() if v is not None}


@pytest.fixture
def emitter():
    return Emitter()


@pytest.fixture
def app(database_url, emitter):
    return create_app(
        get_secret=lambda: SECRET, database_url=database_url, emit_event=emitter, max_body_bytes=4096, clock=lambda: NOW
    )


def call(app, method, path, *, raise_app_exceptions=True, **kwargs):
    async def go():
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=raise_app_exceptions)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return await client.request(method, path, **kwargs)

    return asyncio.run(go())


def post(app, body, hdrs, **kwargs):
    return call(app, "POST", "/webhooks/shopify", content=body, headers=hdrs, **kwargs)


def rows(url):
    with session_scope(url) as s:
        return [
            (r.webhook_id, r.status, r.event_id, r.payload_sha256, r.product_id)
            for r in s.scalars(select(WebhookDelivery).order_by(WebhookDelivery.id))
        ]


def test_signed_update_is_accepted_recorded_and_emitted(app, emitter, database_url):
    body = product()
    r = post(app, body, headers(body))
    assert (r.status_code, r.json()) == (200, {"status": "accepted"})
    assert emitter.events == [
        {
            "shop": SHOP,
            "product_id": "42",
            "topic": "products/update",
            "webhook_id": "wh-1",
            "image_urls": ["https://cdn.shopify.com/s/files/mug.png"],
            "updated_at": "2026-03-01T11:00:00+00:00",
            "triggered_at": "2026-03-01T11:00:01.123456+00:00",
        }
    ]
    assert rows(database_url) == [("wh-1", "accepted", "evt-1", hashlib.sha256(body).hexdigest(), "42")]


def test_forged_signature_is_401_and_nothing_happens(app, emitter, database_url):
    body = product()
    for hdrs in (
        headers(body, **{"X-Shopify-Hmac-Sha256": sign(body, "not-the-secret")}),
        headers(body, **{"X-Shopify-Hmac-Sha256": sign(product(pid=43))}),  # another body's
        headers(body, **{"X-Shopify-Hmac-Sha256": "garbage"}),
        headers(body, **{"X-Shopify-Hmac-Sha256": None}),
    ):
        r = post(app, body, hdrs)
        assert r.status_code == 401, hdrs
        assert SECRET not in r.text
    assert emitter.events == [] and rows(database_url) == []


def test_replayed_delivery_is_a_duplicate(app, emitter, database_url):
    body = product()
    assert post(app, body, headers(body)).json() == {"status": "accepted"}
    r = post(app, body, headers(body))
    assert (r.status_code, r.json()) == (200, {"status": "duplicate"})
    assert len(emitter.events) == 1 and len(rows(database_url)) == 1


def test_concurrent_replays_emit_once(app, emitter, database_url):
    body = product()

    async def burst():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return await asyncio.gather(
                *[client.post("/webhooks/shopify", content=body, headers=headers(body)) for _ in range(8)]
            )

    statuses = sorted(r.json()["status"] for r in asyncio.run(burst()))
    assert statuses == ["accepted"] + ["duplicate"] * 7
    assert len(emitter.events) == 1 and len(rows(database_url)) == 1


def test_oversized_body_is_413(app, emitter, database_url):
    big = product(title="x" * 5000)
    r = post(app, big, headers(big))  # declared Content-Length over the cap
    assert r.status_code == 413

    async def chunks():  # no Content-Length: chunked, runs past the cap while streaming
        for _ in range(10):
            yield b"x" * 1000

    r = post(app, chunks(), headers(b""))
    assert r.status_code == 413 and "content-length" not in r.request.headers
    assert emitter.events == [] and rows(database_url) == []


def test_small_chunked_body_is_read_whole(app, emitter):
    body = product()

    async def chunks():
        for i in range(0, len(body), 7):
            yield body[i : i + 7]

    assert post(app, chunks(), headers(body)).json() == {"status": "accepted"}


@pytest.mark.parametrize(
    "body,reason",
    [
        (b"{not json", "not JSON"),
        (b"[1, 2]", "not a JSON object"),
        (b'{"title": "no id"}', "product id"),
        (b'{"id": true}', "product id"),
        (b'{"id": 1, "updated_at": "yesterday"}', "ISO 8601"),
        (b'{"id": 1, "updated_at": "2026-03-01T12:00:00"}', "no UTC offset"),
        (b"\xff\xfe\x00", "not JSON"),
    ],
)
def test_malformed_payload_is_400(app, emitter, database_url, body, reason):
    r = post(app, body, headers(body))
    assert r.status_code == 400 and reason in r.json()["reason"]
    assert emitter.events == [] and rows(database_url) == []


@pytest.mark.parametrize("missing", ["X-Shopify-Topic", "X-Shopify-Shop-Domain", "X-Shopify-Webhook-Id"])
def test_missing_required_header_is_400(app, emitter, missing):
    body = product()
    r = post(app, body, headers(body, **{missing: None}))
    assert r.status_code == 400 and missing.lower() in r.json()["reason"]


def test_bad_shop_domain_and_triggered_at_are_400(app):
    body = product()
    assert post(app, body, headers(body, **{"X-Shopify-Shop-Domain": "evil.example.com"})).status_code == 400
    assert post(app, body, headers(body, **{"X-Shopify-Triggered-At": "soon"})).status_code == 400


def test_stale_delivery_is_recorded_not_emitted(app, emitter, database_url):
    new, old = product(updated_at="2026-03-01T12:00:00Z"), product(updated_at="2026-03-01T11:59:59Z")
    assert post(app, new, headers(new, "wh-new")).json() == {"status": "accepted"}
    r = post(app, old, headers(old, "wh-old"))
    assert (r.status_code, r.json()) == (200, {"status": "stale"})
    assert [e["webhook_id"] for e in emitter.events] == ["wh-new"]
    assert [(w, s) for w, s, *_ in rows(database_url)] == [("wh-new", "accepted"), ("wh-old", "stale")]


def test_stale_by_triggered_at_when_payload_has_no_updated_at(app, emitter):
    body = product(updated_at=None)
    later = headers(body, "a", **{"X-Shopify-Triggered-At": "2026-03-01T12:00:00Z"})
    earlier = headers(body, "b", **{"X-Shopify-Triggered-At": "2026-03-01T11:00:00Z"})
    assert post(app, body, later).json()["status"] == "accepted"
    assert post(app, body, earlier).json()["status"] == "stale"


def test_unrelated_topic_is_ignored(app, emitter, database_url):
    body = b'{"id": 7}'
    r = post(app, body, headers(body, topic="orders/create"))
    assert (r.status_code, r.json()) == (200, {"status": "ignored"})
    assert emitter.events == [] and rows(database_url) == []


def test_failed_emit_records_nothing_so_the_retry_succeeds(app, emitter, database_url):
    body = product()
    emitter.fail = True
    assert post(app, body, headers(body), raise_app_exceptions=False).status_code == 500
    assert rows(database_url) == []
    emitter.fail = False
    assert post(app, body, headers(body)).json() == {"status": "accepted"}  # Shopify's retry
    assert len(emitter.events) == 1


def test_healthz(app, tmp_path, emitter):
    r = call(app, "GET", "/healthz")
    assert (r.status_code, r.json()) == (200, {"status": "ok"})
    unmigrated = create_app(
        get_secret=lambda: SECRET, database_url=f"sqlite:///{tmp_path / 'empty.db'}", emit_event=emitter
    )
    r = call(unmigrated, "GET", "/healthz")
    assert (r.status_code, r.json()["status"]) == (503, "unavailable")


def test_image_urls_from_images_image_and_media():
    body = json.dumps(
        {
            "id": 1,
            "images": [
                {"src": "https://a/1.png"},
                {"src": "javascript:alert(1)"},
                {"src": "https://a/2.png"},
                {"src": "ftp://a/3.png"},
            ],
            "image": {"src": "https://a/1.png"},
            "media": [
                {"media_content_type": "IMAGE", "preview_image": {"src": "http://b/4.jpg"}},
                {"media_content_type": "VIDEO", "preview_image": {"src": "https://b/v.jpg"}},
                {"media_content_type": "IMAGE", "preview_image": {"src": "data:image/png;base64,AA"}},
            ],
        }
    )
    parsed = parse_product(body.encode())
    assert parsed.image_urls == ("https://a/1.png", "https://a/2.png", "http://b/4.jpg")
    assert parsed.refused_urls == 3


def test_default_emitter_sends_a_prefect_event(monkeypatch):
    """Prefect's asserting events client in place of the server (prefect.testing.fixtures'
    ``asserting_events_worker``); an API URL nobody listens on keeps the worker's
    orchestration client from starting an ephemeral server (it is never called)."""
    from prefect.events.clients import AssertingEventsClient
    from prefect.events.worker import EventsWorker
    from prefect.settings import PREFECT_API_URL, temporary_settings

    payload = {
        "shop": SHOP,
        "product_id": "42",
        "topic": "products/update",
        "webhook_id": "wh-9",
        "image_urls": ["https://a/1.png"],
        "updated_at": None,
        "triggered_at": None,
    }
    with temporary_settings({PREFECT_API_URL: "http://127.0.0.1:9/api"}):
        worker = EventsWorker.instance(AssertingEventsClient)
        monkeypatch.setattr(EventsWorker, "instance", lambda *_: worker)
        try:
            event_id = emit_product_event(payload)
            worker.wait_until_empty()
            (event,) = worker._client.events
        finally:
            worker.drain()
    assert event_id == str(event_uuid(SHOP, "wh-9")) == str(event.id)
    assert event.event == EVENT_NAME
    assert event.resource.id == f"shopify.product.{SHOP}.42"
    assert event.resource["shopify.shop"] == SHOP and event.payload == payload


def test_default_emitter_refuses_to_drop_an_event(monkeypatch):
    """prefect's emit_event returns None when events are off or sending failed."""
    monkeypatch.setattr("tasks.events.prefect_emit_event", lambda **kwargs: None)
    with pytest.raises(RuntimeError, match="did not emit"):
        emit_product_event({"shop": SHOP, "product_id": "1", "webhook_id": "w"})


def test_main_needs_a_database_and_a_secret(monkeypatch, capsys):
    monkeypatch.delenv("LIGHTBOX_DATABASE_URL", raising=False)
    monkeypatch.delenv("LIGHTBOX_SHOPIFY_WEBHOOK_SECRET", raising=False)
    with pytest.raises(SystemExit):
        main(["--port", "0"])
    assert "LIGHTBOX_DATABASE_URL" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["--database-url", "sqlite:///x.db"])
    assert "LIGHTBOX_SHOPIFY_WEBHOOK_SECRET" in capsys.readouterr().err


@pytest.fixture
def live_server(app):
    """The app served by uvicorn on a free loopback port, in a thread."""
    # proto IPPROTO_TCP, or asyncio leaves Nagle on for accepted connections (+40 ms each)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
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


def test_over_a_real_socket(live_server, emitter, database_url):
    body = product()
    with httpx.Client(base_url=live_server, timeout=10) as client:
        r = client.post("/webhooks/shopify", content=body, headers=headers(body))
        assert (r.status_code, r.json()) == (200, {"status": "accepted"})
        assert client.post("/webhooks/shopify", content=body, headers=headers(body)).json() == {"status": "duplicate"}
        r = client.post("/webhooks/shopify", content=(b"x" * 1000 for _ in range(20)), headers=headers(b""))
        assert r.status_code == 413
        assert client.get("/healthz").status_code == 200
    assert len(emitter.events) == 1 and len(rows(database_url)) == 1
