"""deployments/submit.py opens a ZIP only to count its rows: the folder it unpacked into is
removed again (each load unpacks into a folder of its own, catalog/unzip.py)."""

import zipfile
from datetime import UTC, datetime, time

from catalog.offpeak import OffPeakWindow
from deployments.submit import parser, plan_parts

WINDOW = OffPeakWindow(time(22), time(6), "Europe/Berlin")
NOON = datetime(2026, 3, 10, 11, 0, tzinfo=UTC)


def test_counting_a_zip_leaves_nothing_unpacked(tmp_path):
    archive = tmp_path / "catalog.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("cat/m.csv", "sku,image\nA-1,a.png\nB-1,a.png\n")
        z.writestr("cat/a.png", b"\x89PNG fake")
    unpack_dir = tmp_path / "unpacked"
    args = parser().parse_args([str(archive), "--unpack-dir", str(unpack_dir)])
    (part,) = plan_parts(archive, args, WINDOW, NOON)
    assert part["skus"] == 2
    assert list(unpack_dir.iterdir()) == []
