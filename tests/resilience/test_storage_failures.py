"""Storage that fails on write: a local disk that is full (``OSError(ENOSPC)``) and an S3
endpoint that answers every upload with an error. The export is retried, then the SKU
fails with the reason — never reported exported; once storage works again a re-run
delivers everything exactly once."""

from __future__ import annotations

import errno
import threading
import uuid
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from blocks.destinations import LocalFolderDestination
from tasks.records import DestinationSpec
from tests.fakes.s3 import create_bucket, s3_client, s3_destination, s3_endpoint  # noqa: F401
from tests.resilience._support import (
    assert_every_sku_terminal,
    assert_exported_once,
    batch_rows,
    export_rows,
    file_identities,
    run_batch,
    write_catalog,
)

pytestmark = pytest.mark.usefixtures("prefect_harness")

SKUS = 4
FULL_DISK_SKU = "SKU-01"


class FailingS3(BaseHTTPRequestHandler):
    """An S3 endpoint whose disk is gone: HEAD finds nothing, every write answers 503."""

    protocol_version = "HTTP/1.1"
    requests: Counter = Counter()
    ERROR = (
        b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>ServiceUnavailable</Code>'
        b"<Message>storage backend unavailable (test)</Message></Error>"
    )

    def _answer(self, status: int, body: bytes = b"") -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        self.requests[self.command] += 1
        self.send_response(status)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_HEAD(self):  # noqa: N802 (http.server's names)
        self._answer(404)

    def do_PUT(self):  # noqa: N802
        self._answer(503, self.ERROR)

    do_POST = do_GET = do_DELETE = do_PUT  # noqa: N815

    def log_message(self, *args):  # keep the test output clean
        pass


@pytest.fixture
def failing_s3():
    server = ThreadingHTTPServer(("127.0.0.1", 0), FailingS3)
    FailingS3.requests = Counter()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join(10)


def _save_s3_block(endpoint: str, bucket: str, name: str, **fields) -> str:
    s3_destination(endpoint, bucket, prefix="exports", **fields).save(name, overwrite=True)
    return f"lightbox-s3-destination/{name}"


def test_full_disk_and_failing_s3_fail_the_skus_with_the_reason_then_rerun_exports_once(
    tmp_path, thumb_settings, monkeypatch, failing_s3, s3_endpoint
):  # noqa: F811
    manifest = write_catalog(tmp_path / "catalog", SKUS)
    out, settings = tmp_path / "out", thumb_settings()
    bucket = create_bucket(s3_endpoint)
    block_name = f"resilience-{uuid.uuid4().hex[:8]}"
    block = _save_s3_block(failing_s3, bucket, block_name, max_attempts=2)
    destinations = [DestinationSpec(), DestinationSpec(block=block)]

    real_put = LocalFolderDestination.put
    full_disk_puts = Counter()

    def put_on_full_disk(self, key, data, **kw):
        if key.startswith(f"{FULL_DISK_SKU}/"):
            full_disk_puts[key] += 1
            raise OSError(errno.ENOSPC, "No space left on device", key)
        return real_put(self, key, data, **kw)

    monkeypatch.setattr(LocalFolderDestination, "put", put_on_full_disk)
    report = run_batch(manifest, out, settings, destinations=destinations)

    states = batch_rows(settings.database_url, report["batch_id"])
    rendered_ok = {e["sku"] for e in report["skus"] if e["state"] != "rejected"}
    assert rendered_ok, "no SKU passed QC: nothing reached export"
    for sku in rendered_ok:
        state, why = states[sku]
        assert state == "failed", f"{sku} is {state} though its storage failed"
        if sku == FULL_DISK_SKU:
            assert "No space left on device" in why, why
        else:
            assert "ServiceUnavailable" in why or "storage backend unavailable" in why, why
    assert not [e for e in report["skus"] if e["state"] == "exported"]
    if FULL_DISK_SKU in rendered_ok:
        assert max(full_disk_puts.values()) > 1, "the full disk was not retried"
    assert FailingS3.requests["PUT"] >= 2 * (len(rendered_ok) - (FULL_DISK_SKU in rendered_ok)), (
        f"S3 uploads were not retried: {dict(FailingS3.requests)}"
    )
    assert all(
        r.status == "pending" for r in export_rows(settings.database_url) if r.destination.startswith("s3://")
    ), "an S3 export that failed is recorded done"

    # storage works again: the same batch, re-run, delivers everything once
    monkeypatch.setattr(LocalFolderDestination, "put", real_put)
    _save_s3_block(s3_endpoint, bucket, block_name)
    local_before = file_identities(out)
    again = run_batch(manifest, out, settings, destinations=destinations)
    assert_every_sku_terminal(settings.database_url, again, {f"SKU-{i:02d}" for i in range(SKUS)})
    exported = {e["sku"] for e in again["skus"] if e["state"] == "exported"}
    assert exported == rendered_ok
    keys = assert_exported_once(settings.database_url, out)
    after = file_identities(out)
    assert all(after[k] == v for k, v in local_before.items()), "a file delivered before was rewritten"

    s3_rows = [r for r in export_rows(settings.database_url) if r.destination.startswith("s3://")]
    assert Counter(r.destination_key for r in s3_rows).most_common(1)[0][1] == 1
    assert {r.destination_key for r in s3_rows} == set(keys)
    assert all(r.status == "done" for r in s3_rows)
    listed = s3_client(s3_endpoint).list_objects_v2(Bucket=bucket, Prefix="exports/")
    assert sorted(o["Key"] for o in listed.get("Contents", [])) == sorted(f"exports/{k}" for k in keys)
