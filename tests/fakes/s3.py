"""A loopback S3-compatible endpoint for tests: moto's ``ThreadedMotoServer`` on 127.0.0.1.

Usage in a test module::

    from tests.fakes.s3 import create_bucket, s3_endpoint  # noqa: F401  (fixture)

    def test_upload(s3_endpoint):
        bucket = create_bucket(s3_endpoint)
        dest = s3_destination(s3_endpoint, bucket, prefix="exports")

The server is started once per test session on a free port and stopped at the end; give
each test its own bucket (``create_bucket`` makes a unique name) instead of resetting it.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import boto3
import pytest
from moto.server import ThreadedMotoServer

REGION = "us-east-1"
ACCESS_KEY_ID = "lightbox-test-key"
SECRET_ACCESS_KEY = "lightbox-test-secret"  # moto accepts any credentials


@contextmanager
def moto_s3_server() -> Iterator[str]:
    """Run moto's server on 127.0.0.1 (a free port) and yield its endpoint URL."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """Endpoint URL of a loopback S3-compatible server shared by the test session."""
    with moto_s3_server() as url:
        yield url


def s3_client(endpoint_url: str):
    """A plain boto3 client on the loopback server, for setting up and inspecting buckets."""
    return boto3.client(
        "s3",
        endpoint_url=endpoint_url,
        region_name=REGION,
        aws_access_key_id=ACCESS_KEY_ID,
        aws_secret_access_key=SECRET_ACCESS_KEY,
    )


def create_bucket(endpoint_url: str, name: str | None = None) -> str:
    """Create a bucket (a unique name unless given) and return its name."""
    name = name or f"lightbox-test-{uuid.uuid4().hex[:12]}"
    s3_client(endpoint_url).create_bucket(Bucket=name)
    return name


def s3_destination(endpoint_url: str, bucket: str, prefix: str = "", **fields):
    """An ``S3Destination`` block pointed at the loopback server."""
    from prefect_aws import AwsCredentials, S3Bucket

    from blocks.destinations import S3Destination

    credentials = AwsCredentials(
        aws_access_key_id=ACCESS_KEY_ID,
        aws_secret_access_key=SECRET_ACCESS_KEY,
        region_name=REGION,
        aws_client_parameters={"endpoint_url": endpoint_url},
    )
    return S3Destination(bucket=S3Bucket(bucket_name=bucket, credentials=credentials), prefix=prefix, **fields)
