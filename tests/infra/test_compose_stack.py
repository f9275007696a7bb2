"""infra/compose.yaml (and its GPU override) without Docker, which cannot run here: the
files parse, every file they reference exists, services depend on services that exist,
secrets come only from infra/.env interpolation, and the names the Docker work-pool
templates rely on (network, volumes) are the ones compose creates."""

import re
from pathlib import Path

import pytest
import yaml

from infra.bootstrap import template_for

INFRA = Path(__file__).resolve().parents[2] / "infra"
COMPOSE = INFRA / "compose.yaml"
GPU = INFRA / "compose.gpu.yaml"
INTERPOLATION = re.compile(r"(?<!\$)\$\{(\w+)(?::?[-?][^}]*)?\}")  # $${X} is for the shell


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def test_services_of_the_stack(compose):
    assert set(compose["services"]) == {
        "postgres",
        "minio",
        "minio-setup",
        "prefect-server",
        "bootstrap",
        "worker-cpu",
        "worker-gpu",
        "webhook",
    }
    commands = {
        name: " ".join(s.get("command", [])) if isinstance(s.get("command"), list) else s.get("command", "")
        for name, s in compose["services"].items()
    }
    assert "--pool lightbox-cpu" in commands["worker-cpu"]
    assert "--pool lightbox-gpu" in commands["worker-gpu"]
    assert "infra.bootstrap" in commands["bootstrap"] and "deploy --all" in commands["bootstrap"]
    assert "deployments.webhook" in commands["webhook"]
    server_env = compose["services"]["prefect-server"]["environment"]
    assert server_env["PREFECT_API_DATABASE_CONNECTION_URL"].startswith("postgresql+asyncpg://")


def _referenced_files(document: dict) -> list[Path]:
    files = []
    for service in document["services"].values():
        build = service.get("build")
        if build:
            context = (INFRA / build["context"]).resolve()
            files += [context, context / build.get("dockerfile", "Dockerfile")]
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith((".", "/")):
                files.append((INFRA / source).resolve())
        env_file = service.get("env_file")
        files += [(INFRA / f).resolve() for f in ([env_file] if isinstance(env_file, str) else env_file or [])]
    return files


@pytest.mark.parametrize("path", [COMPOSE, GPU], ids=["compose", "gpu-override"])
def test_referenced_files_exist(path):
    document = yaml.safe_load(path.read_text())
    files = _referenced_files(document)
    assert files, "expected build contexts or mounts"
    for file in files:
        assert file.exists(), f"{path.name} references {file}, which does not exist"


def test_dependencies_name_services(compose):
    names = set(compose["services"])
    for name, service in compose["services"].items():
        assert set(service.get("depends_on", {})) <= names, name
    assert set(yaml.safe_load(GPU.read_text())["services"]) <= names


def test_secrets_come_from_interpolation_only(compose):
    text = COMPOSE.read_text()
    required = {m.group(1) for m in INTERPOLATION.finditer(text)}
    example = dict(
        line.split("=", 1)
        for line in (INFRA / "compose.env.example").read_text().splitlines()
        if line and not line.startswith("#")
    )
    assert required <= set(example), f"not in compose.env.example: {required - set(example)}"
    assert (INFRA / ".gitignore").read_text().splitlines()[-1] == ".env"
    for name, service in compose["services"].items():
        for key, value in (service.get("environment") or {}).items():
            if any(word in key for word in ("PASSWORD", "SECRET", "TOKEN")) and value:
                assert str(value).startswith("${"), (name, key)


def test_docker_pool_templates_match_the_compose_names(compose):
    assert compose["networks"]["default"]["name"] == "lightbox"
    named = {v["name"] for v in compose["volumes"].values() if v and "name" in v}
    for role in ("cpu", "gpu"):
        props = template_for("docker", role)["variables"]["properties"]
        assert props["networks"]["default"] == ["lightbox"]
        assert {v.split(":")[0] for v in props["volumes"]["default"]} <= named


def test_gpu_override_reserves_a_gpu():
    override = yaml.safe_load(GPU.read_text())["services"]
    (device,) = override["worker-gpu"]["deploy"]["resources"]["reservations"]["devices"]
    assert device == {"driver": "nvidia", "count": 1, "capabilities": ["gpu"]}
    assert override["bootstrap"]["environment"]["LIGHTBOX_GPU_DEVICE"] == "cuda"
