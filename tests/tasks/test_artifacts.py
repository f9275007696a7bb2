"""Artifact keys (tasks/artifacts.py): stable per batch name, in Prefect's key alphabet."""

import re

from tasks.artifacts import artifact_key, link_store


def test_keys_are_stable_and_in_prefects_alphabet():
    assert artifact_key("batch-summary", "nightly") == "batch-summary-nightly"
    assert artifact_key("batch-summary", "Nightly_EU 2") == "batch-summary-nightly-eu-2"
    assert artifact_key("batch-summary", "ÄÖ/..") == "batch-summary-batch"
    long = artifact_key("batch-progress", "x" * 500)
    for key in (long, artifact_key("batch-qc", "--a--b--")):
        assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", key), key
    assert len(long) <= 200


def test_reports_go_to_the_s3_thumbnail_store_never_an_export_bucket():
    assert link_store(None) is None
    assert link_store("lightbox-s3-destination/thumbs") == "lightbox-s3-destination/thumbs"
    assert link_store("lightbox-local-folder/exports") is None
