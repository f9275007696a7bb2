"""A run's settings as its tasks use them: the blocks a deployment names, loaded when the
run starts (docs/ARCHITECTURE.md#deployment).

A deployment's parameters carry block names only (``catalog_block``, ``model_store_block``),
so no flow-run parameter holds the catalog URL or its password, and a changed block is
used by the next run without a redeploy. Each flow calls ``load_settings`` first, hands
the resolved settings to its tasks (task parameters are not stored by the API) and the
unresolved ones to its subflows and ``run_deployment`` calls, which resolve for themselves.

Which value wins:
- the catalog: ``database_url`` or ``catalog_block``, never both (``RunSettings`` refuses);
- ``model_dir``, ``segmenter``, ``upscaler``, ``device``: the ModelStore block's, when one is
  named (``RunSettings`` refuses other values beside it: the block describes the pool's
  machines, and ops change it there);
- ``diffusion``: the block's keys, with any key the settings give laid over them (a run may
  point one lifestyle model at other weights).
"""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE

from blocks.catalog_db import CatalogDatabase
from blocks.model_store import ModelStore
from tasks.bookkeeping import DB_RETRIES
from tasks.common import retry_transient
from tasks.records import RunSettings

# The loaded values may hold the catalog's password: never cached or persisted. An
# unreachable API is retried, a missing block is not.
UNSTORED = dict(cache_policy=NO_CACHE, persist_result=False, retry_condition_fn=retry_transient, **DB_RETRIES)


def catalog_url(settings: RunSettings) -> str:
    """The catalog's URL: ``database_url``, or the URL of the ``catalog_block`` (loaded now)."""
    return _catalog_url(settings.database_url, settings.catalog_block)


def _catalog_url(database_url: str | None, catalog_block: str | None) -> str:
    if (database_url is None) == (catalog_block is None):
        raise ValueError("the catalog is reached one way: give database_url or catalog_block, not both or neither")
    if database_url is not None:
        return database_url
    return _load(CatalogDatabase, catalog_block).get_url()


def resolve_settings(settings: RunSettings) -> RunSettings:
    """``settings`` with the named blocks loaded into their fields and the names cleared
    (settings that name no block come back as they are). Raises ``ValueError`` naming a
    block that is not saved."""
    if settings.resolved:
        return settings
    update: dict = {"catalog_block": None, "model_store_block": None, "database_url": catalog_url(settings)}
    if settings.model_store_block is not None:
        store = _load(ModelStore, settings.model_store_block)
        update.update(
            model_dir=store.model_dir,
            segmenter=store.segmenter,
            upscaler=store.upscaler,
            device=store.device,
            diffusion={**store.diffusion, **settings.diffusion},
        )
    return RunSettings.model_validate({**settings.model_dump(), **update})


def _load(block_type, name: str):
    try:
        return block_type.load(name)
    except ValueError as exc:  # Block.load: "Unable to find block document named ..."
        if "Unable to find block document" not in str(exc):
            raise
        raise ValueError(f"{exc}: save it first (python -m infra.bootstrap), or name another in settings") from None


@task(name="load_settings", **UNSTORED)
def load_settings(settings: RunSettings) -> RunSettings:
    """The run's settings with its blocks loaded (``resolve_settings``)."""
    return resolve_settings(settings)


@task(name="load_catalog_url", **UNSTORED)
def load_catalog_url(database_url: str | None, catalog_block: str | None) -> str:
    """The catalog's URL for a flow that needs nothing else (reconcile-shopify): the URL
    given, or the ``CatalogDatabase`` block's, loaded now."""
    return _catalog_url(database_url, catalog_block)
