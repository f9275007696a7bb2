"""The Shopify receiver on SQLite and PostgreSQL, in-process (httpx.ASGITransport). Without
a relay, an accepted delivery's event waits in the outbox; test_webhook_outbox.py sends
them to a real Prefect server, test_webhook_server.py serves the app on a socket."""

import asyncio
import base64
import hashlib
import hmac
import json
import logging
import re
import socket
from datetime import UTC, datetime, timedelta, timezone

import httpx
import pytest
from sqlalchemy import select

from catalog.db import session_scope
from catalog.models import OutboxEvent, WebhookDelivery
from catalog.webhooks import parse_product
from deployments.webhook import create_app
from tasks.events import EVENT_NAME, event_uuid, product_event

SECRET = "shpss_0123456789abcdef"
SHOP = "lightbox-demo.myshopify.com"
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


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
def app(database_url):
    return create_app(
        get_secret=lambda: SECRET, database_url=database_url, shops=[SHOP], max_body_bytes=8192, clock=lambda: NOW
    )


async def release(app):
    """Close the app's PostgreSQL connections with the event loop they were opened on (each
    call here runs a loop of its own; a server closes them at its shutdown)."""
    if getattr(app, "intake", None) is not None:
        await app.intake.close()


def call(app, method, path, *, raise_app_exceptions=True, **kwargs):
    async def go():
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=raise_app_exceptions)
        try:
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
                return await client.request(method, path, **kwargs)
        finally:
            await release(app)

    return asyncio.run(go())


def post(app, body, hdrs, **kwargs):
    return call(app, "POST", "/webhooks/shopify", content=body, headers=hdrs, **kwargs)


def rows(url):
    with session_scope(url) as s:
        return [
            (r.webhook_id, r.status, r.event_id, r.payload_sha256, r.product_id)
            for r in s.scalars(select(WebhookDelivery).order_by(WebhookDelivery.id))
        ]


def outbox(url):
    """The pending events' payloads, in order."""
    with session_scope(url) as s:
        return [r.event["payload"] for r in s.scalars(select(OutboxEvent).order_by(OutboxEvent.id))]


def test_signed_update_is_accepted_recorded_and_queued(app, database_url):
    body = product()
    r = post(app, body, headers(body))
    assert (r.status_code, r.json()) == (200, {"status": "accepted"})
    payload = {
        "shop": SHOP,
        "product_id": "42",
        "topic": "products/update",
        "webhook_id": "wh-1",
        "image_urls": ["https://cdn.shopify.com/s/files/mug.png"],
        "updated_at": "2026-03-01T11:00:00+00:00",
        "triggered_at": "2026-03-01T11:00:01.123456+00:00",
    }
    assert outbox(database_url) == [payload]
    event_id = str(event_uuid(SHOP, "wh-1"))
    assert rows(database_url) == [("wh-1", "accepted", event_id, hashlib.sha256(body).hexdigest(), "42")]
    with session_scope(database_url) as s:
        (row,) = s.scalars(select(OutboxEvent))
        assert row.event == product_event(payload, NOW) and row.sent_at is None


def test_forged_signature_is_401_and_nothing_happens(app, database_url):
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
    assert outbox(database_url) == [] and rows(database_url) == []


def test_replayed_delivery_is_a_duplicate(app, database_url):
    body = product()
    assert post(app, body, headers(body)).json() == {"status": "accepted"}
    r = post(app, body, headers(body))
    assert (r.status_code, r.json()) == (200, {"status": "duplicate"})
    assert len(outbox(database_url)) == 1 and len(rows(database_url)) == 1


def test_captured_body_under_a_new_webhook_id_is_a_duplicate(app, database_url):
    """Headers are not signed: a captured body re-posted with a fresh webhook id, or with
    the same X-Shopify-Event-Id, is not rendered again."""
    body = product()
    assert post(app, body, headers(body, "wh-1", **{"X-Shopify-Event-Id": "ev-1"})).json()["status"] == "accepted"
    assert post(app, body, headers(body, "wh-forged-new-id")).json() == {"status": "duplicate"}
    edited = product(title="Mug, new photo")  # same updated_at, other content, same Shopify event
    assert post(app, edited, headers(edited, "wh-2", **{"X-Shopify-Event-Id": "ev-1"})).json()["status"] == "duplicate"
    assert post(app, edited, headers(edited, "wh-3")).json() == {"status": "accepted"}
    assert [p["webhook_id"] for p in outbox(database_url)] == ["wh-1", "wh-3"]


def test_concurrent_replays_queue_once(app, database_url):
    body = product()

    async def burst():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            answers = await asyncio.gather(
                *[client.post("/webhooks/shopify", content=body, headers=headers(body)) for _ in range(8)]
            )
        await release(app)
        return answers

    statuses = sorted(r.json()["status"] for r in asyncio.run(burst()))
    assert statuses == ["accepted"] + ["duplicate"] * 7
    assert len(outbox(database_url)) == 1 and len(rows(database_url)) == 1


def test_oversized_body_is_413(app, database_url):
    big = product(title="x" * 10_000)
    r = post(app, big, headers(big))  # declared Content-Length over the cap
    assert r.status_code == 413

    async def chunks():  # no Content-Length: chunked, runs past the cap while streaming
        for _ in range(20):
            yield b"x" * 1000

    r = post(app, chunks(), headers(b""))
    assert r.status_code == 413 and "content-length" not in r.request.headers
    assert outbox(database_url) == [] and rows(database_url) == []


def test_small_chunked_body_is_read_whole(app):
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
        (b'{"id": 1}', "updated_at missing"),
        (b'{"id": 1, "updated_at": "2026-03-01T12:05:01Z"}', "in the future"),  # NOW + 5 min skew
        (b'{"id": 1, "updated_at": "2026-03-01T12:00:00Z", "x": ' + b"[" * 1900 + b"]" * 1900 + b"}", "nested"),
        (b'{"id": ' + b"9" * 5000 + b', "updated_at": "2026-03-01T12:00:00Z"}', "too large"),
        (b'{"id": ' + b"9" * 40 + b', "updated_at": "2026-03-01T12:00:00Z"}', "out of range"),
        (b'{"id": 1, "updated_at": "2026-03-01T12:00:00Z", "v": ' + b"1" * 5000 + b"}", "too large"),
    ],
)
def test_malformed_payload_is_400(app, database_url, body, reason):
    r = post(app, body, headers(body))
    assert r.status_code == 400 and reason in r.json()["reason"]
    assert outbox(database_url) == [] and rows(database_url) == []


@pytest.mark.parametrize("missing", ["X-Shopify-Topic", "X-Shopify-Shop-Domain", "X-Shopify-Webhook-Id"])
def test_missing_required_header_is_400(app, missing):
    body = product()
    r = post(app, body, headers(body, **{missing: None}))
    assert r.status_code == 400 and missing.lower() in r.json()["reason"]


def test_bad_shop_domain_and_triggered_at_are_400(app):
    body = product()
    assert post(app, body, headers(body, **{"X-Shopify-Shop-Domain": "evil.example.com"})).status_code == 400
    assert post(app, body, headers(body, **{"X-Shopify-Triggered-At": "soon"})).status_code == 400


def test_a_shop_not_served_here_is_refused_and_not_recorded(app, database_url):
    """The app's secret signs every shop that installed it; this receiver takes its own."""
    body = product()
    r = post(app, body, headers(body, **{"X-Shopify-Shop-Domain": "other-store.myshopify.com"}))
    assert (r.status_code, r.json()["status"]) == (403, "rejected")
    assert rows(database_url) == [] and outbox(database_url) == []
    with pytest.raises(ValueError, match="not myshopify.com"):
        create_app(get_secret=lambda: SECRET, database_url=database_url, shops=["evil.example.com"])
    closed = create_app(get_secret=lambda: SECRET, database_url=database_url, shops=[])  # none configured
    assert post(closed, body, headers(body)).status_code == 403 and rows(database_url) == []


def test_stale_delivery_is_recorded_not_queued(app, database_url):
    new, old = product(updated_at="2026-03-01T12:00:00Z"), product(updated_at="2026-03-01T11:59:59Z")
    assert post(app, new, headers(new, "wh-new")).json() == {"status": "accepted"}
    r = post(app, old, headers(old, "wh-old"))
    assert (r.status_code, r.json()) == (200, {"status": "stale"})
    assert [e["webhook_id"] for e in outbox(database_url)] == ["wh-new"]
    assert [(w, s) for w, s, *_ in rows(database_url)] == [("wh-new", "accepted"), ("wh-old", "stale")]


def test_an_unsigned_header_cannot_make_a_delivery_stale_or_new(app, database_url):
    """X-Shopify-Triggered-At is not covered by the signature: it never decides."""
    new, old = product(updated_at="2026-03-01T12:00:00Z"), product(updated_at="2026-03-01T11:00:00Z")
    assert post(app, new, headers(new, "a", **{"X-Shopify-Triggered-At": "2026-03-01T10:00:00Z"})).json() == {
        "status": "accepted"
    }
    forged = headers(old, "b", **{"X-Shopify-Triggered-At": "2026-03-01T12:30:00Z"})
    assert post(app, old, forged).json() == {"status": "stale"}


def test_unrelated_topic_is_ignored(app, database_url):
    body = b'{"id": 7}'
    r = post(app, body, headers(body, topic="orders/create"))
    assert (r.status_code, r.json()) == (200, {"status": "ignored"})
    assert outbox(database_url) == [] and rows(database_url) == []


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_database_down_is_503_and_the_password_is_never_shown(caplog):
    """A real PostgreSQL URL whose port nobody listens on: the delivery is not acknowledged
    (Shopify retries), the answer and the log name no password, no exception class."""
    url = f"postgresql+psycopg://lightbox:pw-s3cret-do-not-log@127.0.0.1:{closed_port()}/catalog"
    app = create_app(get_secret=lambda: SECRET, database_url=url, shops=[SHOP], clock=lambda: NOW)
    body = product()
    with caplog.at_level(logging.DEBUG):
        r = post(app, body, headers(body))
        health = call(app, "GET", "/healthz")
    assert r.status_code == 503 and r.json() == {"status": "unavailable"}
    assert 0 < int(r.headers["Retry-After"]) <= 60
    assert health.status_code == 503 and health.json() == {"status": "unavailable"}
    text = caplog.text + r.text + health.text
    assert "pw-s3cret-do-not-log" not in text
    assert re.search(r"not recorded \(\w+Error\)", caplog.text)  # the class, never the text
    assert re.search(r"healthz: catalog database unavailable \(\w+Error\)", caplog.text)
    assert "Error" not in r.text + health.text


def test_healthz(app, tmp_path, database_url):
    r = call(app, "GET", "/healthz")
    assert (r.status_code, r.json()) == (200, {"status": "ok", "unsent_events": 0})
    body = product()
    post(app, body, headers(body))
    assert call(app, "GET", "/healthz").json() == {"status": "ok", "unsent_events": 1}
    unmigrated = create_app(get_secret=lambda: SECRET, database_url=f"sqlite:///{tmp_path / 'empty.db'}", shops=[SHOP])
    r = call(unmigrated, "GET", "/healthz")
    assert (r.status_code, r.json()) == (503, {"status": "unavailable"})  # no exception class named


def test_image_urls_from_images_image_and_media():
    body = json.dumps(
        {
            "id": 1,
            "images": [
                {"src": "https://a/1.png"},
                {"src": "javascript:alert(1)"},
                {"src": "https://a/2.png"},
                {"src": "ftp://a/3.png"},
                {"src": "http://[::1"},  # urlsplit raises on this one
                {"src": "https://a:99999999/x.png"},  # and .port on this one
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
    assert parsed.image_urls == ("https://a/1.png", "https://a/2.png", "https://a:99999999/x.png", "http://b/4.jpg")
    assert parsed.refused_urls == 4


def test_malformed_image_url_in_a_signed_body_is_not_a_500(app, database_url):
    body = product(images=[{"src": "http://[::1"}, {"src": "https://cdn.example/ok.png"}])
    r = post(app, body, headers(body), raise_app_exceptions=False)
    assert (r.status_code, r.json()) == (200, {"status": "accepted"})
    assert outbox(database_url)[0]["image_urls"] == ["https://cdn.example/ok.png"]


def test_the_event_is_what_the_trigger_matches():
    """prefect.yaml's trigger: event name, ``prefect.resource.id`` shopify.product.*, and
    ``event.payload`` fields (tests/deployments/test_stack_prefect_yaml.py checks the
    names); the id is the delivery's, so every resend is one event."""
    payload = {"shop": SHOP, "product_id": "42", "webhook_id": "wh-9", "topic": "products/update"}
    event = product_event(payload, NOW)
    assert event["id"] == str(event_uuid(SHOP, "wh-9")) == product_event(payload, NOW)["id"]
    assert event["event"] == EVENT_NAME and event["payload"] == payload
    assert event["resource"]["prefect.resource.id"] == f"shopify.product.{SHOP}.42"
    assert event["occurred"].startswith("2026-03-01T12:00:00")


@pytest.mark.parametrize(
    "occurred",
    [
        NOW,
        datetime(2026, 3, 1, 12, 0, 0, 5, tzinfo=UTC),
        datetime(2026, 3, 1, 12, 0, 0, 123000, tzinfo=timezone(timedelta(hours=1))),
        datetime(2026, 3, 1, 12, 0, 0, tzinfo=timezone(timedelta(hours=-5, minutes=-30))),
    ],
)
def test_the_event_is_what_prefects_event_model_dumps(occurred):
    """product_event is built by hand (the model cost a tenth of the receiver's CPU): it
    must stay what Prefect's own Event model makes of the same fields."""
    from prefect.events import Event

    from tasks.events import product_event_fields

    payload = {
        "shop": SHOP,
        "product_id": "42",
        "topic": "products/update",
        "webhook_id": "wh-ü-1",
        "image_urls": ["https://cdn.shopify.com/s/files/mug.png"],
        "updated_at": "2026-03-01T11:00:00+00:00",
        "triggered_at": None,
    }
    expected = Event(occurred=occurred, **product_event_fields(payload)).model_dump(mode="json")
    assert product_event(payload, occurred) == expected
    assert json.loads(json.dumps(product_event(payload, occurred))) == expected
    with pytest.raises(ValueError, match="timezone-aware"):
        product_event(payload, occurred.replace(tzinfo=None))
