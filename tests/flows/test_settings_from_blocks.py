"""Deployed batches carry block names, not values (issue 13, configuration at run time).

On a real Prefect server (the session's ``batch_deployment``: catalog-batch deployed to a
process pool, a worker running it), a batch whose parameters name a CatalogDatabase block
(its PostgreSQL URL holding a password; trust auth ignores it) and a ModelStore block:
- it runs, and no flow run of it (the batch and its shards), no task run, log or the
  deployment holds the password, read back through the API;
- a block changed after deploying is what the next run uses, with no redeploy.
"""

from __future__ import annotations

from uuid import uuid4

import pytest

from catalog.db import session_scope
from catalog.models import Batch
from tests.conftest import _reset_pg
from tests.prefect_server import STICKER, small_manifest, start_batch, wait_for

pytestmark = [pytest.mark.server, pytest.mark.postgres]
PASSWORD = "s3cret-pw"


@pytest.fixture
def blocks(batch_deployment, pg_server_url, model_dir):
    """A CatalogDatabase block whose URL holds a password and a ModelStore block, saved on
    the session server under names of their own; the catalog is an empty PostgreSQL."""
    from blocks.catalog_db import CatalogDatabase
    from blocks.model_store import ModelStore

    _reset_pg(pg_server_url)
    url = pg_server_url.replace("://postgres@", f"://postgres:{PASSWORD}@")
    assert PASSWORD in url
    catalog, store = f"catalog-{uuid4().hex[:8]}", f"models-{uuid4().hex[:8]}"
    with batch_deployment.api():
        CatalogDatabase(url=url).save(catalog)
        ModelStore(model_dir=model_dir, upscaler="lanczos").save(store)  # classical upscaling: fast
    return catalog, store, url


def _named_settings(batch_deployment, run_settings, catalog: str, store: str):
    return run_settings(
        data_dir=batch_deployment.root / "data",
        database_url=None,
        catalog_block=catalog,
        model_store_block=store,
        model_dir=None,
        upscaler="auto",  # the default: the block's value is used
    )


def _batch_ids(url: str) -> set[str]:
    with session_scope(url) as s:
        return {b.id for b in s.query(Batch).all()}


def test_no_flow_run_holds_the_catalog_password(batch_deployment, blocks, tmp_path, run_settings):
    from prefect.client.orchestration import get_client

    catalog, store, url = blocks
    settings = _named_settings(batch_deployment, run_settings, catalog, store)
    manifest = small_manifest(tmp_path / "catalog", (STICKER,), fresh=True)
    name = f"blocks-{uuid4().hex[:6]}"
    run_id = start_batch(batch_deployment, manifest, tmp_path / "out", settings, name=name)
    state = wait_for(batch_deployment, run_id, lambda s: s.is_final(), "final", timeout_s=300)
    assert state.is_completed() and state.name == "Completed", (state.name, state.message)
    assert run_id.hex in _batch_ids(url)  # the batch found its catalog through the block

    with batch_deployment.api(), get_client(sync_client=True) as client:
        runs = client.read_flow_runs()
        ours = [r for r in runs if f"batch:{name}" in r.tags]
        assert {r.name.split("-")[0] for r in ours} == {"batch", "render"}, [r.name for r in ours]
        shard = next(r for r in ours if r.name.startswith("render"))
        assert shard.parameters["settings"]["catalog_block"] == catalog
        assert shard.parameters["settings"]["database_url"] is None
        for run in runs:
            assert PASSWORD not in run.model_dump_json(), run.name
        for task_run in client.read_task_runs():
            assert PASSWORD not in task_run.model_dump_json(), task_run.name
        for log in client.read_logs():
            assert PASSWORD not in log.message, log.message
        deployment = client.read_deployment_by_name(batch_deployment.name)
        assert PASSWORD not in deployment.model_dump_json()


def test_a_block_changed_after_deploying_is_used_by_the_next_run(batch_deployment, blocks, tmp_path, run_settings):
    from blocks.catalog_db import CatalogDatabase
    from catalog.db import migrate

    catalog, store, url = blocks
    settings = _named_settings(batch_deployment, run_settings, catalog, store)
    manifest = small_manifest(tmp_path / "catalog", (STICKER,), fresh=True)
    first = start_batch(batch_deployment, manifest, tmp_path / "out-1", settings, name="before-move")
    assert wait_for(batch_deployment, first, lambda s: s.is_final(), "final", timeout_s=300).is_completed()

    moved = f"sqlite:///{tmp_path / 'moved.db'}"  # ops move the catalog: the block changes, nothing is redeployed
    with batch_deployment.api():
        CatalogDatabase(url=moved).save(catalog, overwrite=True)
    second = start_batch(batch_deployment, manifest, tmp_path / "out-2", settings, name="after-move")
    assert wait_for(batch_deployment, second, lambda s: s.is_final(), "final", timeout_s=300).is_completed()

    migrate(moved)
    assert first.hex in _batch_ids(url) and second.hex not in _batch_ids(url)
    assert _batch_ids(moved) == {second.hex}
