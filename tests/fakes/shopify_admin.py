"""A LOCAL fake of Shopify's Admin GraphQL API, served by uvicorn on 127.0.0.1.

A fake stands in only because no machine that builds or tests Lightbox reaches Shopify.
It holds products and media in memory and checks requests against the documented
contract (API 2025-10): ``POST /admin/api/<version>/graphql.json`` (404 for another
version) with JSON ``{query, variables}`` and ``X-Shopify-Access-Token`` (401 without);
every query is validated and executed against a schema written from Shopify's reference
for the parts Lightbox uses (unknown mutations, missing required arguments or input
fields, wrong enum values fail as graphql-core reports them); the staged upload must be a
multipart POST with every returned parameter, unaltered, before ``file``, the declared
``fileSize`` must match, and no Shopify token may go to the storage host.

Listing: ``products(first, after, query, sortKey, reverse)`` pages through the products
(``add_product(title, updated_at, image_urls)``); its search ``query`` may hold only
``updated_at:<op><timestamp>`` terms joined by ``AND`` (anything else is refused).

Cost: a mutation costs 10, a query 1 plus ``2 + first`` per connection (close to
Shopify's calculated cost), charged to a leaky bucket (``bucket_size``, ``restore_rate``)
reported in ``extensions.cost``; a query the bucket cannot pay gets THROTTLED (its call's
``fault`` is ``"throttled"``). The bucket is the shop's, whoever calls: clients in several
processes share it as they share Shopify's; each charged call records its ``cost``, the
points ``available`` after it and the time ``at``. Time is ``fake.clock``: give the client
``fake.clock.advance`` as its sleep and waits are instant (a client in another process
sleeps in real time, which the clock also follows).

Media processing: an attached image starts PROCESSING, as on Shopify, and the fake answers
PROCESSING to the first ``processing_polls`` reads of its status (the product's media list
or ``node``); the next read shows how it ended: READY, or FAILED with ``mediaErrors`` when
``fake.fail_processing()`` queued that for the next attached image. A file that is not READY
cannot be changed by ``fileUpdate`` (``INVALID_FAILED_MEDIA_STATE`` / ``NON_READY_STATE``);
``fileDelete`` removes a file and its product references, but not while it is processing.
``fake.timeline`` records each product's media ids after every change.

Faults: ``fake.fail(step, how)`` makes the next call of ``step`` (a root field such as
``productUpdate``, or ``"staged_upload"``) answer ``http_500``, ``http_429``, ``throttled``,
``user_error``, ``drop_before`` (close the connection, nothing applied) or ``drop_after``
(apply it, then close the connection: a crash before the caller records the result);
``fake.slow(step, seconds)`` holds every answer of ``step`` for that long (real time: a race
window). Every request is recorded in ``fake.calls``.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import HTTP

import pytest
import uvicorn
from graphql import GraphQLError, OperationDefinitionNode, execute, parse, validate
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.fakes.shopify_schema import SCHEMA, Root, media_errors

ACCESS_TOKEN = "shpat_fake_0123456789abcdef"
SHOP_DOMAIN = "lightbox-test.myshopify.com"
INVALID_TOKEN = "[API] Invalid API key or access token (unrecognized login or wrong password)"
MUTATION_COST = 10


@dataclass
class Call:
    kind: str  # "graphql" or "staged_upload"
    operation: str  # root field name, e.g. "productUpdate"; "" when the request was refused
    variables: dict = field(default_factory=dict)
    status: int = 200
    fault: str | None = None  # the injected fault, or "throttled" when the bucket was short
    cost: int = 0  # points taken from the bucket (0 when refused or throttled)
    available: float | None = None  # what the bucket held after this call was charged
    at: float = 0.0  # fake.clock.now() when it was charged


class FakeClock:
    """Monotonic time that tests can move forward instead of sleeping."""

    def __init__(self) -> None:
        self.offset = 0.0

    def now(self) -> float:
        return time.monotonic() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += max(0.0, seconds)


class _Dropped(Exception):
    """Raised after the response head is sent: uvicorn then closes the connection."""


class DropConnection(Response):
    async def __call__(self, scope, receive, send) -> None:
        headers = [(b"content-type", b"application/json"), (b"content-length", b"512")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        raise _Dropped("fake Shopify dropped the connection on purpose")


class ShopifyAdminFake:
    def __init__(
        self,
        *,
        api_version: str = "2025-10",
        access_token: str = ACCESS_TOKEN,
        bucket_size: float = 1000.0,
        restore_rate: float = 50.0,
        processing_polls: int = 1,
    ) -> None:
        self.api_version, self.access_token = api_version, access_token
        self.bucket_size, self.restore_rate = bucket_size, restore_rate
        self.clock = FakeClock()
        self.available, self.refilled_at = bucket_size, self.clock.now()
        self.base_url = ""  # set when served
        self.products: dict[str, dict] = {}
        self.files: dict[str, dict] = {}
        self.uploads: dict[str, dict] = {}
        self.calls: list[Call] = []
        self.faults: dict[str, list[str]] = {}
        self.delays: dict[str, float] = {}
        self.processing_polls = processing_polls
        self.processing_outcomes: list[str] = []  # how the next attached images end
        self.timeline: list[tuple[str, tuple[str, ...]]] = []  # (product, its media ids) per change
        self._ids = iter(range(1001, 10**9))
        self.app = Starlette(
            routes=[
                Route("/admin/api/{version}/graphql.json", self._graphql, methods=["POST"]),
                Route("/staged-uploads/", self._staged_upload, methods=["POST"]),
            ]
        )

    # --- test helpers ------------------------------------------------------------------
    def add_product(
        self, title: str = "Blue mug", updated_at: str = "2026-01-01T00:00:00Z", image_urls: tuple[str, ...] = ()
    ) -> str:
        number = next(self._ids)
        gid = f"gid://shopify/Product/{number}"
        self.products[gid] = {
            "id": gid,
            "legacyResourceId": str(number),
            "title": title,
            "updatedAt": updated_at,
            "media": [],
        }
        for url in image_urls:
            self.add_media(gid, "", url=url)
        return gid

    def add_media(
        self,
        product_id: str,
        alt: str,
        status: str = "READY",
        data: bytes = b"",
        url: str | None = None,
        *,
        polls: int = 0,
        outcome: str = "READY",
    ) -> str:
        """A media file on the product; ``status="PROCESSING"`` ends as ``outcome`` once its
        status has been read ``polls`` times."""
        gid = f"gid://shopify/MediaImage/{next(self._ids)}"
        self.files[gid] = {
            "__typename": "MediaImage",
            "id": gid,
            "alt": alt,
            "status": status,
            "fileStatus": status,
            "mediaContentType": "IMAGE",
            "mediaErrors": media_errors(status),
            "data": data,
            "image": {"url": url or f"{self.base_url}/cdn/{gid.rsplit('/', 1)[1]}.png"},
            "polls_left": polls,
            "outcome": outcome,
        }
        self.products[product_id]["media"].append(gid)
        self._changed(product_id)
        return gid

    def fail_processing(self, times: int = 1) -> None:
        """The next ``times`` attached images end FAILED after processing."""
        self.processing_outcomes.extend(["FAILED"] * times)

    def slow(self, step: str, seconds: float) -> None:
        self.delays[step] = seconds

    def media_counts(self, product_id: str) -> list[int]:
        """How many media the product held after each change (its timeline)."""
        return [len(ids) for pid, ids in self.timeline if pid == product_id]

    def _changed(self, product_id: str) -> None:
        self.timeline.append((product_id, tuple(self.products[product_id]["media"])))

    def read_status(self, gid: str) -> dict:
        """One read of a file's status through the API: processing moves on by one poll."""
        file = self.files[gid]
        if file["status"] in {"UPLOADED", "PROCESSING"}:
            if file["polls_left"] > 0:
                file["polls_left"] -= 1
            else:
                file["status"] = file["fileStatus"] = file["outcome"]
                file["mediaErrors"] = media_errors(file["outcome"])
        return file

    def product_media(self, product_id: str) -> list[dict]:
        return [self.files[m] for m in self.products[product_id]["media"]]

    retry_after = "1.0"  # what a 429 asks for; a hostile or broken proxy may ask for hours

    def fail(self, step: str, how: str, times: int = 1) -> None:
        self.faults.setdefault(step, []).extend([how] * times)

    def operations(self, kind: str = "graphql") -> list[str]:
        return [c.operation for c in self.calls if c.kind == kind]

    # --- HTTP endpoints ----------------------------------------------------------------
    async def _graphql(self, request: Request) -> Response:
        call = Call("graphql", "")
        self.calls.append(call)
        if request.path_params["version"] != self.api_version:
            return self._refuse(call, 404, {"errors": "Not Found"})
        if request.headers.get("x-shopify-access-token") != self.access_token:
            return self._refuse(call, 401, {"errors": INVALID_TOKEN})
        if request.headers.get("content-type", "").split(";")[0] != "application/json":
            return self._refuse(call, 415, {"errors": "Content-Type must be application/json"})
        try:
            body = json.loads(await request.body())
        except ValueError:
            return self._refuse(call, 400, {"errors": "body is not JSON"})
        if (
            not isinstance(body, dict)
            or not isinstance(body.get("query"), str)
            or not isinstance(body.get("variables", {}), dict)
        ):
            return self._refuse(call, 400, {"errors": "body must be {query, variables}"})
        call.variables = body.get("variables") or {}
        try:
            document = parse(body["query"])
        except GraphQLError as exc:
            return JSONResponse({"errors": [exc.formatted]})
        errors = validate(SCHEMA, document)
        if errors:
            return JSONResponse({"errors": [e.formatted for e in errors]})
        operation = next(d for d in document.definitions if isinstance(d, OperationDefinitionNode))
        call.operation = operation.selection_set.selections[0].name.value
        if self.delays.get(call.operation):
            await asyncio.sleep(self.delays[call.operation])
        cost = self._cost(operation, call.variables)
        fault = call.fault = self._take_fault(call.operation)
        if fault in {"http_500", "http_429", "throttled"}:
            return self._injected(call, fault, cost)
        if fault == "drop_before":
            return DropConnection()
        if fault == "user_error":
            error = {"field": ["id"], "message": "Injected failure", "code": None}
            return JSONResponse({"data": {call.operation: {"userErrors": [error]}}})
        if cost > self.bucket_size:
            return JSONResponse(
                {
                    "errors": [
                        {
                            "message": f"Query cost is {cost}, which exceeds the "
                            f"single query max cost limit ({self.bucket_size}).",
                            "extensions": {"code": "MAX_COST_EXCEEDED"},
                        }
                    ]
                }
            )
        if cost > self._refill():
            call.fault = "throttled"  # not injected: the bucket really is short
            return self._injected(call, "throttled", cost)
        self.available -= cost
        call.cost, call.available, call.at = cost, self.available, self.clock.now()
        result = execute(SCHEMA, document, root_value=Root(self), variable_values=call.variables)
        if fault == "drop_after":
            return DropConnection()
        payload = {"data": result.data, "extensions": {"cost": self._cost_extension(cost, cost)}}
        if result.errors:
            payload["errors"] = [e.formatted for e in result.errors]
        return JSONResponse(payload)

    async def _staged_upload(self, request: Request) -> Response:
        call = Call("staged_upload", "staged_upload")
        self.calls.append(call)
        fault = call.fault = self._take_fault("staged_upload")
        if fault in {"http_500", "http_429"}:
            return self._refuse(call, int(fault[-3:]), {"errors": "injected"})
        if fault == "drop_before":
            return DropConnection()
        if "x-shopify-access-token" in request.headers:
            return self._refuse(call, 400, {"errors": "Shopify access token sent to storage host"})
        parts = _form_parts(request.headers.get("content-type", ""), await request.body())
        names = [name for name, _, _ in parts]
        call.variables = {"fields": names}
        upload = self.uploads.get(next((v.decode() for n, _, v in parts if n == "key"), ""))
        if upload is None:
            return self._refuse(call, 400, {"errors": "unknown or missing key"})
        expected = [p["name"] for p in upload["parameters"]]
        if names != [*expected, "file"] or parts[-1][1] is None:
            return self._refuse(call, 400, {"errors": f"fields {names}; want {expected} + file"})
        sent = {name: value.decode() for name, _, value in parts[:-1]}
        if sent != {p["name"]: p["value"] for p in upload["parameters"]}:
            return self._refuse(call, 403, {"errors": "upload parameters altered"})
        data = parts[-1][2]
        if len(data) != upload["size"]:
            return self._refuse(call, 400, {"errors": f"{len(data)} bytes, not {upload['size']}"})
        upload["data"] = data
        if fault == "drop_after":
            return DropConnection()
        return Response(f"<PostResponse><Key>{upload['key']}</Key></PostResponse>", 201, media_type="application/xml")

    # --- plumbing ----------------------------------------------------------------------
    def _refuse(self, call: Call, status: int, body: dict) -> JSONResponse:
        call.status = status
        return JSONResponse(body, status_code=status)

    def _take_fault(self, step: str) -> str | None:
        queue = self.faults.get(step) or []
        return queue.pop(0) if queue else None

    def _injected(self, call: Call, fault: str, cost: int) -> Response:
        if fault == "http_500":
            return self._refuse(call, 500, {"errors": "Internal Server Error"})
        if fault == "http_429":
            call.status = 429
            return JSONResponse({"errors": "Too many requests"}, 429, {"Retry-After": self.retry_after})
        self._refill()
        return JSONResponse(
            {
                "errors": [
                    {
                        "message": "Throttled",
                        "extensions": {
                            "code": "THROTTLED",
                            "documentation": "https://shopify.dev/api/usage/rate-limits",
                        },
                    }
                ],
                "extensions": {"cost": self._cost_extension(cost, None)},
            }
        )

    def _refill(self) -> float:
        now = self.clock.now()
        self.available = min(self.bucket_size, self.available + (now - self.refilled_at) * self.restore_rate)
        self.refilled_at = now
        return self.available

    def _cost_extension(self, requested: int, actual: int | None) -> dict:
        return {
            "requestedQueryCost": requested,
            "actualQueryCost": actual,
            "throttleStatus": {
                "maximumAvailable": self.bucket_size,
                "currentlyAvailable": self.available,
                "restoreRate": self.restore_rate,
            },
        }

    def _cost(self, operation: OperationDefinitionNode, variables: dict) -> int:
        if operation.operation.value == "mutation":
            return MUTATION_COST * len(operation.selection_set.selections)
        cost, stack = 1, list(operation.selection_set.selections)
        while stack:
            node = stack.pop()
            for arg in getattr(node, "arguments", None) or []:
                if arg.name.value in {"first", "last"}:
                    value = arg.value  # a variable or an int literal
                    n = variables.get(value.name.value) if hasattr(value, "name") else value.value
                    cost += 2 + int(n or 0)
            if getattr(node, "selection_set", None):
                stack.extend(node.selection_set.selections)
        return cost

    def new_upload(self, item: dict) -> dict:
        key = f"tmp/{uuid.uuid4().hex}/{item['filename']}"
        parameters = [
            {"name": "Content-Type", "value": item["mimeType"]},
            {"name": "success_action_status", "value": "201"},
            {"name": "acl", "value": "private"},
            {"name": "key", "value": key},
            {"name": "x-goog-algorithm", "value": "GOOG4-RSA-SHA256"},
            {"name": "x-goog-signature", "value": uuid.uuid4().hex},
            {"name": "policy", "value": uuid.uuid4().hex},
        ]
        self.uploads[key] = {
            "key": key,
            "size": int(item["fileSize"]),
            "data": None,
            "parameters": parameters,
            "mimeType": item["mimeType"],
        }
        base = f"{self.base_url}/staged-uploads/"
        return {"url": base, "resourceUrl": f"{base}{key}", "parameters": parameters}


def _form_parts(content_type: str, body: bytes) -> list[tuple[str, str | None, bytes]]:
    """(field name, file name or None, bytes) for each part of a multipart/form-data body."""
    if not content_type.startswith("multipart/form-data"):
        return []
    message = BytesParser(policy=HTTP).parsebytes(f"Content-Type: {content_type}\r\n\r\n".encode() + body)
    return [
        (part.get_param("name", header="content-disposition"), part.get_filename(), part.get_payload(decode=True))
        for part in message.iter_parts()
    ]


@contextmanager
def serve(fake: ShopifyAdminFake) -> Iterator[ShopifyAdminFake]:
    """Serve ``fake`` with uvicorn on a free loopback port until the block exits."""
    server = uvicorn.Server(
        uvicorn.Config(fake.app, host="127.0.0.1", port=0, log_level="warning", log_config=None, lifespan="off")
    )
    thread = threading.Thread(target=server.run, name="fake-shopify", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the fake Shopify server did not start")
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    fake.base_url = f"http://127.0.0.1:{port}"
    try:
        yield fake
    finally:
        server.should_exit = True
        thread.join(10)


@pytest.fixture
def shopify_admin() -> Iterator[ShopifyAdminFake]:
    """A fresh fake shop on loopback; ``shopify_store(fake)`` gives a block pointed at it."""
    with serve(ShopifyAdminFake()) as fake:
        yield fake


def shopify_store(fake: ShopifyAdminFake, **fields):
    """A ``ShopifyStore`` block talking to ``fake``, sleeping on the fake's clock. The
    fleet-wide rate limit is off unless asked for: it waits in real time on the Prefect
    server, which a fake clock cannot move (tests/blocks/test_shopify_fleet_rate.py)."""
    from blocks.shopify import ShopifyStore

    store = ShopifyStore(
        **{
            "shop_domain": SHOP_DOMAIN,
            "admin_api_url": fake.base_url,
            "access_token": fake.access_token,
            "webhook_secret": "whsec-test",
            "api_version": fake.api_version,
            "fleet_rate_limit": False,
            **fields,
        }
    )
    store.set_sleep(fake.clock.advance)
    return store
