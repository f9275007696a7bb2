"""The schema and resolvers of the fake Shopify Admin API (tests/fakes/shopify_admin.py):
the part of Shopify's Admin GraphQL schema (2025-10 reference) that Lightbox uses, and the
root fields executed against the fake's in-memory products, media and staged uploads."""

from __future__ import annotations

import operator
import re
from datetime import datetime
from typing import TYPE_CHECKING

from graphql import GraphQLError, build_schema

if TYPE_CHECKING:
    from tests.fakes.shopify_admin import ShopifyAdminFake

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
enum FilesErrorCode { FILE_DOES_NOT_EXIST FILE_LOCKED INVALID ALT_VALUE_LIMIT_EXCEEDED
  INVALID_FAILED_MEDIA_STATE NON_READY_STATE }
enum MediaErrorCode { IMAGE_DOWNLOAD_FAILURE IMAGE_PROCESSING_FAILURE INVALID_IMAGE_FILE_SIZE
  UNKNOWN UNSUPPORTED_IMAGE_FILE_TYPE }
type MediaError { code: MediaErrorCode! details: String message: String! }
type UserError { field: [String!] message: String! }
type FilesUserError { code: FilesErrorCode field: [String!] message: String! }
type PageInfo { endCursor: String hasNextPage: Boolean! }
interface Node { id: ID! }
interface Media { alt: String id: ID! mediaContentType: MediaContentType! mediaErrors: [MediaError!]!
  status: MediaStatus! }
interface File { alt: String id: ID! fileStatus: FileStatus! }
type Image { url: URL! }
type MediaImage implements Node & Media & File { alt: String id: ID! fileStatus: FileStatus!
  image: Image mediaContentType: MediaContentType! mediaErrors: [MediaError!]! status: MediaStatus! }
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
type FileDeletePayload { deletedFileIds: [ID!] userErrors: [FilesUserError!]! }
type QueryRoot { node(id: ID!): Node
  product(id: ID!): Product
  products(first: Int, after: String, last: Int, before: String, query: String,
           sortKey: ProductSortKeys = ID, reverse: Boolean = false): ProductConnection! }
type Mutation {
  stagedUploadsCreate(input: [StagedUploadInput!]!): StagedUploadsCreatePayload
  productUpdate(product: ProductUpdateInput, media: [CreateMediaInput!]): ProductUpdatePayload
  fileUpdate(files: [FileUpdateInput!]!): FileUpdatePayload
  fileDelete(fileIds: [ID!]!): FileDeletePayload
}
""")


class Root:
    """Resolvers for the root fields; graphql-core calls them with (info, **arguments)."""

    def __init__(self, fake: ShopifyAdminFake) -> None:
        self.fake = fake

    def node(self, info, id: str) -> dict | None:
        return self.fake.read_status(id) if id in self.fake.files else None

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
        page = [self.fake.read_status(m["id"]) for m in nodes[start : start + first]]
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
            ok = upload is not None and upload["data"] is not None and item["mediaContentType"] == "IMAGE"
            outcome = self.fake.processing_outcomes.pop(0) if self.fake.processing_outcomes else "READY"
            self.fake.add_media(
                product_id,
                item.get("alt"),
                "PROCESSING",
                upload["data"] if ok else b"",
                polls=self.fake.processing_polls,
                outcome=outcome if ok else "FAILED",
            )
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
        errors += [
            {
                "field": ["files", str(i), "id"],
                "code": "INVALID_FAILED_MEDIA_STATE" if status == "FAILED" else "NON_READY_STATE",
                "message": f"File id {f['id']} is {status}: only a READY file can be updated.",
            }
            for i, f in enumerate(files)
            if f["id"] in self.fake.files and (status := self.fake.files[f["id"]]["status"]) != "READY"
        ]
        if errors:
            return {"files": None, "userErrors": errors}
        for f in files:
            for product_id in f.get("referencesToRemove") or []:
                media = self.fake.products.get(product_id, {}).get("media", [])
                if f["id"] in media:
                    media.remove(f["id"])
                    self.fake._changed(product_id)
            if f.get("alt") is not None:
                self.fake.files[f["id"]]["alt"] = f["alt"]
        return {"files": [self.fake.files[f["id"]] for f in files], "userErrors": []}

    def fileDelete(self, info, fileIds: list[str]) -> dict:  # noqa: N802, N803
        errors = [
            {"field": ["fileIds", str(i)], "code": "FILE_DOES_NOT_EXIST", "message": f"File id {gid} does not exist."}
            for i, gid in enumerate(fileIds)
            if gid not in self.fake.files
        ] + [
            {"field": ["fileIds", str(i)], "code": "FILE_LOCKED", "message": f"File id {gid} is being processed."}
            for i, gid in enumerate(fileIds)
            if gid in self.fake.files and self.fake.files[gid]["status"] in {"UPLOADED", "PROCESSING"}
        ]
        if errors:
            return {"deletedFileIds": None, "userErrors": errors}
        for gid in fileIds:
            del self.fake.files[gid]
            for product_id, product in self.fake.products.items():
                if gid in product["media"]:
                    product["media"].remove(gid)
                    self.fake._changed(product_id)
        return {"deletedFileIds": fileIds, "userErrors": []}


def media_errors(status: str) -> list[dict]:
    if status != "FAILED":
        return []
    return [{"code": "IMAGE_PROCESSING_FAILURE", "details": None, "message": "Image could not be processed."}]


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
