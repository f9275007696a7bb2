"""`lightbox run --catalog-block/--model-store-block`: the CLI builds its settings from the
blocks the way a deployed run does (tasks/settings.resolve_settings), so ops keep one place
for the catalog's URL and the pool's weights.

On a real Prefect server (the session's ``batch_deployment``): a CatalogDatabase block whose
PostgreSQL URL holds a password (trust auth ignores it) and a ModelStore block; the CLI run
exports into that catalog and the password is in no flow run the server stores. Without a
server to load blocks from, or with options the block sets, the run is refused before start.
"""

from __future__ import annotations

import os
import subprocess
from uuid import uuid4

import pytest

from catalog.db import session_scope
from catalog.models import Batch, Sku
from tests.conftest import CLASSICAL_THRESHOLDS, REPO, _reset_pg
from tests.prefect_server import STICKER, small_manifest

LIGHTBOX = str(REPO / ".venv" / "bin" / "lightbox")
PASSWORD = "s3cret-pw"


def _lightbox(tmp_path, manifest, env, *args, timeout=300):
    argv = [LIGHTBOX, "run", str(manifest), "--out", str(tmp_path / "out"), "--data-dir", str(tmp_path / "data")]
    return subprocess.run(
        [*argv, *args], cwd=REPO, capture_output=True, text=True, timeout=timeout, env={**env, "NO_COLOR": "1"}
    )


def test_a_block_without_a_server_to_load_it_from_is_refused(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env["PREFECT_HOME"] = str(tmp_path / "prefect")
    done = _lightbox(tmp_path, REPO / "examples" / "catalog" / "manifest.csv", env, "--catalog-block", "catalog")
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("lightbox: a block is loaded from a Prefect server: set PREFECT_API_URL")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("option", [["--upscaler", "lanczos"], ["--model-dir", "/models"], ["--segmenter", "u2netp"]])
def test_options_the_model_store_sets_are_refused_beside_it(tmp_path, option):
    env = {**os.environ, "PREFECT_HOME": str(tmp_path / "prefect")}
    manifest = REPO / "examples" / "catalog" / "manifest.csv"
    done = _lightbox(tmp_path, manifest, env, "--model-store-block", "gpu", *option, timeout=120)
    assert done.returncode == 2, done.stderr
    assert done.stderr == f"lightbox: {option[0]} given beside --model-store-block, which sets them\n"


@pytest.mark.server
@pytest.mark.postgres
def test_a_run_from_blocks_exports_into_the_blocks_catalog(batch_deployment, pg_server_url, model_dir, tmp_path):
    from prefect.client.orchestration import get_client

    from blocks.catalog_db import CatalogDatabase
    from blocks.model_store import ModelStore

    _reset_pg(pg_server_url)
    url = pg_server_url.replace("://postgres@", f"://postgres:{PASSWORD}@")
    catalog, store = f"catalog-{uuid4().hex[:8]}", f"models-{uuid4().hex[:8]}"
    with batch_deployment.api():
        CatalogDatabase(url=url).save(catalog)
        ModelStore(model_dir=model_dir, upscaler="lanczos").save(store)
    manifest = small_manifest(tmp_path / "catalog", (STICKER,), fresh=True)
    name = f"cli-blocks-{uuid4().hex[:6]}"
    env = {**batch_deployment.server.env, "PREFECT_HOME": str(tmp_path / "prefect")}
    done = _lightbox(
        tmp_path,
        manifest,
        env,
        *("--catalog-block", catalog, "--model-store-block", store, "--batch-name", name),
        *("--profile", "shopify", "--thresholds", str(CLASSICAL_THRESHOLDS)),
    )
    assert done.returncode == 0, done.stderr
    assert PASSWORD not in done.stdout + done.stderr
    with session_scope(url) as session:  # the block's catalog holds the batch
        (batch,) = session.query(Batch).filter(Batch.name == name).all()
        assert [s.state for s in session.query(Sku).filter(Sku.batch_id == batch.id)] == ["exported"]
    assert (tmp_path / "out" / STICKER / "shopify.jpg").is_file()

    with batch_deployment.api(), get_client(sync_client=True) as client:
        ours = [r for r in client.read_flow_runs() if f"batch:{name}" in r.tags]
        assert ours, "the CLI's batch run is on the server"
        for run in ours:
            assert run.parameters["settings"]["catalog_block"] == catalog
            assert run.parameters["settings"]["database_url"] is None
            assert PASSWORD not in run.model_dump_json(), run.name
