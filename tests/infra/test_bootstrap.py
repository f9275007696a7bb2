"""infra/bootstrap.py against a real Prefect server on loopback (own PREFECT_HOME, free
port): it creates pools, queues, the GPU limit, variables and blocks; a second run changes
nothing; drift is repaired; --dry-run writes nothing; secrets never reach its output."""

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from infra.bootstrap import parser
from infra.desired import desired_blocks

ROOT = Path(__file__).resolve().parents[2]
TOKEN, WEBHOOK_SECRET, AWS_SECRET = "shpat_bootstrap_test_token", "whsec-bootstrap-test", "aws-s3cr3t-value"
ALERT_URL = "http://127.0.0.1:9/hooks/alert-t0ken-in-the-path"
AUTOMATIONS = ("lightbox-batch-failed", "lightbox-batch-awaits-review")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def prefect_env(home: Path, port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "LIGHTBOX_"))}
    env.update(
        PREFECT_HOME=str(home),
        PREFECT_API_URL=f"http://127.0.0.1:{port}/api",
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PREFECT_UI_ENABLED="false",
    )
    return env


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A Prefect server (SQLite) for this module; stopped with its process group."""
    home, port = tmp_path_factory.mktemp("prefect-home"), free_port()
    env = prefect_env(home, port)
    log = open(home / "server.log", "wb")  # noqa: SIM115 (closed below)
    process = subprocess.Popen(
        [str(Path(sys.executable).parent / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    deadline = time.monotonic() + 120
    while True:
        try:
            with urllib.request.urlopen(f"{env['PREFECT_API_URL']}/health", timeout=5):
                break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                log.close()
                pytest.fail(f"Prefect server did not start:\n{(home / 'server.log').read_text()[-3000:]}")
            time.sleep(0.5)
    yield env
    os.killpg(process.pid, signal.SIGTERM)
    process.wait(30)
    log.close()


def bootstrap(env: dict, tmp: Path, *extra: str, **more_env: str) -> subprocess.CompletedProcess:
    argv = [
        sys.executable,
        "-m",
        "infra.bootstrap",
        "--data-dir",
        str(tmp / "data"),
        "--model-dir",
        str(tmp / "models"),
        *extra,
    ]
    return subprocess.run(argv, cwd=ROOT, env={**env, **more_env}, capture_output=True, text=True, timeout=120)


async def _snapshot(api_url: str) -> dict:
    from prefect.client.orchestration import PrefectClient

    async with PrefectClient(api_url) as client:
        state = {}
        for pool in ("lightbox-cpu", "lightbox-gpu"):
            wp = await client.read_work_pool(pool)
            state[pool] = (wp.type, wp.base_job_template, wp.concurrency_limit, wp.description)
            queues = await client.read_work_queues(work_pool_name=pool)
            state[f"{pool} queues"] = sorted(
                (q.name, q.priority, q.concurrency_limit, q.is_paused, q.description) for q in queues
            )
        limits = await client.read_global_concurrency_limits()
        state["global limits"] = sorted((limit.name, limit.limit) for limit in limits)
        automations = await client.read_automations()
        state["automations"] = sorted(
            (a.name, a.enabled, repr(sorted(a.trigger.expect)), repr([x.model_dump(mode="json") for x in a.actions]))
            for a in automations
        )
        state["variables"] = sorted((v.name, v.value) for v in await client.read_variables())
        documents = await client.read_block_documents(include_secrets=True)
        state["blocks"] = sorted(
            (d.block_type.slug, d.name or "", d.id, repr(sorted(d.data.items())))
            for d in documents
            if not d.is_anonymous
        )
        return state


def snapshot(env: dict) -> dict:
    return asyncio.run(_snapshot(env["PREFECT_API_URL"]))


def lines(result: subprocess.CompletedProcess) -> dict[str, str]:
    """object name -> action, from bootstrap's output."""
    out = {}
    for line in result.stdout.splitlines():
        if not line.startswith("bootstrap:"):
            parts = line.split()
            out[parts[-2]] = parts[-1]
    return out


@pytest.mark.server
def test_bootstrap_creates_everything_then_changes_nothing(server, tmp_path):
    secrets = dict(
        LIGHTBOX_SHOPIFY_SHOP="acme-goods.myshopify.com",
        LIGHTBOX_SHOPIFY_ACCESS_TOKEN=TOKEN,
        LIGHTBOX_SHOPIFY_WEBHOOK_SECRET=WEBHOOK_SECRET,
        LIGHTBOX_S3_BUCKET="catalog-assets",
        AWS_ACCESS_KEY_ID="AKIATEST",
        AWS_SECRET_ACCESS_KEY=AWS_SECRET,
        LIGHTBOX_S3_ENDPOINT_URL="http://127.0.0.1:9",
        LIGHTBOX_ALERT_WEBHOOK_URL=ALERT_URL,
    )
    first = bootstrap(server, tmp_path, "--gpu-slots", "2", **secrets)
    assert first.returncode == 0, first.stderr
    created = lines(first)
    for name in (
        "lightbox-cpu",
        "lightbox-gpu",
        "lightbox-cpu/urgent",
        "lightbox-gpu/backfill",
        "lightbox-cpu/nightly",
        "lightbox_data_dir",
        "lightbox_inbox",
        "lightbox-catalog-database/catalog",
        "lightbox-model-store/gpu",
        "lightbox-local-folder/exports",
        "lightbox-s3-destination/assets",
        "lightbox-shopify-store/store",
        "custom-webhook/lightbox-alerts",
        *AUTOMATIONS,
    ):
        assert created[name] == "created", (name, first.stdout)
    before = snapshot(server)
    assert before["lightbox-cpu"][0] == "process" and before["lightbox-gpu"][2] == 2
    assert before["lightbox-cpu"][2] == 6  # --cpu-runs' default
    for pool in ("lightbox-cpu", "lightbox-gpu"):
        priorities = {q[0]: q[1] for q in before[f"{pool} queues"]}
        assert {k: priorities[k] for k in ("urgent", "standard", "nightly", "backfill")} == {
            "urgent": 1,
            "standard": 2,
            "nightly": 3,
            "backfill": 4,
        }
        assert priorities["default"] == 5
    cpu_limits = {q[0]: q[2] for q in before["lightbox-cpu queues"]}
    # every queue but urgent capped, together one slot short of the pool: that one is urgent's
    assert cpu_limits == {"urgent": None, "standard": 3, "nightly": 1, "backfill": 1, "default": None}
    assert all(q[2] is None for q in before["lightbox-gpu queues"])  # the GPU cap is the pool's only
    assert before["global limits"] == []
    failed, review = (next(a for a in before["automations"] if a[0] == name) for name in AUTOMATIONS)
    assert failed[1] and "prefect.flow-run.Failed" in failed[2] and "prefect.flow-run.Crashed" in failed[2]
    assert "prefect.flow-run.Suspended" in review[2] and "send-notification" in review[3]
    zombie = next(a for a in before["automations"] if a[0] == "lightbox-crash-zombie-runs")
    # made with or without alerts
    assert "prefect.flow-run.heartbeat" in zombie[2] and "change-flow-run-state" in zombie[3]

    second = bootstrap(server, tmp_path, "--gpu-slots", "2", **secrets)
    assert second.returncode == 0, second.stderr
    assert set(lines(second).values()) == {"unchanged"}, second.stdout
    assert snapshot(server) == before
    for result in (first, second):
        for secret in (TOKEN, WEBHOOK_SECRET, AWS_SECRET, ALERT_URL):
            assert secret not in result.stdout + result.stderr
    assert ALERT_URL not in repr(asyncio.run(_alert_block_as_shown(server["PREFECT_API_URL"])))


async def _alert_block_as_shown(api_url: str):
    """What the UI and the API show of the alert block (no secrets)."""
    from prefect.client.orchestration import PrefectClient

    async with PrefectClient(api_url) as client:
        return await client.read_block_document_by_name("lightbox-alerts", "custom-webhook", include_secrets=False)


@pytest.mark.server
def test_drift_is_repaired_and_dry_run_writes_nothing(server, tmp_path):
    async def drift():
        from prefect.client.orchestration import PrefectClient
        from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate
        from prefect.events.schemas.automations import AutomationCore

        async with PrefectClient(server["PREFECT_API_URL"]) as client:
            queue = await client.read_work_queue_by_name("backfill", work_pool_name="lightbox-gpu")
            await client.update_work_queue(queue.id, priority=1)
            nightly = await client.read_work_queue_by_name("nightly", work_pool_name="lightbox-cpu")
            await client.update_work_queue(nightly.id, concurrency_limit=None)
            # what an older bootstrap made: a second GPU cap besides the pool's
            await client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(name="gpu-slots", limit=9))
            (automation,) = await client.read_automations_by_name("lightbox-batch-failed")
            automation.trigger.expect = {"prefect.flow-run.Crashed"}
            fields = set(AutomationCore.model_fields) - {"owner_resource"}  # the server's PUT refuses it
            core = AutomationCore.model_validate(automation.model_dump(include=fields))
            await client.update_automation(automation.id, core)

    alert = {"LIGHTBOX_ALERT_WEBHOOK_URL": ALERT_URL}
    assert bootstrap(server, tmp_path, **alert).returncode == 0
    asyncio.run(drift())
    drifted = snapshot(server)
    dry = bootstrap(server, tmp_path, "--dry-run", **alert)
    assert dry.returncode == 0, dry.stderr
    planned = {k for k, v in lines(dry).items() if v == "skipped"}
    assert {"lightbox-gpu/backfill", "lightbox-cpu/nightly", "gpu-slots", "lightbox-batch-failed"} <= planned
    assert snapshot(server) == drifted

    fixed = bootstrap(server, tmp_path, **alert)
    assert fixed.returncode == 0, fixed.stderr
    done = lines(fixed)
    assert done["gpu-slots"] == "removed" and done["lightbox-gpu/backfill"] == "updated"
    assert done["lightbox-cpu/nightly"] == "updated" and done["lightbox-batch-failed"] == "updated"
    after = snapshot(server)
    assert after["global limits"] == []
    priorities = {q[0]: q[1] for q in after["lightbox-gpu queues"]}
    assert [priorities[q] for q in ("urgent", "standard", "nightly", "backfill")] == [1, 2, 3, 4]
    assert {q[0]: q[2] for q in after["lightbox-cpu queues"]}["nightly"] == 1
    failed = next(a for a in after["automations"] if a[0] == "lightbox-batch-failed")
    assert "prefect.flow-run.Failed" in failed[2]


def test_a_store_without_its_secrets_is_refused(tmp_path):
    args = parser().parse_args(["--data-dir", str(tmp_path), "--dry-run"])
    with pytest.raises(ValueError, match="LIGHTBOX_SHOPIFY_ACCESS_TOKEN"):
        desired_blocks(args, {"LIGHTBOX_SHOPIFY_SHOP": "acme.myshopify.com"})
    with pytest.raises(ValueError, match="AWS_SECRET_ACCESS_KEY"):
        desired_blocks(args, {"LIGHTBOX_S3_BUCKET": "b", "AWS_ACCESS_KEY_ID": "k"})


@pytest.mark.parametrize(
    "url,secret",
    [
        ("postgresql+psycopg://lightbox:pw-p@rt:w0rd-9@db:5432/lightbox", "w0rd-9"),  # '@' left unencoded
        ("postgresql+psycopg://lightbox:s3cr3t-pw@db:notaport/lightbox", "s3cr3t-pw"),
        ("lightbox:s3cr3t-pw@db/lightbox", "s3cr3t-pw"),
    ],
)
def test_an_unparseable_database_url_is_refused_without_quoting_it(tmp_path, url, secret):
    """The first URL crashed bootstrap with a traceback quoting a piece of the password
    (SQLAlchemy's "invalid literal for int(): 'w0rd-9@db'"); a URL that reached the block
    had its whole text in pydantic's error (input_value=...)."""
    env = prefect_env(tmp_path / "home", 9)  # no server: the configuration fails first
    result = bootstrap(env, tmp_path, "--dry-run", LIGHTBOX_DATABASE_URL=url)
    assert result.returncode == 2, result.stderr
    assert "not a database URL" in result.stderr and "Traceback" not in result.stderr
    assert secret not in result.stdout + result.stderr
