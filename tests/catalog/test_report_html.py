"""catalog/report_html.py and catalog/report_images.py: the report page from a report dict
and thumbnails, built here from the sample photos (no batch run); tests/ui/test_report_html.py
looks at the same page in Chromium."""

from __future__ import annotations

import functools
import re
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from catalog.report_html import render_report
from catalog.report_images import SkuImageRefs, SkuThumbs, batch_thumbs, mask_outline, sku_thumbs
from quality.labels import CHECK_LABELS

IMAGES = Path(__file__).resolve().parents[2] / "examples" / "catalog" / "images"
HOSTILE = '<script>document.title="pwned"</script>'
PROFILES = ["amazon-main", "shopify", "transparent"]

# (name, value, warn, fail, worse): a clean render's figures, a few of each family.
CLEAN = [
    ("cut.background_inside", 0.0, 0.0025, 0.005, "higher"),
    ("cut.background_attached", 0.0, 0.0025, 0.005, "higher"),
    ("cut.lost_part", 0.0008, 0.01, 0.02, "higher"),
    ("colour.delta_e_mean", 0.6612345678901234, 1.4, 1.9, "higher"),
    ("sharpness.vs_source", 0.9812345678901234, 0.8, 0.65, "lower"),
    ("edge.halo", 0.0123456789, 0.03, 0.1, "higher"),
    ("edge.roughness", 0.2134567, 0.5, 0.8, "higher"),
    ("shadow.contact", 0.5912345, 0.15, 0.08, "lower"),
    ("source.resolution", 2.123456789, 2.8, 3.5, "higher"),
    ("market.background_purity", 0.1412345, 0.2, 0.4, "higher"),
]
CLEAN += [(name, 0.0, 1.0, 2.0, "higher") for name in CHECK_LABELS if name not in {c[0] for c in CLEAN}]


def _checks(profile: str, **bad: float) -> list[dict]:
    checks = []
    for name, value, warn, fail, worse in CLEAN:
        if name.startswith("market.") and profile != "amazon-main":
            continue
        value = bad.get(name.replace(".", "__"), value)
        status = (value > fail, value > warn) if worse == "higher" else (value < fail, value < warn)
        checks.append(
            {
                "name": name,
                "status": "fail" if status[0] else "warn" if status[1] else "pass",
                "value": value,
                "threshold": {"warn": warn, "fail": fail, "worse": worse},
                "detail": f"{name} detail",
                "reason": "",
            }
        )
    return checks


def _entry(sku: str, state: str, status: str, reason: str | None = None, title: str = "", qc=True, **bad) -> dict:
    dirname = re.sub(r"[^A-Za-z0-9_-]", "_", sku)[:40]
    results = {}
    if qc:
        for p in PROFILES:
            checks = _checks(p, **bad)
            worst = max((c["status"] for c in checks), key=["pass", "warn", "fail"].index)
            failing = [c["name"] for c in checks if c["status"] == "fail"]
            results[p] = {"status": worst, "failing": failing, "metrics": {}, "checks": checks}
    return {
        "sku": sku,
        "dir": dirname,
        "title": title,
        "state": state,
        "reason": reason,
        "attempts": 1 if qc else 0,
        "segment_confidence": 0.9412345678 if qc else None,
        "timings": {},
        "qc": results,
        "consistency_flags": [],
        "status": status,
        "outputs": {p: f"{dirname}/{p}.jpg" for p in PROFILES} if state == "exported" else {},
        "preview": None,
    }


def sample_report() -> dict:
    """Two of each outcome, the hostile SKU among the failures, the clean ones first in
    manifest order (the page must sort them)."""
    skus = [
        _entry("CUP-ESPRESSO-01", "exported", "green", title="Espresso cup with saucer"),
        _entry(
            "MOTO-RED-750",
            "exported",
            "amber",
            title="Red 750 cc motorcycle",
            edge__halo=0.0412345,
            shadow__contact=0.12,
        ),
        _entry(
            "ROCKET-MODEL-9",
            "rejected",
            "red",
            "qc: background stuck to the product's edge, grey or tinted backdrop",
            title="Launch vehicle (scale model shot)",
            cut__background_attached=0.02345678,
            market__background_purity=0.4312345,
        ),
        _entry(
            "STICKER-LOGO",
            "held",
            "red",
            "failed QC after 3 attempts",
            title="Die-cut logo sticker",
            source__resolution=3.9,
        ),
        _entry("BROKEN-TRUNCATED", "failed", "red", "validate: corrupt or truncated image", qc=False),
        _entry(HOSTILE, "failed", "red", f"segment: no product found in {HOSTILE}", title=HOSTILE, qc=False),
        _entry("CUP-ESPRESSO-02", "exported", "green", title="Espresso cup, second angle"),
    ]
    skus[1]["consistency_flags"] = ["shopify:brightness"]
    return {
        "batch_id": "3f2a9c1e5b7d4e0f8a6b2c1d0e9f8a7b",
        "name": "nightly-2026-12-02",
        "state": "done",
        "template": "studio-white",
        "profiles": PROFILES,
        "review_policy": "hold-failures",
        "created_at": "2026-12-02T01:00:03.123456+00:00",
        "finished_at": "2026-12-02T01:04:15.654321+00:00",
        "wall_seconds": 252.53,
        "counts": {"exported": 3, "rejected": 1, "failed": 2, "held": 1},
        "skus": skus,
    }


def _cut(rgb: np.ndarray) -> np.ndarray:
    """A rough product mask (GrabCut on a 160 px copy): good enough to draw an outline."""
    h, w = rgb.shape[:2]
    small = cv2.resize(rgb, (160, round(160 * h / w)), interpolation=cv2.INTER_AREA)
    mask = np.zeros(small.shape[:2], np.uint8)
    cv2.setRNGSeed(0)
    rect = (8, 8, small.shape[1] - 16, small.shape[0] - 16)
    cv2.grabCut(cv2.cvtColor(small, cv2.COLOR_RGB2BGR), mask, rect, None, None, 3, cv2.GC_INIT_WITH_RECT)
    fg = np.where((mask == 1) | (mask == 3), 255, 0).astype(np.uint8)
    return np.where(cv2.resize(fg, (w, h), interpolation=cv2.INTER_LINEAR) >= 128, 255, 0).astype(np.uint8)


def _encode(pixels: np.ndarray, ext: str) -> bytes:
    code = cv2.COLOR_RGBA2BGRA if pixels.ndim == 3 and pixels.shape[2] == 4 else cv2.COLOR_RGB2BGR
    return cv2.imencode(ext, cv2.cvtColor(pixels, code) if pixels.ndim == 3 else pixels)[1].tobytes()


@functools.cache
def _files() -> tuple[dict[str, SkuImageRefs], dict[str, bytes]]:
    return _make_files(sample_report())


def sample_files(report: dict) -> tuple[dict[str, SkuImageRefs], dict[str, bytes]]:
    """The work files of ``sample_report()`` (made once per session)."""
    assert {e["dir"] for e in report["skus"]} == {e["dir"] for e in sample_report()["skus"]}
    return _files()


def _make_files(report: dict) -> tuple[dict[str, SkuImageRefs], dict[str, bytes]]:
    """Work files as a pipeline would leave them: the photo, its mask, a white-backdrop
    JPEG per marketplace profile and a transparent PNG, in a dict standing in for the store."""
    photos = {
        "CUP": "espresso-cup.png",
        "MOTO": "motorcycle.png",
        "ROCKET": "rocket.jpg",
        "STICKER": "logo-sticker.png",
    }
    files, refs = {}, {}
    for entry in report["skus"]:
        photo = photos.get(entry["sku"].split("-")[0])
        if photo is None:
            continue
        image = Image.open(IMAGES / photo)
        rgb = np.asarray(image.convert("RGB"))
        mask = np.asarray(image)[..., 3] if image.mode == "RGBA" else _cut(rgb)
        a = mask[..., None].astype(np.float32) / 255
        white = (rgb * a + 255 * (1 - a)).astype(np.uint8)
        d = entry["dir"]
        files |= {f"{d}/source": (IMAGES / photo).read_bytes(), f"{d}/mask.png": _encode(mask, ".png")}
        files |= {f"{d}/amazon-main.jpg": _encode(white, ".jpg"), f"{d}/shopify.jpg": _encode(white, ".jpg")}
        files[f"{d}/transparent.png"] = _encode(np.dstack([rgb, mask]), ".png")
        exports = {"amazon-main": f"{d}/amazon-main.jpg", "shopify": f"{d}/shopify.jpg"}
        refs[d] = SkuImageRefs(f"{d}/source", f"{d}/mask.png", exports | {"transparent": f"{d}/transparent.png"})
    return refs, files


def _reader(files: dict[str, bytes]):
    """``WorkStore.get`` over a dict: FileNotFoundError for what is not there."""

    def read(ref: str) -> bytes:
        try:
            return files[ref]
        except KeyError:
            raise FileNotFoundError(ref) from None

    return read


def sample_page() -> tuple[str, dict, dict[str, SkuThumbs]]:
    report = sample_report()
    refs, files = sample_files(report)
    thumbs = batch_thumbs(refs, _reader(files))
    return render_report(report, thumbs), report, thumbs


def test_page_lists_failing_first_in_plain_words_and_escapes_input():
    page, report, thumbs = sample_page()
    order = re.findall(r'<article class="\w+" data-tags="([\w ]+)"', page)
    assert order == ["failed", "failed", "rejected", "held", "warnings exported", "exported", "exported"]
    assert "<script>document" not in page and "&lt;script&gt;document.title=&quot;pwned&quot;" in page
    assert page.count("<script>") == 1  # the page's own
    assert "Background stuck to the edge — 2.3 % of the product, limit 0.5 %" in page
    assert "Background not pure white — 43 % off-white pixels, limit 40 %" in page
    assert "Halo around the product — 4.1 % of the outline, warns above 3 %" in page
    assert "Brighter or darker than the batch" in page
    assert "0.6612345678901234" not in page and "cut.background_attached" in page  # raw key: tooltip only
    assert re.search(r">\s*cut\.background_attached", page) is None
    assert 'data-filter="failed" aria-pressed="false">Failed<b>2</b>' in page
    assert 'data-filter="exported" aria-pressed="false">Exported<b>3</b>' in page
    assert "1 Dec 2026" not in page and "2 Dec 2026, 01:00 UTC" in page and "took 4 min 12 s" in page


def test_thumbnails_are_small_jpegs_with_the_mask_outline():
    page, report, thumbs = sample_page()
    cup = thumbs["CUP-ESPRESSO-01"]
    assert set(cup.exports) == set(PROFILES) and cup.outline.startswith("M")
    for jpeg in [cup.source, *cup.exports.values()]:
        image = Image.open(__import__("io").BytesIO(jpeg))
        assert image.format == "JPEG" and max(image.size) == 160
        assert len(jpeg) < 16_000
    assert cup.size == (160, 107)  # 600 x 400 fitted into 160
    assert page.count('loading="lazy"') == 5 * 4  # five SKUs with pictures: source + three profiles each
    # a SKU that failed before it had pictures shows one empty place
    assert "BROKEN-TRUNCATED" not in thumbs and page.count("no picture") == 2


def test_each_picture_is_read_once_and_the_preview_makes_the_contact_sheet_tile():
    refs, files = sample_files(sample_report())
    cup = refs["CUP-ESPRESSO-01"]
    cup = SkuImageRefs(cup.source, cup.mask, cup.exports, preview=cup.exports["transparent"])
    reads = []
    thumbs = sku_thumbs(cup, lambda ref: reads.append(ref) or _reader(files)(ref))
    assert sorted(r for r in reads if r in files) == sorted([cup.source, cup.mask, *cup.exports.values()])
    assert thumbs.tile.shape == (171, 256, 3)  # 600 x 400 fitted into 256, on the checkerboard
    small = Image.open(__import__("io").BytesIO(thumbs.exports["transparent"]))
    assert small.size == (160, 107)
    board = thumbs.tile[:8, :8].reshape(-1, 3)  # the cup's corner is transparent
    assert {tuple(p) for p in board} == {(255, 255, 255)}


def test_a_stored_preview_is_read_instead_of_the_export():
    from catalog.report_images import preview_jpeg, thumb_ref

    refs, files = sample_files(sample_report())
    cup = refs["CUP-ESPRESSO-01"]
    cup = SkuImageRefs(cup.source, cup.mask, cup.exports, preview=cup.exports["amazon-main"])
    rgba = cv2.imdecode(np.frombuffer(files[cup.exports["transparent"]], np.uint8), cv2.IMREAD_UNCHANGED)
    rgba = cv2.cvtColor(rgba, cv2.COLOR_BGRA2RGBA)
    previews = {thumb_ref(cup.exports["transparent"]): preview_jpeg(rgba[..., :3], rgba[..., 3] / 255.0)}
    white = cv2.cvtColor(cv2.imdecode(np.frombuffer(files[cup.exports["amazon-main"]], np.uint8), 1), 4)
    previews[thumb_ref(cup.exports["amazon-main"])] = preview_jpeg(white)
    stored = {**files, **previews}
    reads = []

    def read(ref: str) -> bytes:
        reads.append(ref)
        if ref not in stored:
            raise FileNotFoundError(ref)
        return stored[ref]

    thumbs = sku_thumbs(cup, read)
    assert cup.exports["transparent"] not in reads and cup.exports["amazon-main"] not in reads
    assert cup.exports["shopify"] in reads  # no preview stored: the export itself
    assert thumbs.tile.shape == (171, 256, 3) and set(thumbs.exports) == set(PROFILES)
    shown = np.asarray(Image.open(__import__("io").BytesIO(thumbs.exports["transparent"])).convert("RGB"))
    assert shown.shape == (107, 160, 3) and shown[:4, :4].min() > 200  # the corner's checkerboard, light
    assert Image.open(__import__("io").BytesIO(previews[thumb_ref(cup.exports["transparent"])])).size == (256, 171)


def test_mask_outline_follows_the_mask_and_its_holes():
    mask = np.zeros((400, 600), np.uint8)
    cv2.rectangle(mask, (100, 100), (499, 299), 255, -1)
    cv2.rectangle(mask, (250, 150), (349, 249), 0, -1)  # a hole: its edge is drawn too
    path = mask_outline(mask, (150, 100))
    assert path.count("M") == 2 and path.count("Z") == 2
    xy = np.array([float(v) for v in re.findall(r"[\d.]+", path)]).reshape(-1, 2)
    assert xy[:, 0].min() >= 24 and xy[:, 0].max() <= 126 and xy[:, 1].min() >= 24 and xy[:, 1].max() <= 76


def test_missing_files_leave_empty_places():
    refs = SkuImageRefs(source="gone", mask="gone-too", exports={"shopify": "gone"})

    def read(ref: str) -> bytes:
        raise FileNotFoundError(ref)

    assert sku_thumbs(refs, read) == SkuThumbs()
    assert sku_thumbs(SkuImageRefs(source="junk"), lambda ref: b"not an image") == SkuThumbs()


def test_a_thousand_skus_stay_small_and_flat():
    report = sample_report()
    refs, files = sample_files(report)
    cup = sku_thumbs(refs["CUP-ESPRESSO-01"], _reader(files))
    rocket = report["skus"][2]
    many = {**report, "skus": []}
    for i in range(1000):
        entry = dict(rocket if i % 10 == 0 else report["skus"][0], sku=f"SKU-{i:04d}", dir=f"sku-{i:04d}")
        many["skus"].append(entry)
    page = render_report(many, {e["dir"]: cup for e in many["skus"]})
    assert page.count("<article ") == 1000 and page.count("<img ") == 4000
    assert page.index("SKU-0000") < page.index("SKU-0010") < page.index("SKU-0001")  # rejected ones first
    per_sku = len(page.encode()) / 1000
    thumb_bytes = 4 / 3 * (len(cup.source) + sum(map(len, cup.exports.values())))  # as base64
    # the markup around them stays small: a card, plus one short row for each figure the gate
    # grades (every labelled check here: 40 in gate 2.5.0, about 83 bytes a row)
    assert per_sku < thumb_bytes + 2_800 + 100 * len(CHECK_LABELS), (per_sku, thumb_bytes, len(CHECK_LABELS))
    assert len(page.encode()) < 40 * 2**20


def test_times_read_in_utc_whatever_the_database_returned():
    from catalog.report_html import _duration, _when

    assert _when("2026-12-02T01:00:03") == "2 Dec 2026, 01:00 UTC"  # SQLite: no zone, stored as UTC
    assert _when("2026-12-02T02:00:03+01:00") == "2 Dec 2026, 01:00 UTC"
    assert [_duration(s) for s in (8.66, 42.4, 252.5, 3725)] == [
        "took 8.7 s",
        "took 42 s",
        "took 4 min 12 s",
        "took 1 h 2 min",
    ]
