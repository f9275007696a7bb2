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
reported in ``extensions.cost``; a query the bucket cannot pay gets THROTTLED. Time is
``fake.clock``: give the client ``fake.clock.advance`` as its sleep and waits are instant.

Faults: ``fake.fail(step, how)`` makes the next call of ``step`` (a root field such as
``productUpdate``, or ``"staged_upload"``) answer ``http_500``, ``http_429``, ``throttled``,
``user_error``, ``drop_before`` (close the connection, nothing applied) or ``drop_after``
(apply it, then close the connection: a crash before the caller records the result).
Every request is recorded in ``fake.calls``.
"""

from __future__ import annotations

import json
import operator
import re
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from email.parser import BytesParser
from email.policy import HTTP

import pytest
import uvicorn
from graphql import GraphQLError, OperationDefinitionNode, build_schema, execute, parse, validate
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

ACCESS_TOKEN = "shpat_fake_0123456789abcdef"
SHOP_DOMAIN = "lightbox-test.myshopify.com"
INVALID_TOKEN = "[API] Invalid API key or access token (unrecognized login or wrong password)"
# The part of Shopify's Admin schema (2025-10 reference) Lightbox uses, names and types as
# documented. Fields Lightbox never asks for are left out, so asking for one fails validation.
SCHEMA = build_schema("""
schema { query: QueryRoot mutation: Mutation }
scalar URL
scalar UnsignedInt64
scalar DateTime
enum StagedUploadTargetGenerateUploadResource { BULK_MUTATION_VARIABLES COLLECTION_IMAGE
  FILE IMAGE MODEL_3D PRODUCT_IMAGE RETURN_LABEL SHOP_IMAGE URL_REDIRECT_IMPORT VIDEO }
enum StagedUploadHttpMethodType { POST PUT }
enum MediaContentType { EXTERNAL_VIDEO IMAGE MODEL_3D VIDEO }
enum MediaStatus { FAILED PROCESSING READY UPLOADED }
enum FileStatus { FAILED PROCESSING READY UPLOADED }
enum FilesErrorCode { FILE_DOES_NOT_EXIST INVALID ALT_VALUE_LIMIT_EXCEEDED }
type UserError { field: [String!] message: String! }
type FilesUserError { code: FilesErrorCode field: [String!] message: String! }
type PageInfo { endCursor: String hasNextPage: Boolean! }
interface Media { alt: String id: ID! mediaContentType: MediaContentType! status: MediaStatus! }
interface File { alt: String id: ID! fileStatus: FileStatus! }
type Image { url: URL! }
type MediaImage implements Media & File { alt: String id: ID! fileStatus: FileStatus! image: Image
  mediaContentType: MediaContentType! status: MediaStatus! }
type MediaConnection { nodes: [Media!]! pageInfo: PageInfo! }
type Product { id: ID! legacyResourceId: UnsignedInt64! title: String! updatedAt: DateTime!
  media(first: Int, after: String): MediaConnection! }
type ProductConnection { nodes: [Product!]! pageInfo: PageInfo! }
enum ProductSortKeys { CREATED_AT ID INVENTORY_TOTAL PRODUCT_TYPE PUBLISHED_AT RELEVANCE TITLE
  UPDATED_AT VENDOR }
type StagedUploadParameter { name: String! value: String! }
type StagedMediaUploadTarget { parameters: [StagedUploadParameter!]! resourceUrl: URL url: URL }
type StagedUploadsCreatePayload { stagedTargets: [StagedMediaUploadTarget!]
  userErrors: [UserError!]! }
input StagedUploadInput { fileSize: UnsignedInt64 filename: String!
  httpMethod: StagedUploadHttpMethodType = PUT mimeType: String!
  resource: StagedUploadTargetGenerateUploadResource! }
input CreateMediaInput { alt: String mediaContentType: MediaContentType! originalSource: String! }
input ProductUpdateInput { id: ID title: String }
type ProductUpdatePayload { product: Product userErrors: [UserError!]! }
input FileUpdateInput { alt: String filename: String id: ID! originalSource: String
  previewImageSource: String referencesToAdd: [ID!] referencesToRemove: [ID!] }
type FileUpdatePayload { files: [File!] userErrors: [FilesUserError!]! }
type QueryRoot { product(id: ID!): Product
  products(first: Int, after: String, last: Int, before: String, query: String,
           sortKey: ProductSortKeys = ID, reverse: Boolean = false): ProductConnection! }
type Mutation {
  stagedUploadsCreate(input: [StagedUploadInput!]!): StagedUploadsCreatePayload
  productUpdate(product: ProductUpdateInput, media: [CreateMediaInput!]): ProductUpdatePayload
  fileUpdate(files: [FileUpdateInput!]!): FileUpdatePayload
}
""")
MUTATION_COST = 10


@dataclass
class Call:
    kind: str  # "graphql" or "staged_upload"
    operation: str  # root field name, e.g. "productUpdate"; "" when the request was refused
    variables: dict = field(default_factory=dict)
    status: int = 200
    fault: str | None = None  # the injected fault, or "throttled" when the bucket was short


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
        self, product_id: str, alt: str, status: str = "READY", data: bytes = b"", url: str | None = None
    ) -> str:
        gid = f"gid://shopify/MediaImage/{next(self._ids)}"
        self.files[gid] = {
            "__typename": "MediaImage",
            "id": gid,
            "alt": alt,
            "status": status,
            "fileStatus": status,
            "mediaContentType": "IMAGE",
            "data": data,
            "image": {"url": url or f"{self.base_url}/cdn/{gid.rsplit('/', 1)[1]}.png"},
        }
        self.products[product_id]["media"].append(gid)
        return gid

    def product_media(self, product_id: str) -> list[dict]:
        return [self.files[m] for m in self.products[product_id]["media"]]

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
        result = execute(SCHEMA, document, root_value=_Root(self), variable_values=call.variables)
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
            return JSONResponse({"errors": "Too many requests"}, 429, {"Retry-After": "1.0"})
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


class _Root:
    """Resolvers for the root fields; graphql-core calls them with (info, **arguments)."""

    def __init__(self, fake: ShopifyAdminFake) -> None:
        self.fake = fake

    def product(self, info, id: str) -> dict | None:
        if id not in self.fake.products:
            return None
        view = dict(self.fake.products[id])
        view["media"] = lambda info, **args: self._media_page(id, **args)
        return view

    def products(
        self,
        info,
        first: int | None = None,
        after: str | None = None,
        query: str | None = None,
        sortKey: str = "ID",
        reverse: bool = False,  # noqa: N803
        **unsupported,
    ) -> dict:
        """Products matching ``query`` (only ``updated_at:<op><timestamp>`` terms joined by
        AND, as Shopify's search syntax writes them), sorted by ``sortKey``, paginated."""
        if unsupported or first is None or not 0 <= first <= 250:
            raise GraphQLError("this fake pages forward only: give first (0..250) and after")
        tests = [_updated_at_test(term) for term in (query or "").split(" AND ") if term.strip()]
        rows = [
            self.product(info, gid)
            for gid, p in self.fake.products.items()
            if all(test(_timestamp(p["updatedAt"])) for test in tests)
        ]
        order = {
            "ID": lambda p: int(p["legacyResourceId"]),
            "UPDATED_AT": lambda p: (_timestamp(p["updatedAt"]), int(p["legacyResourceId"])),
            "TITLE": lambda p: p["title"],
        }
        if sortKey not in order:
            raise GraphQLError(f"this fake sorts products by {', '.join(order)} only")
        rows.sort(key=order[sortKey], reverse=reverse)
        start = int(after.removeprefix("pcursor:")) + 1 if after else 0
        page = rows[start : start + first]
        end = start + len(page)
        return {
            "nodes": page,
            "pageInfo": {"hasNextPage": end < len(rows), "endCursor": f"pcursor:{end - 1}" if page else None},
        }

    def _media_page(self, product_id: str, first: int | None = None, after: str | None = None):
        if first is None or not 0 <= first <= 250:
            raise GraphQLError("you must provide first, between 0 and 250")
        nodes = self.fake.product_media(product_id)
        start = int(after.removeprefix("cursor:")) + 1 if after else 0
        page = nodes[start : start + first]
        end = start + len(page)
        return {
            "nodes": page,
            "pageInfo": {"hasNextPage": end < len(nodes), "endCursor": f"cursor:{end - 1}" if page else None},
        }

    def stagedUploadsCreate(self, info, input: list[dict]) -> dict:  # noqa: N802 (schema name)
        errors = []
        for i, item in enumerate(input):
            where = ["input", str(i)]
            if item["resource"] != "IMAGE" or item.get("httpMethod") != "POST":
                errors.append({"field": where, "message": "this fake serves IMAGE by POST only"})
            elif not str(item.get("fileSize") or "").isdigit():
                errors.append({"field": [*where, "fileSize"], "message": "fileSize is required"})
            elif not item["mimeType"].startswith("image/"):
                errors.append({"field": [*where, "mimeType"], "message": "not an image"})
        if errors:
            return {"stagedTargets": None, "userErrors": errors}
        return {"stagedTargets": [self.fake.new_upload(item) for item in input], "userErrors": []}

    def productUpdate(self, info, product=None, media=None) -> dict:  # noqa: N802
        product_id = (product or {}).get("id")
        if product_id not in self.fake.products:
            error = {"field": ["id"], "message": "Product does not exist"}
            return {"product": None, "userErrors": [error]}
        for i, item in enumerate(media or []):
            if len(item.get("alt") or "") > 512:
                error = {"field": ["media", str(i), "alt"], "message": "Alt is too long (max 512)"}
                return {"product": None, "userErrors": [error]}
        for item in media or []:
            prefix = f"{self.fake.base_url}/staged-uploads/"
            upload = self.fake.uploads.get(item["originalSource"].removeprefix(prefix))
            ok = upload is not None and upload["data"] is not None
            status = "READY" if ok and item["mediaContentType"] == "IMAGE" else "FAILED"
            self.fake.add_media(product_id, item.get("alt"), status, upload["data"] if ok else b"")
        return {"product": self.product(info, product_id), "userErrors": []}

    def fileUpdate(self, info, files: list[dict]) -> dict:  # noqa: N802
        errors = [
            {
                "field": ["files", str(i), "id"],
                "code": "FILE_DOES_NOT_EXIST",
                "message": f"File id {f['id']} does not exist.",
            }
            for i, f in enumerate(files)
            if f["id"] not in self.fake.files
        ]
        if errors:
            return {"files": None, "userErrors": errors}
        for f in files:
            for product_id in f.get("referencesToRemove") or []:
                media = self.fake.products.get(product_id, {}).get("media", [])
                if f["id"] in media:
                    media.remove(f["id"])
            if f.get("alt") is not None:
                self.fake.files[f["id"]]["alt"] = f["alt"]
        return {"files": [self.fake.files[f["id"]] for f in files], "userErrors": []}


def _timestamp(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


_SEARCH_TERM = re.compile(r"\s*updated_at:(>=|<=|>|<)'?([0-9T:.+\-Z]+)'?\s*")
_COMPARE = {">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le}


def _updated_at_test(term: str):
    found = _SEARCH_TERM.fullmatch(term)
    if found is None:
        raise GraphQLError(f"this fake's product search understands updated_at:<op><time> only, not {term!r}")
    bound = _timestamp(found.group(2))
    return lambda value: _COMPARE[found.group(1)](value, bound)


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
    """A ``ShopifyStore`` block talking to ``fake``, sleeping on the fake's clock."""
    from blocks.shopify import ShopifyStore

    store = ShopifyStore(
        **{
            "shop_domain": SHOP_DOMAIN,
            "admin_api_url": fake.base_url,
            "access_token": fake.access_token,
            "webhook_secret": "whsec-test",
            "api_version": fake.api_version,
            **fields,
        }
    )
    store.set_sleep(fake.clock.advance)
    return store
