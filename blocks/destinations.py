"""Export destinations as Prefect blocks: a local folder and an S3 bucket.

Every destination offers the same small surface to the export protocol,
``catalog.delivery.deliver`` (a lease per destination key, then put, then complete):

- ``destination_id``: a stable id stored as ``Export.destination``;
- ``object_key(dirname, filename)``: the key for one image, relative to the destination;
- ``put(key, data, *, content_type, sha256, context)``: write the bytes; idempotent, so a
  re-run after a crash for the same key and bytes never creates a duplicate;
- ``cleanup_partial(key, sha256, context)``: remove what an unfinished attempt left for the
  key (temporary files, open multipart uploads, Shopify media that FAILED processing).
  ``deliver`` calls it before writing again, and only while it holds the key's lease, so
  it never removes the work of a live writer.

``blocks.shopify.ShopifyStore`` offers the same surface for a Shopify store.
"""

from __future__ import annotations

import glob
import hashlib
import io
import logging
import os
import re
import tempfile
import unicodedata
from pathlib import Path
from typing import Any

from boto3.s3.transfer import TransferConfig
from botocore.client import Config
from botocore.exceptions import ClientError
from prefect.blocks.core import Block
from prefect.exceptions import MissingContextError
from prefect.logging import get_run_logger
from prefect_aws import S3Bucket
from pydantic import BaseModel, Field, PrivateAttr, field_validator

_SHA256 = re.compile(r"[0-9a-f]{64}")
_PROFILE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
MAX_KEY_BYTES = 1024  # S3's limit on an object key; plenty for the others
_TMP_SUFFIX = ".lightbox-tmp"


class ExportContext(BaseModel):
    """What a destination may need to know about the image besides its bytes."""

    sku: str = Field(description="The SKU id as the catalog has it.")
    title: str | None = Field(default=None, description="Product title, if known.")
    product_id: str | None = Field(default=None, description="Shopify product id (gid://shopify/Product/<n> or <n>).")
    alt_text: str | None = Field(default=None, description="Alt text for the image.")
    profile: str = Field(description="Export profile name, e.g. 'shopify' or 'amazon-main'.")

    @field_validator("profile")
    @classmethod
    def _safe_profile(cls, value: str) -> str:
        if not _PROFILE.fullmatch(value):
            raise ValueError(f"profile {value!r} must match {_PROFILE.pattern}")
        return value

    @field_validator("product_id")
    @classmethod
    def _product_gid(cls, value: str | None) -> str | None:
        if value is None or value.startswith("gid://shopify/Product/"):
            return value
        if value.isdigit():
            return f"gid://shopify/Product/{value}"
        raise ValueError(f"product_id {value!r} is neither a Product gid nor a number")


def block_logger(name: str = __name__) -> logging.Logger | logging.LoggerAdapter:
    """The run logger inside a flow/task run (shows in the UI), else the module logger."""
    try:
        return get_run_logger()
    except MissingContextError:
        return logging.getLogger(name)


def check_name(name: str, what: str) -> str:
    """Refuse a key part that could be read as a path: '/', '\\', '.', '..', control chars."""
    if not name or name in {".", ".."}:
        raise ValueError(f"{what} {name!r} is empty or a relative path step")
    if "/" in name or "\\" in name:
        raise ValueError(f"{what} {name!r} contains a path separator")
    if any(unicodedata.category(ch)[0] == "C" for ch in name):
        raise ValueError(f"{what} {name!r} contains control characters")
    return name


def check_key(key: str) -> str:
    """A relative key made of safe parts joined by '/'; never absolute, never '..'."""
    if key.startswith("/") or len(key.encode("utf-8")) > MAX_KEY_BYTES:
        raise ValueError(f"key {key!r} is absolute or longer than {MAX_KEY_BYTES} bytes")
    for part in key.split("/"):
        check_name(part, "key part")
    return key


def check_bytes(data: bytes, sha256: str) -> None:
    """The sha256 the caller recorded must be the sha256 of the bytes it hands over."""
    if not _SHA256.fullmatch(sha256):
        raise ValueError(f"sha256 {sha256!r} is not 64 lowercase hex digits")
    actual = hashlib.sha256(data).hexdigest()
    if actual != sha256:
        raise ValueError(f"data has sha256 {actual}, the caller said {sha256}")


def object_key(dirname: str, filename: str) -> str:
    return f"{check_name(dirname, 'SKU folder')}/{check_name(filename, 'file name')}"


class LocalFolderDestination(Block):
    """Export images into a folder on local (or mounted) disk.

    Writes are atomic: a temporary file in the same folder, fsync, then ``os.replace``;
    the same bytes already at the key are left alone.

    Example:
        ```python
        from blocks.destinations import ExportContext, LocalFolderDestination

        dest = LocalFolderDestination(base_path="/srv/lightbox/exports")
        key = dest.object_key("MUG-001", "shopify.jpg")
        dest.put(key, data, content_type="image/jpeg", sha256=digest,
                 context=ExportContext(sku="MUG-001", profile="shopify"))
        ```
    """

    _block_type_name = "Lightbox Local Folder"
    _description = "Export images into a local folder: atomic, idempotent writes"

    base_path: Path = Field(description="Absolute folder the exports go under.")
    fsync: bool = Field(default=True, description="fsync each file and its folder so a power cut keeps it.")

    @field_validator("base_path")
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        if not value.is_absolute():
            raise ValueError(f"base_path {str(value)!r} must be absolute")
        return value

    @property
    def destination_id(self) -> str:
        return f"local:{self.base_path}"

    def object_key(self, dirname: str, filename: str) -> str:
        return object_key(dirname, filename)

    def path_for(self, key: str) -> Path:
        """The file for ``key``; refuses anything that resolves outside ``base_path``."""
        base = self.base_path.resolve()
        path = (base / check_key(key)).resolve()
        if not path.is_relative_to(base) or path == base:
            raise ValueError(f"key {key!r} resolves outside {base}")
        return path

    def put(self, key: str, data: bytes, *, content_type: str, sha256: str, context: ExportContext) -> str:
        check_bytes(data, sha256)
        path = self.path_for(key)
        if path.is_file() and path.stat().st_size == len(data):
            if hashlib.sha256(path.read_bytes()).hexdigest() == sha256:
                block_logger().debug("SKU %s: %s holds these bytes", context.sku, path)
                return str(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=_TMP_SUFFIX)
        try:
            with os.fdopen(fd, "wb") as tmp:
                tmp.write(data)
                tmp.flush()
                if self.fsync:
                    os.fsync(tmp.fileno())
            os.chmod(tmp_name, 0o644)
            os.replace(tmp_name, path)
        except BaseException:
            Path(tmp_name).unlink(missing_ok=True)
            raise
        if self.fsync:
            dir_fd = os.open(path.parent, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
        block_logger().debug("SKU %s: wrote %s (%d bytes)", context.sku, path, len(data))
        return str(path)

    def cleanup_partial(self, key: str, sha256: str, context: ExportContext) -> list[str]:
        """Remove temporary files a crash left next to ``key``; returns their paths."""
        path = self.path_for(key)
        if not path.parent.is_dir():
            return []
        removed = []
        for tmp in path.parent.glob(f".{glob.escape(path.name)}.*{_TMP_SUFFIX}"):
            tmp.unlink(missing_ok=True)
            removed.append(str(tmp))
        if removed:
            block_logger().info("SKU %s: removed partial files %s", context.sku, removed)
        return removed


class S3Destination(Block):
    """Export images to an S3 (or S3-compatible) bucket through prefect-aws's ``S3Bucket``.

    Each object carries its ContentType and its sha256 as user metadata; a put whose
    sha256 is already there is skipped. Throttling and 5xx answers are retried by
    botocore in "standard" mode, at most ``max_attempts`` attempts per call.

    Example:
        ```python
        from prefect_aws import AwsCredentials, S3Bucket
        from blocks.destinations import S3Destination

        dest = S3Destination(
            bucket=S3Bucket(
                bucket_name="catalog-assets",
                credentials=AwsCredentials(
                    aws_access_key_id="AKIA...", aws_secret_access_key="...",
                    region_name="eu-west-1",
                    # S3-compatible: aws_client_parameters={"endpoint_url": "http://minio:9000"}
                ),
            ),
            prefix="exports",
        )
        url = dest.presigned_url(dest.object_key("MUG-001", "thumb.jpg"), expires=900)
        ```
    """

    _block_type_name = "Lightbox S3 Destination"
    _description = "Export images to an S3 bucket (prefect-aws S3Bucket), idempotent by sha256"

    bucket: S3Bucket = Field(description="The bucket and its credentials (prefect-aws).")
    prefix: str = Field(default="", description="Key prefix under the bucket's folder, e.g. 'exports'.")
    max_attempts: int = Field(
        default=5,
        ge=1,
        le=20,
        description="Attempts per S3 call, the first included (botocore 'standard' retries).",
    )
    multipart_threshold_mb: int = Field(
        default=16, ge=5, description="Objects at least this large go up as multipart uploads."
    )

    _client: Any = PrivateAttr(default=None)

    @field_validator("prefix")
    @classmethod
    def _safe_prefix(cls, value: str) -> str:
        value = value.strip("/")
        return check_key(value) if value else value

    @property
    def root(self) -> str:
        """Bucket folder and prefix joined: what every key of this destination lies under."""
        return "/".join(p for p in (self.bucket.bucket_folder.strip("/"), self.prefix) if p)

    @property
    def destination_id(self) -> str:
        return f"s3://{self.bucket.bucket_name}/{self.root}".rstrip("/")

    def object_key(self, dirname: str, filename: str) -> str:
        return object_key(dirname, filename)

    def full_key(self, key: str) -> str:
        check_key(key)
        return f"{self.root}/{key}" if self.root else key

    def get_client(self) -> Any:
        """The boto3 S3 client, created on first use with the retry config."""
        if self._client is None:
            creds = self.bucket.credentials
            params = creds.aws_client_parameters.get_params_override()
            retry = Config(retries={"mode": "standard", "total_max_attempts": self.max_attempts})
            params["config"] = params["config"].merge(retry) if "config" in params else retry
            if creds.region_name is not None:
                params["region_name"] = creds.region_name
            self._client = creds.get_boto3_session().client("s3", **params)
        return self._client

    def put(self, key: str, data: bytes, *, content_type: str, sha256: str, context: ExportContext) -> str:
        check_bytes(data, sha256)
        full = self.full_key(key)
        uri = f"s3://{self.bucket.bucket_name}/{full}"
        head = self._head(full)
        if head and head["Metadata"].get("sha256") == sha256 and head["ContentLength"] == len(data):
            block_logger().debug("SKU %s: %s already holds these bytes", context.sku, uri)
            return uri
        threshold = self.multipart_threshold_mb * 1024 * 1024
        self.get_client().upload_fileobj(
            io.BytesIO(data),
            self.bucket.bucket_name,
            full,
            ExtraArgs={"ContentType": content_type, "Metadata": {"sha256": sha256}},
            Config=TransferConfig(multipart_threshold=threshold, multipart_chunksize=threshold, use_threads=False),
        )
        block_logger().debug("SKU %s: uploaded %s (%d bytes)", context.sku, uri, len(data))
        return uri

    def cleanup_partial(self, key: str, sha256: str, context: ExportContext) -> list[str]:
        """Abort multipart uploads a crash left open for ``key``; returns their upload ids."""
        full = self.full_key(key)
        client = self.get_client()
        aborted = []
        pages = client.get_paginator("list_multipart_uploads").paginate(Bucket=self.bucket.bucket_name, Prefix=full)
        for page in pages:
            for upload in page.get("Uploads", []):
                if upload["Key"] == full:
                    client.abort_multipart_upload(Bucket=self.bucket.bucket_name, Key=full, UploadId=upload["UploadId"])
                    aborted.append(upload["UploadId"])
        if aborted:
            block_logger().info("SKU %s: aborted multipart uploads %s", context.sku, aborted)
        return aborted

    def presigned_url(self, key: str, expires: int = 3600) -> str:
        """A time-limited GET URL for ``key`` (the review UI's thumbnails)."""
        if not 1 <= expires <= 7 * 24 * 3600:
            raise ValueError(f"expires={expires} s; S3 allows 1 s to 7 days")
        return self.get_client().generate_presigned_url(
            "get_object",
            Params={"Bucket": self.bucket.bucket_name, "Key": self.full_key(key)},
            ExpiresIn=expires,
        )

    # The work store's raw access (tasks/workdir.S3WorkStore): full keys, no export bookkeeping.

    def put_object(self, full_key: str, data: bytes) -> None:
        self.get_client().put_object(Bucket=self.bucket.bucket_name, Key=check_key(full_key), Body=data)

    def get_object(self, full_key: str) -> bytes:
        try:
            return self.get_client().get_object(Bucket=self.bucket.bucket_name, Key=check_key(full_key))["Body"].read()
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in {"404", "NoSuchKey", "NotFound"}:
                raise FileNotFoundError(f"s3://{self.bucket.bucket_name}/{full_key}") from None
            raise

    def has_object(self, full_key: str) -> bool:
        return self._head(check_key(full_key)) is not None

    def _head(self, full: str) -> dict | None:
        try:
            return self.get_client().head_object(Bucket=self.bucket.bucket_name, Key=full)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in {"404", "NoSuchKey", "NotFound"}:
                return None
            raise
