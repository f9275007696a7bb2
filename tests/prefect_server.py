"""A real Prefect server, a process work pool, a deployment and a worker, on loopback.

For tests that need what an ephemeral API cannot give: suspending a flow run (needs a
deployment) and resuming it from outside, as the UI does. ``tests/conftest.py`` exposes
the ``batch_deployment`` session fixture from here.

Processes are started in their own session and stopped by their own ids, the worker before
the server (a process worker ignores SIGTERM once its server is gone).

The server keeps its state in PostgreSQL, as the compose stack's does (infra/compose.yaml;
infra/stack.py when PREFECT_API_DATABASE_CONNECTION_URL is set): a fresh database per server
on the tests' PostgreSQL (``LIGHTBOX_TEST_PG``, see tests/conftest.py), dropped when the
server has stopped. Only where that PostgreSQL cannot be reached does it fall back to
SQLite in its PREFECT_HOME (with a warning).
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from uuid import UUID

import httpx
import pytest

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples" / "catalog"
SERVER_START_TIMEOUT_S = 180
CUP, STICKER = "CUP-ESPRESSO-01", "STICKER-LOGO"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class PrefectServer:
    url: str  # the UI; the API is url + "/api"
    home: Path
    env: dict[str, str]  # what a client process (worker, CLI) needs to talk to it
    database_url: str | None = None  # the server's postgresql+asyncpg:// database; None: SQLite in home

    @property
    def api_url(self) -> str:
        return f"{self.url}/api"


def _stop(proc: subprocess.Popen, grace_s: float = 20.0) -> None:
    """SIGTERM the process group we started, then SIGKILL it if it does not exit."""
    if proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(grace_s)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)


def _log_tail(path: Path, lines: int = 40) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""


def _reachable_pg() -> str | None:
    """The tests' PostgreSQL (``PG_ADMIN_URL`` of tests/conftest.py, ``LIGHTBOX_TEST_PG``) as a
    libpq DSN, or None (and a warning) when it does not answer."""
    import psycopg

    from tests.conftest import _pg_admin_dsn  # not at the top: conftest imports this module

    dsn = _pg_admin_dsn()
    try:
        psycopg.connect(dsn, autocommit=True, connect_timeout=5).close()
    except psycopg.OperationalError as exc:
        reason = (str(exc).splitlines() or [type(exc).__name__])[0]
        warnings.warn(f"PostgreSQL at {dsn} not reachable ({reason}): Prefect test server on SQLite", stacklevel=4)
        return None
    return dsn


@contextmanager
def _prefect_database() -> Iterator[str | None]:
    """A fresh, empty PostgreSQL database ``prefect_test_<8 hex>`` for one Prefect server,
    yielded as its ``postgresql+asyncpg://`` URL and dropped on the way out; None (Prefect's
    default, SQLite in PREFECT_HOME) when PostgreSQL is not reachable."""
    dsn = _reachable_pg()
    if dsn is None:
        yield None
        return
    import psycopg
    from sqlalchemy.engine import make_url

    name = f"prefect_test_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(dsn, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield make_url(dsn).set(drivername="postgresql+asyncpg", database=name).render_as_string(hide_password=False)
    finally:  # after the server stopped; FORCE ends any connection it left behind
        with psycopg.connect(dsn, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def run_prefect_server(root: Path) -> Iterator[PrefectServer]:
    """``prefect server start`` on a free loopback port with its own PREFECT_HOME and its own
    PostgreSQL database (``_prefect_database``: dropped after the server stopped; SQLite in
    PREFECT_HOME only when PostgreSQL is unreachable)."""
    with _prefect_database() as database_url, _serve(root, database_url) as server:
        yield server


@contextmanager
def _serve(root: Path, database_url: str | None) -> Iterator[PrefectServer]:
    home = root / "prefect-home"
    home.mkdir(parents=True)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    if database_url is not None:
        env["PREFECT_API_DATABASE_CONNECTION_URL"] = database_url
    env.update(
        PREFECT_HOME=str(home),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PREFECT_SERVER_SERVICES_SCHEDULER_ENABLED="false",
        PREFECT_SERVER_SERVICES_PAUSE_EXPIRATIONS_LOOP_SECONDS="2",
        PREFECT_UI_API_URL=f"{url}/api",
        PREFECT_LOGGING_LEVEL="WARNING",
    )
    log = root / "server.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            cwd=root,
        )
    try:
        deadline = time.monotonic() + SERVER_START_TIMEOUT_S
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"prefect server exited with {proc.returncode}:\n{_log_tail(log)}")
            try:
                if httpx.get(f"{url}/api/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"prefect server not healthy in {SERVER_START_TIMEOUT_S} s:\n{_log_tail(log)}")
            time.sleep(0.5)
        client_env = {**env, "PREFECT_API_URL": f"{url}/api"}
        for server_only in ("PREFECT_UI_API_URL", "PREFECT_API_DATABASE_CONNECTION_URL"):
            client_env.pop(server_only, None)
        yield PrefectServer(url=url, home=home, env=client_env, database_url=database_url)
    finally:
        _stop(proc)


@contextmanager
def run_process_worker(server: PrefectServer, pool: str, root: Path, env: dict[str, str]) -> Iterator[Path]:
    """``prefect worker start --pool POOL`` polling every second; yields its log file."""
    log = root / f"worker-{pool}.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            # no --limit: a limited 3.8.8 worker crashes ("this borrower is already holding one
            # of this CapacityLimiter's tokens") when a run it just saw suspend is resumed
            # before the suspended process has exited
            [sys.executable, "-m", "prefect", "worker", "start", "--pool", pool, "--type", "process"],
            env={
                **server.env,
                "PREFECT_WORKER_QUERY_SECONDS": "1",
                "PREFECT_WORKER_PREFETCH_SECONDS": "1",
                "PREFECT_LOGGING_LEVEL": "INFO",
                **env,
            },
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            cwd=REPO,
        )
    try:
        yield log
    finally:
        _stop(proc)


POOL = "lightbox-test"
DEPLOYMENT = "review-test"


@dataclass
class BatchDeployment:
    """catalog-batch deployed to a process pool on a real server, with a worker running."""

    server: PrefectServer
    name: str  # "catalog-batch/review-test", for run_deployment
    root: Path  # session folder: server home, worker log, results
    worker_log: Path

    def api(self):
        """Settings for talking to this server from the test process."""
        from prefect.settings import PREFECT_API_URL, temporary_settings

        return temporary_settings({PREFECT_API_URL: self.server.api_url})


def deploy_catalog_batch(server: PrefectServer) -> str:
    """Create the process pool and deploy the batch flow from this working tree (no image:
    the process worker runs it from the folder, ``flow.from_source`` + ``deploy``)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.workers.process import ProcessWorker

    from flows.catalog_batch import catalog_batch

    with get_client(sync_client=True) as client:
        client.create_work_pool(
            WorkPoolCreate(name=POOL, type="process", base_job_template=ProcessWorker.get_default_base_job_template())
        )
    flow = catalog_batch.from_source(source=str(REPO), entrypoint="flows/catalog_batch.py:catalog_batch")
    flow.deploy(
        name=DEPLOYMENT, work_pool_name=POOL, build=False, push=False, print_next_steps=False, ignore_warnings=True
    )
    return f"{flow.name}/{DEPLOYMENT}"


@pytest.fixture(scope="session")
def batch_deployment(tmp_path_factory) -> Iterator[BatchDeployment]:
    """A Prefect server on loopback (own PREFECT_HOME and PostgreSQL database, see
    ``run_prefect_server``), catalog-batch deployed to a process pool, and a worker polling
    it every second. Stopped worker first."""
    root = tmp_path_factory.mktemp("prefect-server")
    with run_prefect_server(root) as server:
        deployed = BatchDeployment(server=server, name="", root=root, worker_log=root)
        with deployed.api():
            deployed.name = deploy_catalog_batch(server)
        worker_env = {"PREFECT_LOCAL_STORAGE_PATH": str(root / "results")}
        with run_process_worker(server, POOL, root, worker_env) as log:
            deployed.worker_log = log
            yield deployed


# --- running batches on it ----------------------------------------------------------


def small_manifest(folder: Path, skus: tuple[str, ...], fresh: bool = False) -> Path:
    """The sample manifest's rows for ``skus``. The session's server shares one result store,
    so a SKU another test rendered is reused from the cache and runs no shard; ``fresh``
    nudges one pixel of every photo so this test's SKUs are new and render."""
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copytree(EXAMPLES / "images", folder / "images", dirs_exist_ok=True)
    if fresh:
        from PIL import Image

        for photo in (folder / "images").iterdir():
            if photo.suffix.lower() in (".png", ".jpg", ".jpeg"):
                try:
                    with Image.open(photo) as im:
                        im.load()
                        nudged, fmt = im.copy(), im.format
                except OSError:  # the sample's hostile files stay as they are
                    continue
                x, y = secrets.randbelow(nudged.width), secrets.randbelow(nudged.height)
                pixel = nudged.getpixel((x, y))
                bump = (lambda v: v ^ 1) if not isinstance(pixel, tuple) else (lambda v: tuple(c ^ 1 for c in v))
                nudged.putpixel((x, y), bump(pixel))
                nudged.save(photo, format=fmt, quality=95)
    rows = [line for line in (EXAMPLES / "manifest.csv").read_text().splitlines() if line.startswith(("sku,", *skus))]
    (folder / "manifest.csv").write_text("\n".join(rows) + "\n")
    return folder / "manifest.csv"


def start_batch(deployed, manifest: Path, out: Path, settings, **params) -> UUID:
    from prefect.deployments import run_deployment

    with deployed.api():
        run = run_deployment(
            deployed.name,
            timeout=0,
            parameters=dict(
                manifest=str(manifest),
                out_dir=str(out),
                settings=settings.model_dump(mode="json"),
                profiles=["shopify"],
                **params,
            ),
        )
    return run.id


def wait_for(deployed, run_id: UUID, done, what: str, timeout_s: float = 240):
    """Poll the run until ``done(state)``; a run that ends otherwise fails the test with the
    worker's log tail."""
    from prefect.client.orchestration import get_client

    deadline = time.monotonic() + timeout_s
    with deployed.api(), get_client(sync_client=True) as client:
        while True:
            state = client.read_flow_run(run_id).state
            if state is not None and done(state):
                return state
            if state is not None and state.is_final() or time.monotonic() > deadline:
                log = deployed.worker_log.read_text(errors="replace")[-6000:]
                pytest.fail(
                    f"run {run_id} is {state.name if state else None} ({state.message if state else ''}), "
                    f"not {what}\n--- worker log ---\n{log}"
                )
            time.sleep(1)


def suspended_at(key: str):
    return lambda state: state.is_paused() and state.state_details.pause_key == key


def resume(deployed, run_id: UUID, answer: dict) -> None:
    from prefect.flow_runs import resume_flow_run

    with deployed.api():
        resume_flow_run(run_id, run_input=answer)
