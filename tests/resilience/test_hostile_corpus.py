"""One batch over a hostile corpus: broken, tricky and malicious files, SKU ids and manifest
rows, all generated here. Every entry gets the right outcome — processed (exported, or
rejected by QC with its checks) or failed with a reason that names the problem — and the
batch itself finishes."""

from __future__ import annotations

import codecs
import io
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image, ImageCms, ImageDraw
from sqlalchemy import select

from catalog.db import session_scope
from catalog.manifest import ManifestError, load_manifest
from catalog.models import Sku, SourceImage
from tests.conftest import EXAMPLES, _reset_pg
from tests.resilience._support import run_batch, write_manifest

pytestmark = pytest.mark.usefixtures("prefect_harness")

MAX_BYTES = 2 * 2**20  # the run's file size limit, so an over-size file stays small here


@dataclass
class Case:
    kind: str
    sku: str
    image: str  # as written in the manifest, relative to it
    data: bytes | None = None  # written to ``image`` when given
    failed: tuple[str, ...] = ()  # expected reason words (any); empty: processed
    size: tuple[int, int] | None = None  # processed: the decoded (w, h), orientation applied
    priority: str = ""
    template: str = ""


def _photo(side: int = 300, name: str = "logo-sticker.png") -> Image.Image:
    with Image.open(EXAMPLES / "images" / name) as im:
        photo = im.convert("RGB")
    photo.thumbnail((side, side), Image.LANCZOS)
    return photo


def _encode(image: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format=fmt, **kw)
    return buf.getvalue()


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG that declares width x height (8-bit grey) with a token IDAT: what a bomb's
    header says before any pixel is inflated."""

    def chunk(tag: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + tag + body + struct.pack(">I", zlib.crc32(tag + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b"")
    )


def _with_exif_orientation(image: Image.Image, orientation: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    return _encode(image, "JPEG", quality=92, exif=exif.tobytes())


def _cases(base: Path) -> list[Case]:
    sticker = _photo()
    cup = _photo(360, "espresso-cup.png")  # 360 x 240: shows when a rotation was applied
    w, h = cup.size
    flipped = sticker.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    jpeg, png = _encode(sticker, "JPEG", quality=92), _encode(sticker, "PNG")

    def cut(data: bytes) -> bytes:
        return data[: len(data) * 6 // 10]

    crc = bytearray(png)
    crc[png.index(b"IDAT") + 40] ^= 0xFF
    header = bytearray(jpeg)
    header[2:60] = bytes(58)
    rgba = sticker.convert("RGBA")
    disk = Image.new("L", sticker.size, 0)
    ImageDraw.Draw(disk).ellipse((20, 20, sticker.size[0] - 20, sticker.size[1] - 20), fill=255)
    rgba.putalpha(disk)
    palette = sticker.convert("P", palette=Image.Palette.ADAPTIVE, colors=64)
    keyed = palette.copy()
    keyed.info["transparency"] = keyed.getpixel((0, 0))
    grey16 = Image.fromarray(np.asarray(sticker.convert("L")).astype(np.uint16) * 257)
    ok, rgb16 = cv2.imencode(".png", cv2.cvtColor(np.asarray(flipped), cv2.COLOR_RGB2BGR).astype(np.uint16) * 257)
    bomb = _encode(Image.new("1", (9000, 9000)), "PNG")  # 81 MP of nothing, ~10 KB on disk (cap: 64 MP)
    lab_icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("LAB")).tobytes()
    frames = [sticker, flipped]

    def animated(fmt: str) -> bytes:
        imgs = [f.convert("P") for f in frames] if fmt == "GIF" else frames
        return _encode(imgs[0], fmt, save_all=True, append_images=imgs[1:])

    outside = base.parent / "outside.png"
    outside.write_bytes(png)
    (base / "images").mkdir(parents=True, exist_ok=True)
    (base / "images" / "link.png").symlink_to(outside)
    long_sku, too_long, far_too_long = "L" * 200, "X" * 201, "Y" * 400
    ok_png = "images/ok.png"
    return [
        # truncated / corrupt files of each format
        Case("truncated JPEG", "T-JPEG", "images/t.jpg", cut(jpeg), ("truncated",)),
        Case("truncated PNG", "T-PNG", "images/t.png", cut(png), ("truncated",)),
        Case("truncated WebP", "T-WEBP", "images/t.webp", cut(_encode(sticker, "WEBP")), ("truncated",)),
        Case("truncated GIF", "T-GIF", "images/t.gif", cut(_encode(palette, "GIF")), ("truncated",)),
        Case("truncated TIFF", "T-TIFF", "images/t.tif", cut(_encode(sticker, "TIFF")), ("truncated",)),
        Case("truncated BMP", "T-BMP", "images/t.bmp", cut(_encode(sticker, "BMP")), ("truncated",)),
        Case("PNG with a broken IDAT", "C-PNG", "images/crc.png", bytes(crc), ("corrupt", "broken")),
        Case("JPEG with its header wiped", "C-JPEG", "images/hdr.jpg", bytes(header), ("not an image",)),
        Case("zero-byte file", "ZERO", "images/zero.png", b"", ("empty file",)),
        Case("text named .jpg", "TEXT", "images/text.jpg", b"sku,image\nnot,a picture\n", ("not an image",)),
        Case("PDF named .png", "PDF", "images/doc.png", b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n", ("pdf",)),
        Case(
            "HEIC", "HEIC", "images/p.heic", b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + bytes(64), ("heic",)
        ),
        # sizes
        Case("decompression bomb (real data)", "BOMB", "images/bomb.png", bomb, ("too many pixels",)),
        Case(
            "bomb header 20000x20000",
            "BOMB-HDR",
            "images/bomb-hdr.png",
            _png_header_only(20000, 20000),
            ("too many pixels",),
        ),
        Case(
            "huge dimensions 40000x40",
            "HUGE-SIDE",
            "images/wide.png",
            _png_header_only(40000, 40),
            ("dimensions too large",),
        ),
        Case("tiny 16x16", "TINY", "images/tiny.png", _encode(sticker.resize((16, 16)), "PNG"), ("too small",)),
        Case(
            "over the byte limit",
            "OVERSIZE",
            "images/big.bmp",
            _encode(Image.new("RGB", (1000, 800), (200, 10, 10)), "BMP"),
            ("limit",),
        ),
        # animated / multi-page
        Case("animated GIF", "ANIM-GIF", "images/a.gif", animated("GIF"), ("animated",)),
        Case("animated PNG", "ANIM-PNG", "images/a.png", animated("PNG"), ("animated",)),
        Case("animated WebP", "ANIM-WEBP", "images/a.webp", animated("WEBP"), ("animated",)),
        Case("multi-page TIFF", "MULTI-TIFF", "images/m.tif", animated("TIFF"), ("multi-page",)),
        # pixel formats and colour: decoded to 8-bit sRGB and processed
        Case("valid PNG", "OK-PNG", ok_png, png, size=sticker.size),
        Case("PNG named .jpg", "WRONG-EXT", "images/real-png.jpg", _encode(flipped, "PNG"), size=sticker.size),
        Case(
            "CMYK JPEG",
            "CMYK",
            "images/cmyk.jpg",
            _encode(sticker.convert("CMYK"), "JPEG", quality=92),
            size=sticker.size,
        ),
        Case("16-bit grey PNG", "GREY16", "images/g16.png", _encode(grey16, "PNG"), size=sticker.size),
        Case("16-bit RGB PNG", "RGB16", "images/rgb16.png", rgb16.tobytes(), size=sticker.size),
        Case("palette PNG", "PALETTE", "images/pal.png", _encode(palette, "PNG"), size=sticker.size),
        Case("palette PNG with transparency", "PAL-TRNS", "images/trns.png", _encode(keyed, "PNG"), size=sticker.size),
        Case("RGBA cut-out", "ALPHA", "images/alpha.png", _encode(rgba, "PNG"), size=sticker.size),
        Case("greyscale JPEG", "GREY", "images/grey.jpg", _encode(sticker.convert("L"), "JPEG"), size=sticker.size),
        Case("single-frame GIF", "GIF", "images/one.gif", _encode(palette, "GIF"), size=sticker.size),
        Case("TIFF", "TIFF", "images/ok.tif", _encode(flipped, "TIFF"), size=sticker.size),
        Case("WebP", "WEBP", "images/ok.webp", _encode(sticker, "WEBP", quality=92), size=sticker.size),
        Case("BMP", "BMP", "images/ok.bmp", _encode(flipped, "BMP"), size=sticker.size),
        Case("EXIF orientation 6", "EXIF-6", "images/e6.jpg", _with_exif_orientation(cup, 6), size=(h, w)),
        Case("EXIF orientation 3", "EXIF-3", "images/e3.jpg", _with_exif_orientation(cup, 3), size=(w, h)),
        Case("EXIF orientation 8", "EXIF-8", "images/e8.jpg", _with_exif_orientation(cup, 8), size=(h, w)),
        Case(
            "ICC profile for another colour space",
            "ICC-LAB",
            "images/lab.jpg",
            _encode(sticker, "JPEG", icc_profile=lab_icc),
            ("icc profile",),
        ),
        Case(
            "unreadable ICC profile",
            "ICC-BAD",
            "images/badicc.jpg",
            _encode(sticker, "JPEG", icc_profile=b"garbage" * 20),
            ("icc profile",),
        ),
        Case(
            "float TIFF",
            "FLOAT",
            "images/f.tif",
            _encode(Image.fromarray(np.asarray(sticker.convert("L"), np.float32)), "TIFF"),
            ("pixel mode",),
        ),
        # SKU ids and file names
        Case("SKU with path separators", "../../etc/passwd", "images/ok.png", size=sticker.size),
        Case("SKU with backslashes", "..\\..\\windows\\sku", "images/ok.png", size=sticker.size),
        Case("unicode SKU", "咖啡杯-☕-Café", "images/ok.png", size=sticker.size),
        Case("Windows reserved SKU", "CON", "images/ok.png", size=sticker.size),
        Case("200-character SKU", long_sku, "images/ok.png", size=sticker.size),
        Case("201-character SKU", too_long, "images/ok.png", failed=("201 characters",)),
        Case("400-character SKU", far_too_long, "images/ok.png", failed=("400 characters",)),
        Case("SKU with a control character", "BELL\x07SKU", "images/ok.png", failed=("control characters",)),
        Case("empty SKU", "", "images/ok.png", failed=("empty sku",)),
        Case(
            "unicode file name", "UNICODE-FILE", "images/ünïcödé 写真.png", _encode(flipped, "PNG"), size=sticker.size
        ),
        Case("200-character file name", "LONG-FILE", "images/" + "n" * 196 + ".png", png, size=sticker.size),
        # manifest rows
        Case("duplicate SKU (first)", "DUP", "images/ok.png", size=sticker.size),
        Case("duplicate SKU (second)", "DUP", "images/ok.png", failed=("duplicate sku",)),
        Case("image path escaping the catalog", "ESCAPE", "../outside.png", failed=("outside",)),
        Case("symlink escaping the catalog", "SYMLINK", "images/link.png", failed=("outside",)),
        Case("absolute image path", "ABSOLUTE", str(outside), failed=("absolute",)),
        Case("missing image file", "MISSING", "images/nope.png", failed=("not found",)),
        Case("image path is a folder", "A-FOLDER", "images", failed=("not found",)),
        Case("empty image cell", "NO-IMAGE", "", failed=("empty image path",)),
        Case("unknown priority", "BAD-PRIORITY", "images/ok.png", failed=("unknown priority",), priority="asap"),
        Case(
            "unknown template",
            "BAD-TEMPLATE",
            "images/ok.png",
            failed=("no_such_template",),
            template="no_such_template",
        ),
        Case(
            "150-character template name",
            "LONG-TEMPLATE",
            "images/ok.png",
            failed=("template name",),
            template="t" * 150,
        ),
    ]


@pytest.mark.postgres  # PostgreSQL enforces column lengths that SQLite lets through
def test_one_batch_over_a_hostile_corpus(tmp_path, thumb_settings, pg_server_url):
    _reset_pg(pg_server_url)
    catalog = tmp_path / "catalog"
    cases = _cases(catalog)
    for case in cases:
        if case.data is not None:
            (catalog / case.image).write_bytes(case.data)
    rows = [
        {"sku": c.sku, "image": c.image, "title": c.kind, "priority": c.priority, "template": c.template} for c in cases
    ]
    manifest = write_manifest(
        catalog / "manifest.csv", rows, encoding="utf-16", columns=("sku", "image", "title", "priority", "template")
    )
    settings = thumb_settings(max_bytes=MAX_BYTES, database_url=pg_server_url)
    out = tmp_path / "out"

    report = run_batch(manifest, out, settings)

    assert report["state"] == "done"
    assert sum(report["counts"].values()) == len(cases), report["counts"]
    entries = report["skus"]
    assert len(entries) == len(cases)
    with session_scope(settings.database_url) as s:
        sizes = {
            sku.position: (img.width, img.height)
            for sku, img in s.execute(
                select(Sku, SourceImage)
                .join(SourceImage, Sku.source_image_id == SourceImage.id)
                .where(Sku.batch_id == report["batch_id"])
            )
        }
    wrong = []
    for position, (case, entry) in enumerate(zip(cases, entries, strict=True)):
        reason = (entry["reason"] or "").lower()
        if case.failed:
            if entry["state"] != "failed" or not any(w in reason for w in case.failed):
                wrong.append(f"{case.kind}: {entry['state']} ({entry['reason']}), expected failed: {case.failed}")
        elif entry["state"] not in ("exported", "rejected") or (
            entry["state"] == "rejected" and not reason.startswith("qc:")
        ):
            wrong.append(f"{case.kind}: {entry['state']} ({entry['reason']}), expected processed")
        elif case.size and sizes.get(position) != case.size:
            wrong.append(f"{case.kind}: decoded {sizes.get(position)}, expected {case.size}")
    assert not wrong, "\n".join(wrong)

    exported = [e for e in entries if e["state"] == "exported"]
    assert exported, "nothing in the corpus was exported"
    for entry in exported:
        folder = out / entry["dir"]
        assert "/" not in entry["dir"] and "\\" not in entry["dir"] and not entry["dir"].startswith(".")
        assert (folder / "thumb.jpg").is_file() and (folder / "mask.png").is_file()
    written = {p.resolve() for p in tmp_path.rglob("*")}
    assert all(p.is_relative_to(tmp_path.resolve()) for p in written)
    assert not (tmp_path / "etc").exists() and not (tmp_path.parent / "etc").exists()
    assert {p.name for p in tmp_path.iterdir()} <= {"catalog", "out", "data", "outside.png"}


@pytest.mark.parametrize(
    "data, words",
    [
        (codecs.BOM_UTF16_BE + "sku,image\nA,a.png\n".encode("utf-16-be"), None),
        ("sku,image\nÄ,a.png\n".encode("cp1252"), None),
        ("sku,image\nA,a.png\n".encode("utf-8-sig"), None),
        (b"name,picture\nA,a.png\n", "lacks required column"),
        (b"sku\nA\n", "lacks required column(s) image"),
        (b"", "is empty"),
        (b"\x89PNG\r\n\x1a\n\x00\x00", "binary"),
        (b'sku,image\n"A,a.png\n', None),  # an unclosed quote swallows the rest: one bad row
    ],
)
def test_manifest_encodings_and_missing_columns(tmp_path, data, words):
    (tmp_path / "a.png").write_bytes(_encode(_photo(64), "PNG"))
    path = tmp_path / "m.csv"
    path.write_bytes(data)
    if words is None:
        entries = load_manifest(path).entries
        assert len(entries) == 1
    else:
        with pytest.raises(ManifestError, match=words.replace("(", r"\(").replace(")", r"\)")):
            load_manifest(path)
