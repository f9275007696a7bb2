"""deployments/submit.py's plan: urgent rows now on the urgent queue, a large day-time batch
in the next off-peak window, a small one now (no server: run_deployment is not called)."""

import shutil
from datetime import UTC, datetime, time

import pytest

from catalog.manifest import load_manifest
from catalog.offpeak import OffPeakWindow
from deployments.submit import offpeak_window, parser, plan_parts
from tests.conftest import EXAMPLES

WINDOW = OffPeakWindow(time(22), time(6), "Europe/Berlin")
NOON = datetime(2026, 3, 10, 11, 0, tzinfo=UTC)  # 12:00 in Berlin: outside the window


@pytest.fixture
def catalog(tmp_path):
    folder = tmp_path / "catalog"
    shutil.copytree(EXAMPLES / "images", folder / "images")
    image = next(p.name for p in (folder / "images").iterdir() if p.suffix == ".png")

    def write(priorities: list[str]):
        rows = [f"SKU-{i},images/{image},Item {i},,{p}" for i, p in enumerate(priorities)]
        path = folder / "manifest.csv"
        path.write_text("sku,image,title,template,priority\n" + "\n".join(rows) + "\n")
        return path

    return write


def args(*extra: str):
    return parser().parse_args(["unused.csv", *extra])


def test_the_window_is_prefect_yamls():
    assert offpeak_window() == WINDOW


def test_a_small_batch_runs_now_and_a_large_one_waits(catalog):
    path = catalog(["standard"] * 3)
    (small,) = plan_parts(path, args("--large-batch", "5"), WINDOW, NOON)
    assert small["plan"].queue == "standard" and small["plan"].when == NOON and small["skus"] == 3
    (large,) = plan_parts(path, args("--large-batch", "3"), WINDOW, NOON)
    assert large["plan"].queue == "standard"
    assert large["plan"].when == datetime(2026, 3, 10, 21, 0, tzinfo=UTC)  # 22:00 CET
    (urgent,) = plan_parts(path, args("--large-batch", "3", "--urgent"), WINDOW, NOON)
    assert (urgent["plan"].queue, urgent["plan"].when) == ("urgent", NOON)
    (backfill,) = plan_parts(path, args("--backfill"), WINDOW, NOON)
    assert backfill["plan"].queue == "backfill" and backfill["plan"].when > NOON


def test_urgent_rows_go_now_and_the_rest_waits(catalog):
    path = catalog(["standard", "urgent", "standard", "urgent", "backfill"])
    urgent, rest = plan_parts(path, args("--large-batch", "3", "--name", "spring"), WINDOW, NOON)
    assert (urgent["name"], urgent["skus"], urgent["plan"].queue, urgent["plan"].when) == (
        "spring-urgent",
        2,
        "urgent",
        NOON,
    )
    assert (rest["name"], rest["skus"], rest["plan"].queue) == ("spring", 3, "standard")
    assert rest["plan"].when > NOON
    assert urgent["manifest"].parent == rest["manifest"].parent == path.parent
    assert [e.sku for e in load_manifest(urgent["manifest"]).entries] == ["SKU-1", "SKU-3"]
    rest_entries = load_manifest(rest["manifest"]).entries
    assert [e.sku for e in rest_entries] == ["SKU-0", "SKU-2", "SKU-4"]
    assert all(e.problem is None for e in rest_entries)
