"""tasks/settings.py: a run's settings from the blocks its deployment names — the catalog
URL (with its password) from a CatalogDatabase block, weights, backends, device and the
lifestyle weights from a ModelStore block — and RunSettings' rule of one way to each."""

from pathlib import Path
from uuid import uuid4

import pytest
from pydantic import ValidationError

from blocks.catalog_db import CatalogDatabase
from blocks.model_store import ModelStore
from tasks.records import RunSettings
from tasks.settings import catalog_url, load_catalog_url, load_settings, resolve_settings

pytestmark = pytest.mark.usefixtures("prefect_harness")

SECRET_URL = "postgresql+psycopg://postgres:s3cret-pw@127.0.0.1:5432/lightbox"
DIFFUSION = {"inpaint": "/models/sdxl-inpaint", "controlnet_depth": "/models/controlnet-depth-sdxl"}


@pytest.fixture
def blocks(tmp_path):
    """A CatalogDatabase whose URL holds a password and a GPU-like ModelStore, saved under
    names of their own (the harness is shared by the session)."""
    catalog, store = f"catalog-{uuid4().hex[:8]}", f"gpu-{uuid4().hex[:8]}"
    CatalogDatabase(url=SECRET_URL).save(catalog)
    ModelStore(
        model_dir=tmp_path / "models",
        segmenter="birefnet-general",
        upscaler="realesrgan-x4plus",
        device="cuda",
        diffusion=DIFFUSION,
    ).save(store)
    return catalog, store


def named(tmp_path, **fields) -> RunSettings:
    return RunSettings(data_dir=tmp_path / "data", **fields)


def test_blocks_fill_the_settings(tmp_path, blocks):
    catalog, store = blocks
    settings = named(tmp_path, catalog_block=catalog, model_store_block=store, max_attempts=2)
    assert SECRET_URL not in settings.model_dump_json()  # what a deployment and its runs store
    resolved = resolve_settings(settings)
    assert resolved.database_url == SECRET_URL and resolved.catalog_block is None
    assert resolved.model_store_block is None and resolved.resolved
    assert (resolved.model_dir, resolved.segmenter, resolved.upscaler, resolved.device) == (
        tmp_path / "models",
        "birefnet-general",
        "realesrgan-x4plus",
        "cuda",
    )
    assert resolved.diffusion == DIFFUSION  # the lifestyle weights reach deployed runs
    assert (resolved.data_dir, resolved.max_attempts) == (tmp_path / "data", 2)  # the rest as given
    assert resolve_settings(resolved) == resolved


def test_settings_naming_no_block_come_back_as_they_are(tmp_path):
    settings = named(tmp_path, database_url="sqlite:///x.db", model_dir=tmp_path, upscaler="lanczos")
    assert resolve_settings(settings) is settings


def test_one_block_at_a_time(tmp_path, blocks):
    catalog, store = blocks
    only_catalog = resolve_settings(named(tmp_path, catalog_block=catalog, model_dir=tmp_path, device="mps"))
    assert (only_catalog.database_url, only_catalog.model_dir, only_catalog.device) == (SECRET_URL, tmp_path, "mps")
    only_models = resolve_settings(named(tmp_path, database_url="sqlite:///x.db", model_store_block=store))
    assert (only_models.database_url, only_models.device) == ("sqlite:///x.db", "cuda")


def test_diffusion_keys_given_are_laid_over_the_blocks(tmp_path, blocks):
    catalog, store = blocks
    settings = named(tmp_path, catalog_block=catalog, model_store_block=store, diffusion={"inpaint": "/other/inpaint"})
    assert resolve_settings(settings).diffusion == {**DIFFUSION, "inpaint": "/other/inpaint"}


def test_a_changed_block_is_what_the_next_resolve_uses(tmp_path, blocks):
    catalog, store = blocks
    settings = named(tmp_path, catalog_block=catalog, model_store_block=store)
    assert resolve_settings(settings).database_url == SECRET_URL
    CatalogDatabase(url=f"sqlite:///{tmp_path / 'moved.db'}").save(catalog, overwrite=True)
    ModelStore(model_dir=tmp_path / "new-models", device="cuda:1").save(store, overwrite=True)
    again = resolve_settings(settings)
    assert again.database_url == f"sqlite:///{tmp_path / 'moved.db'}"
    assert (again.model_dir, again.device, again.diffusion) == (tmp_path / "new-models", "cuda:1", {})


def test_a_missing_block_is_named(tmp_path):
    with pytest.raises(ValueError, match="no-such-catalog.*python -m infra.bootstrap"):
        resolve_settings(named(tmp_path, catalog_block="no-such-catalog", model_dir=tmp_path))
    with pytest.raises(ValueError, match="no-such-store"):
        resolve_settings(named(tmp_path, database_url="sqlite://", model_store_block="no-such-store"))


def test_the_catalog_is_reached_one_way(tmp_path):
    with pytest.raises(ValidationError, match="give database_url or catalog_block.*neither"):
        named(tmp_path, model_dir=tmp_path)
    with pytest.raises(ValidationError, match="not both") as both:
        named(tmp_path, database_url=SECRET_URL, catalog_block="catalog", model_dir=tmp_path)
    assert "s3cret-pw" not in str(both.value)  # an error never quotes the URL it was given


def test_model_fields_come_from_the_block_or_from_the_settings_not_both(tmp_path):
    with pytest.raises(ValidationError, match="give model_dir, or model_store_block"):
        named(tmp_path, database_url="sqlite://")
    with pytest.raises(ValidationError, match="model_dir, upscaler given beside model_store_block 'gpu'"):
        named(tmp_path, database_url="sqlite://", model_store_block="gpu", model_dir=tmp_path, upscaler="lanczos")
    defaults = named(tmp_path, database_url="sqlite://", model_store_block="gpu", segmenter="u2netp")
    assert defaults.model_store_block == "gpu"  # a default spelled out (a UI form does) is no clash


def test_existing_callers_still_pass_a_url(tmp_path):
    settings = RunSettings(data_dir=tmp_path, database_url="sqlite:///c.db", model_dir=Path("/m"))
    assert settings.resolved and catalog_url(settings) == "sqlite:///c.db"


def test_the_tasks_resolve_and_never_persist(tmp_path, blocks):
    from prefect import flow

    catalog, store = blocks

    @flow
    def uses_settings(settings: RunSettings) -> tuple[RunSettings, str]:
        return load_settings(settings), load_catalog_url(None, settings.catalog_block)

    resolved, url = uses_settings(named(tmp_path, catalog_block=catalog, model_store_block=store))
    assert resolved.database_url == url == SECRET_URL and resolved.device == "cuda"
    assert load_settings.persist_result is False and load_catalog_url.persist_result is False
    with pytest.raises(ValueError, match="not both or neither"):
        load_catalog_url.fn("sqlite://", catalog)
