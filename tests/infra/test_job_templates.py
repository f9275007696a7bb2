"""The base job templates bootstrap applies (infra/job_templates/): well formed, every
placeholder declared, and the GPU ones really ask for a GPU. No Kubernetes or Docker here:
the templates are rendered with their defaults the way a worker fills them in."""

import json
import re

import pytest
from prefect.utilities.templating import apply_values
from prefect.workers.process import ProcessWorker

from infra.bootstrap import POOL_TYPES, TEMPLATES, load_template, template_for

PLACEHOLDER = re.compile(r"{{\s*([\w.-]+)\s*}}")


def placeholders(value) -> set[str]:
    if isinstance(value, dict):
        return set().union(*(placeholders(v) for v in value.values())) if value else set()
    if isinstance(value, list):
        return set().union(*(placeholders(v) for v in value)) if value else set()
    return set(PLACEHOLDER.findall(value)) if isinstance(value, str) else set()


def rendered(template: dict) -> dict:
    """job_configuration with every variable at its default, as a worker renders it."""
    defaults = {name: spec.get("default") for name, spec in template["variables"]["properties"].items()}
    return apply_values(template["job_configuration"], defaults)


@pytest.mark.parametrize("pool_type", POOL_TYPES)
@pytest.mark.parametrize("role", ["cpu", "gpu"])
def test_every_placeholder_is_a_declared_variable(pool_type, role):
    template = template_for(pool_type, role)
    declared = set(template["variables"]["properties"])
    used = placeholders(template["job_configuration"])
    assert used <= declared, f"undeclared: {used - declared}"
    for name, spec in template["variables"]["properties"].items():
        assert "type" in spec or "anyOf" in spec, name


def test_every_file_is_a_template_of_a_known_pool_type():
    files = sorted(p.name for p in TEMPLATES.iterdir() if p.suffix in {".json", ".yaml"})
    expected = sorted(f"{t}-{r}{'.json' if t == 'process' else '.yaml'}" for t in POOL_TYPES for r in ("cpu", "gpu"))
    assert files == expected
    for name in files:
        load_template(TEMPLATES / name)


def test_process_templates_are_prefects_with_our_environment():
    default = ProcessWorker.get_default_base_job_template()
    for role, env in {
        "cpu": {"CUDA_VISIBLE_DEVICES": ""},
        "gpu": {"CUDA_VISIBLE_DEVICES": "0", "PYTORCH_CUDA_ALLOC_CONF": "expandable_segments:True"},
    }.items():
        ours = template_for("process", role)
        assert ours["variables"]["properties"]["env"]["default"] == env
        ours["variables"]["properties"]["env"].pop("default")
        ours["variables"]["properties"]["env"]["description"] = default["variables"]["properties"]["env"]["description"]
        assert ours == default, "Prefect's process template changed: regenerate infra/job_templates"


def test_kubernetes_gpu_job_requests_one_gpu_on_a_gpu_node():
    job = rendered(template_for("kubernetes", "gpu"))["job_manifest"]
    pod = job["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["resources"]["requests"]["nvidia.com/gpu"] == 1
    assert container["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert pod["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in pod["tolerations"]
    assert pod["restartPolicy"] == "Never" and job["spec"]["backoffLimit"] == 0
    assert {m["mountPath"] for m in container["volumeMounts"]} == {"/models", "/data"}
    assert container["envFrom"] == [{"secretRef": {"name": "lightbox-worker-secrets"}}]


def test_kubernetes_cpu_job_has_no_gpu_and_shares_the_data_volume():
    job = rendered(template_for("kubernetes", "cpu"))["job_manifest"]
    text = json.dumps(job)
    assert "nvidia.com/gpu" not in text
    pod = job["spec"]["template"]["spec"]
    gpu_pod = rendered(template_for("kubernetes", "gpu"))["job_manifest"]["spec"]["template"]["spec"]
    assert pod["volumes"] == gpu_pod["volumes"]  # both pools see the same work files


def test_docker_gpu_container_asks_the_nvidia_runtime_for_one_gpu():
    docker_types = pytest.importorskip("docker.types")
    config = rendered(template_for("docker", "gpu"))
    (request,) = config["container_create_kwargs"]["device_requests"]
    assert docker_types.DeviceRequest(**request) == {
        "Driver": "",
        "Count": 1,
        "DeviceIDs": [],
        "Capabilities": [["gpu"]],
        "Options": {},
    }
    assert rendered(template_for("docker", "cpu"))["container_create_kwargs"] == {}
    for role in ("cpu", "gpu"):
        config = rendered(template_for("docker", role))
        assert config["networks"] == ["lightbox"]
        assert config["volumes"] == ["lightbox-data:/data", "lightbox-models:/models:ro"]


def test_secrets_never_sit_in_a_template():
    for path in TEMPLATES.iterdir():
        text = path.read_text().lower()
        for word in ("password:", "secret_key", "access_token", "shpat_"):
            assert word not in text, (path.name, word)
