"""Shards on another node: no shared disk between a batch and its shards.

A real Prefect server; ``render-shard`` deployed to its own process pool, whose worker is a
separate process with its own data folder and no access to the batch's (standing in for a
GPU node). Work files live in a loopback S3 bucket (``--work-store``), Prefect results in
another (``PREFECT_RESULTS_DEFAULT_STORAGE_BLOCK``), the catalog in PostgreSQL. The batch
runs in this process, queues its shards on the pool, reads their outcomes from the result
bucket and exports from the work bucket: the files are byte-identical to a single-folder
run of the same catalog.
"""

import hashlib

import pytest

from tests.conftest import _reset_pg
from tests.fakes.s3 import create_bucket, s3_destination, s3_endpoint  # noqa: F401 (fixture)
from tests.prefect_server import REPO, run_process_worker, small_manifest

pytestmark = [pytest.mark.server, pytest.mark.postgres, pytest.mark.usefixtures("prefect_harness")]
SKUS = ("CUP-ESPRESSO-01", "STICKER-LOGO")
SHARD_POOL = "lightbox-test-gpu"
PROFILES = ["amazon-main", "transparent"]


def _files(out):
    return {
        str(p.relative_to(out)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(out.rglob("*"))
        if p.is_file() and p.parent != out
    }


def _deploy_shards(deployed) -> str:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.workers.process import ProcessWorker

    from flows.render_shard import render_shard

    with get_client(sync_client=True) as client:
        client.create_work_pool(  # the GPU cap is the pool's concurrency limit (infra/bootstrap.py)
            WorkPoolCreate(
                name=SHARD_POOL,
                type="process",
                base_job_template=ProcessWorker.get_default_base_job_template(),
                concurrency_limit=1,
            )
        )
    flow = render_shard.from_source(source=str(REPO), entrypoint="flows/render_shard.py:render_shard")
    flow.deploy(
        name="multi-node-test",
        work_pool_name=SHARD_POOL,
        build=False,
        push=False,
        print_next_steps=False,
        ignore_warnings=True,
    )
    return f"{flow.name}/multi-node-test"


def test_shards_on_another_node_share_no_disk(
    batch_deployment, tmp_path, run_settings, s3_endpoint, pg_server_url, model_dir
):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowFilter, FlowFilterName
    from prefect.settings import (
        PREFECT_API_URL,
        PREFECT_LOCAL_STORAGE_PATH,
        PREFECT_RESULTS_DEFAULT_STORAGE_BLOCK,
        temporary_settings,
    )
    from prefect_aws import AwsCredentials, S3Bucket

    from flows.catalog_batch import catalog_batch
    from tests.fakes.s3 import ACCESS_KEY_ID, REGION, SECRET_ACCESS_KEY

    manifest = small_manifest(tmp_path / "catalog", SKUS)
    single = tmp_path / "single"
    reference = catalog_batch(
        manifest=str(manifest),
        out_dir=str(single),
        settings=run_settings(data_dir=tmp_path / "one-folder"),
        profiles=PROFILES,
    )
    expected = _files(single)
    assert [e for e in reference["skus"] if e["state"] == "exported"], reference

    server = batch_deployment.server
    work_bucket, result_bucket = create_bucket(s3_endpoint), create_bucket(s3_endpoint)
    credentials = AwsCredentials(
        aws_access_key_id=ACCESS_KEY_ID,
        aws_secret_access_key=SECRET_ACCESS_KEY,
        region_name=REGION,
        aws_client_parameters={"endpoint_url": s3_endpoint},
    )
    node_a, node_b = tmp_path / "node-a", tmp_path / "node-b"  # the batch's node, the shards' node
    with temporary_settings({PREFECT_API_URL: server.api_url}):
        s3_destination(s3_endpoint, work_bucket, prefix="work").save("lb-multi-work", overwrite=True)
        S3Bucket(bucket_name=result_bucket, credentials=credentials).save("lb-multi-results", overwrite=True)
        shards = _deploy_shards(batch_deployment)
    _reset_pg(pg_server_url)
    settings = run_settings(
        data_dir=node_a / "data",
        database_url=pg_server_url,
        work_store="lightbox-s3-destination/lb-multi-work",
        model_dir=model_dir,
    )
    worker_env = {
        "PREFECT_RESULTS_DEFAULT_STORAGE_BLOCK": "s3-bucket/lb-multi-results",
        "PREFECT_LOCAL_STORAGE_PATH": str(node_b / "results"),
        "TMPDIR": str(node_b),
    }
    node_b.mkdir()
    with run_process_worker(server, SHARD_POOL, node_b, worker_env):
        with temporary_settings(
            {
                PREFECT_API_URL: server.api_url,
                PREFECT_RESULTS_DEFAULT_STORAGE_BLOCK: "s3-bucket/lb-multi-results",
                PREFECT_LOCAL_STORAGE_PATH: str(node_a / "results"),
            }
        ):
            report = catalog_batch(
                manifest=str(manifest),
                out_dir=str(node_a / "out"),
                settings=settings,
                profiles=PROFILES,
                render_deployment=shards,
                shard_size=1,
            )
    with temporary_settings({PREFECT_API_URL: server.api_url}), get_client(sync_client=True) as client:
        runs = client.read_flow_runs(
            flow_filter=FlowFilter(name=FlowFilterName(any_=["render-shard"])),
        )
    ours = [r for r in runs if r.parameters.get("batch_id") == report["batch_id"]]
    assert len(ours) == len(SKUS) and all(r.state.is_completed() for r in ours)  # one shard run per SKU
    assert all(r.deployment_id is not None for r in ours)  # run by the pool's worker, not in this process
    states = {e["sku"]: e["state"] for e in report["skus"]}
    assert states == {e["sku"]: e["state"] for e in reference["skus"]}, report
    assert _files(node_a / "out") == expected  # byte-identical to the single-folder run
    assert not (node_a / "data" / "work").exists()  # the work never touched a node's disk
    assert not (node_b / "results").exists() or not any((node_b / "results").rglob("*"))  # results in S3
