"""Local folder and S3 destinations: atomic, idempotent, contained; S3 on a loopback moto."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import httpx
import pytest
from botocore.awsrequest import AWSResponse
from botocore.exceptions import ClientError

from blocks.destinations import ExportContext, LocalFolderDestination
from tests.fakes.s3 import create_bucket, s3_client, s3_destination, s3_endpoint  # noqa: F401

CTX = ExportContext(sku="MUG-001", title="Blue mug", profile="shopify")
DATA = b"\xff\xd8 not really a jpeg, but bytes are bytes"
SHA = hashlib.sha256(DATA).hexdigest()
HOSTILE_NAMES = ["..", ".", "", "a/b", "/abs", "a\\b", "nul\x00", "new\nline"]
HOSTILE_KEYS = ["../x.jpg", "a/../../x.jpg", "/etc/passwd", "a//b.jpg", "a/./b.jpg", "a/b\x07.jpg"]


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# --- local folder -------------------------------------------------------------------------


@pytest.fixture
def local(tmp_path) -> LocalFolderDestination:
    return LocalFolderDestination(base_path=tmp_path / "exports")


def test_local_put_writes_the_file_and_leaves_no_temporaries(local):
    key = local.object_key("MUG-001", "shopify.jpg")
    assert key == "MUG-001/shopify.jpg"
    assert local.destination_id == f"local:{local.base_path}"
    out = local.put(key, DATA, content_type="image/jpeg", sha256=SHA, context=CTX)
    path = Path(out)
    assert path == local.base_path / "MUG-001" / "shopify.jpg"
    assert path.read_bytes() == DATA
    assert path.stat().st_mode & 0o777 == 0o644
    assert sorted(p.name for p in path.parent.iterdir()) == ["shopify.jpg"]


def test_local_put_is_idempotent_and_replaces_changed_bytes(local):
    key = local.object_key("MUG-001", "shopify.jpg")
    path = Path(local.put(key, DATA, content_type="image/jpeg", sha256=SHA, context=CTX))
    first = path.stat()
    assert local.put(key, DATA, content_type="image/jpeg", sha256=SHA, context=CTX) == str(path)
    again = path.stat()
    assert (again.st_ino, again.st_mtime_ns) == (first.st_ino, first.st_mtime_ns)  # not rewritten
    newer = b"a re-render with other bytes"
    local.put(key, newer, content_type="image/jpeg", sha256=sha(newer), context=CTX)
    assert path.read_bytes() == newer and path.stat().st_ino != first.st_ino


def test_local_crash_before_rename_keeps_the_old_file_whole(local, monkeypatch):
    key = local.object_key("MUG-001", "shopify.jpg")
    path = Path(local.put(key, DATA, content_type="image/jpeg", sha256=SHA, context=CTX))
    newer = b"new bytes that never land"

    def crash(src, dst):
        raise OSError("disk went away")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="disk went away"):
        local.put(key, newer, content_type="image/jpeg", sha256=sha(newer), context=CTX)
    assert path.read_bytes() == DATA
    assert sorted(p.name for p in path.parent.iterdir()) == ["shopify.jpg"]


def test_local_cleanup_partial_removes_only_this_keys_temporaries(local):
    key = local.object_key("MUG-001", "shopify.jpg")
    folder = local.base_path / "MUG-001"
    folder.mkdir(parents=True)
    ours = folder / ".shopify.jpg.k3j4h5.lightbox-tmp"  # what a killed process leaves behind
    other = folder / ".amazon.jpg.k3j4h5.lightbox-tmp"
    ours.write_bytes(b"half")
    other.write_bytes(b"half")
    assert local.cleanup_partial(key, SHA, CTX) == [str(ours)]
    assert not ours.exists() and other.exists()
    assert local.cleanup_partial(local.object_key("NEW-SKU", "x.jpg"), SHA, CTX) == []


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_local_object_key_refuses_path_like_names(local, name):
    with pytest.raises(ValueError):
        local.object_key(name, "shopify.jpg")
    with pytest.raises(ValueError):
        local.object_key("MUG-001", name)


@pytest.mark.parametrize("key", HOSTILE_KEYS)
def test_local_put_refuses_keys_that_escape(local, key):
    with pytest.raises(ValueError):
        local.put(key, DATA, content_type="image/jpeg", sha256=SHA, context=CTX)
    assert not local.base_path.exists()


def test_local_put_refuses_a_symlink_that_points_outside(local, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    local.base_path.mkdir()
    (local.base_path / "MUG-001").symlink_to(outside)
    with pytest.raises(ValueError, match="outside"):
        local.put("MUG-001/shopify.jpg", DATA, content_type="image/jpeg", sha256=SHA, context=CTX)
    assert list(outside.iterdir()) == []


def test_local_refuses_wrong_sha_and_relative_base(local, tmp_path):
    with pytest.raises(ValueError, match="sha256"):
        local.put("MUG-001/a.jpg", DATA, content_type="image/jpeg", sha256="0" * 64, context=CTX)
    with pytest.raises(ValueError, match="absolute"):
        LocalFolderDestination(base_path="relative/exports")


def test_export_context_validates_profile_and_product_id():
    numeric = ExportContext(sku="A", profile="p", product_id="42")
    assert numeric.product_id == "gid://shopify/Product/42"
    with pytest.raises(ValueError):
        ExportContext(sku="A", profile="../p")
    with pytest.raises(ValueError):
        ExportContext(sku="A", profile="p", product_id="gid://shopify/Collection/1")


# --- S3 on a loopback moto server ----------------------------------------------------------


@pytest.fixture
def s3(s3_endpoint):  # noqa: F811  (the fixture is imported above)
    bucket = create_bucket(s3_endpoint)
    return s3_destination(s3_endpoint, bucket, prefix="exports")


def count_calls(dest, operation: str) -> list:
    calls = []
    events = dest.get_client().meta.events
    events.register(f"before-call.s3.{operation}", lambda **kwargs: calls.append(1))
    return calls


def test_s3_put_stores_bytes_content_type_and_sha256(s3, s3_endpoint):  # noqa: F811
    key = s3.object_key("MUG-001", "shopify.jpg")
    uri = s3.put(key, DATA, content_type="image/jpeg", sha256=SHA, context=CTX)
    bucket = s3.bucket.bucket_name
    assert uri == f"s3://{bucket}/exports/MUG-001/shopify.jpg"
    assert s3.destination_id == f"s3://{bucket}/exports"
    got = s3_client(s3_endpoint).get_object(Bucket=bucket, Key="exports/MUG-001/shopify.jpg")
    assert got["Body"].read() == DATA
    assert got["ContentType"] == "image/jpeg"
    assert got["Metadata"] == {"sha256": SHA}


def test_s3_re_put_of_the_same_bytes_does_not_rewrite(s3, s3_endpoint):  # noqa: F811
    key = s3.object_key("MUG-001", "shopify.jpg")
    puts = count_calls(s3, "PutObject")
    s3.put(key, DATA, content_type="image/jpeg", sha256=SHA, context=CTX)
    head = s3_client(s3_endpoint).head_object(Bucket=s3.bucket.bucket_name, Key=s3.full_key(key))
    s3.put(key, DATA, content_type="image/jpeg", sha256=SHA, context=CTX)
    assert len(puts) == 1
    again = s3_client(s3_endpoint).head_object(Bucket=s3.bucket.bucket_name, Key=s3.full_key(key))
    assert (again["ETag"], again["LastModified"]) == (head["ETag"], head["LastModified"])
    newer = b"a re-render"
    s3.put(key, newer, content_type="image/jpeg", sha256=sha(newer), context=CTX)
    assert len(puts) == 2


def test_s3_large_object_goes_multipart_with_its_metadata(s3_endpoint):  # noqa: F811
    dest = s3_destination(s3_endpoint, create_bucket(s3_endpoint), multipart_threshold_mb=5)
    data = os.urandom(6 * 1024 * 1024)
    parts = count_calls(dest, "UploadPart")
    dest.put("BIG/hero.png", data, content_type="image/png", sha256=sha(data), context=CTX)
    assert len(parts) == 2
    head = s3_client(s3_endpoint).head_object(Bucket=dest.bucket.bucket_name, Key="BIG/hero.png")
    assert head["Metadata"] == {"sha256": sha(data)} and head["ContentType"] == "image/png"


def test_s3_presigned_url_is_fetchable(s3):
    key = s3.object_key("MUG-001", "thumb.jpg")
    s3.put(key, DATA, content_type="image/jpeg", sha256=SHA, context=CTX)
    response = httpx.get(s3.presigned_url(key, expires=60), timeout=10)
    assert response.status_code == 200 and response.content == DATA
    with pytest.raises(ValueError, match="expires"):
        s3.presigned_url(key, expires=0)


def test_s3_cleanup_partial_aborts_only_this_keys_multipart_uploads(s3, s3_endpoint):  # noqa: F811
    client, bucket = s3_client(s3_endpoint), s3.bucket.bucket_name
    key = s3.object_key("MUG-001", "shopify.jpg")
    ours = client.create_multipart_upload(Bucket=bucket, Key=s3.full_key(key))["UploadId"]
    client.upload_part(Bucket=bucket, Key=s3.full_key(key), UploadId=ours, PartNumber=1, Body=b"x")
    longer = s3.full_key(key) + ".bak"  # shares the prefix, must survive
    theirs = client.create_multipart_upload(Bucket=bucket, Key=longer)["UploadId"]
    assert s3.cleanup_partial(key, SHA, CTX) == [ours]
    left = client.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
    assert [(u["Key"], u["UploadId"]) for u in left] == [(longer, theirs)]
    assert s3.cleanup_partial(key, SHA, CTX) == []


@pytest.mark.parametrize("key", HOSTILE_KEYS)
def test_s3_refuses_unsafe_keys(s3, key):
    with pytest.raises(ValueError):
        s3.put(key, DATA, content_type="image/jpeg", sha256=SHA, context=CTX)
    with pytest.raises(ValueError):
        s3.presigned_url(key)
    with pytest.raises(ValueError):
        s3.object_key("..", "x.jpg")


class _Raw:
    def stream(self, **kwargs):
        yield b"<Error><Code>SlowDown</Code><Message>Reduce your request rate.</Message></Error>"


def _slow_down_first(attempts: list):
    def before_send(request, **kwargs):
        attempts.append(request.url)
        if len(attempts) == 1:
            return AWSResponse(request.url, 503, {}, _Raw())
        return None

    return before_send


def test_s3_retries_throttling_with_standard_mode(s3):
    client = s3.get_client()
    assert client.meta.config.retries["mode"] == "standard"
    attempts: list = []
    client.meta.events.register("before-send.s3.PutObject", _slow_down_first(attempts))
    s3.put("MUG-001/a.jpg", DATA, content_type="image/jpeg", sha256=SHA, context=CTX)
    assert len(attempts) == 2


def test_s3_gives_up_after_max_attempts(s3_endpoint):  # noqa: F811
    dest = s3_destination(s3_endpoint, create_bucket(s3_endpoint), max_attempts=1)
    attempts: list = []
    dest.get_client().meta.events.register("before-send.s3.PutObject", _slow_down_first(attempts))
    with pytest.raises(ClientError, match="SlowDown"):
        dest.put("MUG-001/a.jpg", DATA, content_type="image/jpeg", sha256=SHA, context=CTX)
    assert len(attempts) == 1
