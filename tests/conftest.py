"""Shared fixtures: catalog databases (SQLite and a per-run PostgreSQL database), model dir."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest
import yaml

from tests.prefect_server import batch_deployment  # noqa: F401  (session fixture, real server)

REPO = Path(__file__).resolve().parents[1]
CLASSICAL_THRESHOLDS = REPO / "tests" / "fixtures" / "classical_enlargement.yaml"  # see its comment
CLASSICAL_ENLARGEMENT = yaml.safe_load(CLASSICAL_THRESHOLDS.read_text())
PG_ADMIN_URL = os.environ.get("LIGHTBOX_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def _pg_admin_dsn() -> str:
    return PG_ADMIN_URL.replace("postgresql+psycopg://", "postgresql://")


@pytest.fixture(scope="session")
def pg_server_url():
    """A fresh PostgreSQL database for this test run, dropped at the end."""
    import psycopg

    name = f"lightbox_test_{uuid.uuid4().hex[:10]}"
    try:
        admin = psycopg.connect(_pg_admin_dsn(), autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        pytest.fail(f"PostgreSQL at {PG_ADMIN_URL} is not reachable ({exc}); start it (README)")
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    yield f"{base}/{name}"
    from catalog.db import get_engine

    get_engine(f"{base}/{name}").dispose()
    with psycopg.connect(_pg_admin_dsn(), autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request, tmp_path):
    """A migrated, empty catalog database: SQLite file, or a fresh PostgreSQL schema."""
    from catalog.db import migrate

    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'catalog.db'}"
    else:
        url = request.getfixturevalue("pg_server_url")
        _reset_pg(url)
    migrate(url)
    return url


def _reset_pg(url: str) -> None:
    from sqlalchemy import text

    from catalog.db import get_engine

    with get_engine(url).begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))


@pytest.fixture(scope="session")
def model_dir() -> Path:
    """Where `lightbox models fetch` put the registry weights (Makefile runs it first)."""
    return Path(os.environ.get("LIGHTBOX_MODEL_DIR", REPO / ".lightbox" / "models"))


@pytest.fixture(scope="session")
def prefect_harness(tmp_path_factory):
    """One temporary Prefect API (SQLite) for every flow test of the session (~14 s once)."""
    from prefect.settings import PREFECT_LOCAL_STORAGE_PATH, temporary_settings
    from prefect.testing.utilities import prefect_test_harness

    storage = tmp_path_factory.mktemp("prefect-results")
    with prefect_test_harness(server_startup_timeout=120):
        with temporary_settings({PREFECT_LOCAL_STORAGE_PATH: str(storage)}):
            yield


EXAMPLES = REPO / "examples" / "catalog"


@pytest.fixture
def run_settings(tmp_path, tmp_path_factory, model_dir):
    """RunSettings for a batch on SQLite in tmp_path, classical upscaling (fast), accepting
    the enlargement the sample photos need from it (tests/fixtures/classical_enlargement.yaml).

    The test gets its own Prefect result storage too: a test that asserts on rendering
    must render, not find another test's cached results."""
    from prefect.settings import PREFECT_LOCAL_STORAGE_PATH, temporary_settings

    from tasks.records import RunSettings

    def make(**overrides):
        values = dict(
            data_dir=tmp_path / "data",
            database_url=f"sqlite:///{tmp_path / 'catalog.db'}",
            model_dir=model_dir,
            upscaler="lanczos",
            thresholds=dict(CLASSICAL_ENLARGEMENT),
        )
        values.update(overrides)
        return RunSettings(**values)

    results = tmp_path_factory.mktemp("prefect-results")  # outside tmp_path: tests check what lands there
    with temporary_settings({PREFECT_LOCAL_STORAGE_PATH: str(results)}):
        yield make
