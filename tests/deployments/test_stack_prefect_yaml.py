"""prefect.yaml on its own (no server): every deployment loads its flow, names the pools,
queues, blocks and variables bootstrap creates, enforces its parameter schema, carries
block names rather than the blocks' values, and the pieces that must agree do (cron vs
off-peak window, trigger vs receiver event)."""

import inspect
import re
from datetime import time
from pathlib import Path

import pytest
import yaml
from prefect.flows import load_flow_from_entrypoint

from catalog.offpeak import OffPeakWindow, cron_schedule
from infra.bootstrap import POOLS, QUEUES, parser
from infra.desired import desired_blocks, stack_variables
from tasks.events import EVENT_NAME
from tasks.records import RunSettings

ROOT = Path(__file__).resolve().parents[2]
BLOCK = re.compile(r"{{\s*prefect\.blocks\.([\w-]+)\.([\w-]+)\.(\w+)\s*}}")
VARIABLE = re.compile(r"{{\s*prefect\.variables\.(\w+)\s*}}")
EVENT = re.compile(r"{{\s*event\.payload\.(\w+)\s*}}")
# The payload of the event the receiver queues for one delivery (deployments/webhook.py shopify).
RECEIVER_PAYLOAD = {"shop", "product_id", "topic", "webhook_id", "image_urls", "updated_at", "triggered_at"}


@pytest.fixture(scope="module")
def config() -> dict:
    return yaml.safe_load((ROOT / "prefect.yaml").read_text())


@pytest.fixture(scope="module")
def flows(config) -> dict:
    return {
        d["entrypoint"]: load_flow_from_entrypoint(
            str(ROOT / d["entrypoint"].split(":")[0]) + ":" + d["entrypoint"].split(":")[1]
        )
        for d in config["deployments"]
    }


def strings(value):
    if isinstance(value, dict):
        for v in value.values():
            yield from strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from strings(v)
    elif isinstance(value, str):
        yield value


def test_every_deployment(config, flows):
    names = set()
    for deployment in config["deployments"]:
        flow = flows[deployment["entrypoint"]]
        names.add(f"{flow.name}/{deployment['name']}")
        assert deployment["enforce_parameter_schema"] is True, deployment["name"]
        assert deployment["work_pool"]["name"] in POOLS
        assert deployment["work_pool"]["work_queue_name"] in QUEUES
        signature = inspect.signature(flow.fn).parameters
        assert set(deployment.get("parameters", {})) <= set(signature), deployment["name"]
    assert names == {
        "catalog-batch/nightly",
        "catalog-batch/on-demand",
        "catalog-batch/backfill",
        "render-shard/gpu",
        "shopify-refresh/webhook",
        "shopify-refresh-batch/offpeak",
        "reconcile-shopify/hourly",
    }
    assert config["definitions"]["render_deployment"] in names
    gpu = [d for d in config["deployments"] if d["work_pool"]["name"] == "lightbox-gpu"]
    assert [d["entrypoint"] for d in gpu] == ["flows/render_shard.py:render_shard"]


def test_pull_step_sets_the_checkout_directory(config):
    (step,) = config["pull"]
    assert step == {"prefect.deployments.steps.set_working_directory": {"directory": "{{ $LIGHTBOX_ROOT }}"}}


def bootstrap_blocks() -> dict:
    args = parser().parse_args(["--data-dir", "/tmp/x", "--dry-run"])
    env = {
        "LIGHTBOX_SHOPIFY_SHOP": "acme.myshopify.com",
        "LIGHTBOX_SHOPIFY_ACCESS_TOKEN": "t",
        "LIGHTBOX_SHOPIFY_WEBHOOK_SECRET": "s",
    }
    return {(b.get_block_type_slug(), name): b for b, name in desired_blocks(args, env)}


def test_placeholders_name_what_bootstrap_creates(config):
    args = parser().parse_args(["--data-dir", "/tmp/x", "--dry-run"])
    blocks = bootstrap_blocks()
    variables = stack_variables(args)
    found = 0
    for text in strings(config["deployments"]):
        for slug, name, field in BLOCK.findall(text):
            assert (slug, name) in blocks, f"bootstrap saves no {slug}/{name}"
            assert field in type(blocks[(slug, name)]).model_fields, f"{slug} has no field {field}"
            found += 1
        for name in VARIABLE.findall(text):
            assert name in variables, f"bootstrap sets no variable {name}"
            found += 1
    assert found >= 9
    reconcile = next(d for d in config["deployments"] if d["name"] == "hourly")
    assert ("lightbox-shopify-store", reconcile["parameters"]["store_block"]) in blocks
    assert ("lightbox-catalog-database", reconcile["parameters"]["catalog_block"]) in blocks


def test_deployments_carry_block_names_not_values(config):
    """The batch settings name the catalog and the GPU pool's model store, which each run
    loads when it starts (tasks/settings.py): the catalog URL (and its password) is never
    resolved into a deployment, so never into a flow run's parameters."""
    blocks = bootstrap_blocks()
    settings = config["definitions"]["settings"]
    assert settings == {
        "data_dir": "{{ prefect.variables.lightbox_data_dir }}",
        "catalog_block": "catalog",
        "model_store_block": "gpu",
    }
    assert ("lightbox-catalog-database", settings["catalog_block"]) in blocks
    assert ("lightbox-model-store", settings["model_store_block"]) in blocks
    named = RunSettings.model_validate(settings)  # what the flows' parameter schema accepts
    assert named.database_url is None and named.model_dir is None
    using = [d for d in config["deployments"] if "settings" in d.get("parameters", {})]
    assert {d["name"] for d in using} == {"nightly", "on-demand", "backfill", "webhook", "offpeak"}
    assert all(d["parameters"]["settings"] == settings for d in using)
    for text in strings(config["deployments"]):
        for slug, _, _ in BLOCK.findall(text):
            assert slug not in ("lightbox-catalog-database", "lightbox-model-store"), text


def test_no_secret_is_written_in_the_file(config):
    for text in strings(config):
        for word in ("password", "shpat_", "token", "secret"):
            assert word not in text.lower(), text
    for deployment in config["deployments"]:
        parameters = deployment.get("parameters", {})
        assert "database_url" not in parameters and "database_url" not in parameters.get("settings", {})


def test_nightly_cron_is_the_offpeak_window(config):
    offpeak = config["definitions"]["offpeak"]
    window = OffPeakWindow(
        time.fromisoformat(offpeak["start"]), time.fromisoformat(offpeak["end"]), offpeak["timezone"]
    )
    nightly = next(d for d in config["deployments"] if d["name"] == "nightly")
    (schedule,) = nightly["schedules"]
    assert {k: schedule[k] for k in ("cron", "timezone")} == cron_schedule(window)
    refresh = next(d for d in config["deployments"] if d["name"] == "webhook")
    assert refresh["parameters"]["offpeak"] == offpeak


def test_webhook_trigger_takes_the_receivers_event(config, flows):
    refresh = next(d for d in config["deployments"] if d["name"] == "webhook")
    (trigger,) = refresh["triggers"]
    assert trigger["expect"] == [EVENT_NAME] and trigger["posture"] == "Reactive"
    assert trigger["match"] == {"prefect.resource.id": "shopify.product.*"}
    parameters = trigger["parameters"]
    assert {"shop", "product_id", "image_urls"} <= set(parameters)
    for name, template in parameters.items():
        (field,) = EVENT.findall(template)
        assert field in RECEIVER_PAYLOAD and field == name
    signature = inspect.signature(flows[refresh["entrypoint"]].fn).parameters
    required = {n for n, p in signature.items() if p.default is inspect.Parameter.empty}
    assert required <= set(parameters) | set(refresh["parameters"])
