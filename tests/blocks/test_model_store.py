"""ModelStore: weights mirrored on an S3-compatible server on loopback, checksums enforced."""

import pytest

from blocks.model_store import ModelStore
from imaging.weights import WEIGHTS, verify
from tests.fakes.s3 import create_bucket, s3_client, s3_endpoint  # noqa: F401 (fixture)


@pytest.fixture
def client(s3_endpoint):
    return s3_client(s3_endpoint)


def test_fetch_copies_from_the_s3_mirror_and_verifies(tmp_path, model_dir, client, s3_endpoint):
    create_bucket(s3_endpoint, "weights")
    source = model_dir / WEIGHTS["u2netp"].filename
    client.upload_file(str(source), "weights", f"v1/{WEIGHTS['u2netp'].filename}")
    store = ModelStore(model_dir=tmp_path / "models", s3_uri="s3://weights/v1")
    store._pull_from_s3(client)
    assert verify(tmp_path / "models", "u2netp")
    assert not (tmp_path / "models" / WEIGHTS["realesrgan-x4plus-ncnn-bin"].filename).exists()


def test_a_corrupt_mirror_copy_is_refused(tmp_path, client, s3_endpoint):
    create_bucket(s3_endpoint, "bad-weights")
    client.put_object(Bucket="bad-weights", Key=f"m/{WEIGHTS['u2netp'].filename}", Body=b"not a model")
    store = ModelStore(model_dir=tmp_path / "models", s3_uri="s3://bad-weights/m")
    with pytest.raises(ValueError, match="does not match the pinned"):
        store._pull_from_s3(client)
    assert not (tmp_path / "models" / WEIGHTS["u2netp"].filename).exists()


def test_s3_uri_is_validated(tmp_path):
    with pytest.raises(ValueError, match="s3://"):
        ModelStore(model_dir=tmp_path, s3_uri="https://example.com/weights")
