"""The floor: a plain script doing the render path's work with the same weights and exports.

No Prefect, no database, no gate, no retries: for each row of a manifest, decode the
photo, run u2netp (the same checksummed ONNX file, rembg's preprocessing), threshold-free
soft mask resized to the photo, crop to the product, then write the three default
profiles' files: the product at 85 % on white 2000 x 2000 (JPEG q90), at 85 % on white
2048 x 2048 (JPEG q90), and a transparent PNG with its longest side 2048 at 95 %; each
with an sRGB ICC profile. ``bench/throughput.py --floor`` runs it on the same catalog
as ``lightbox run`` and prints the ratio; this is the speed a catalog tool has to beat.

    python bench/floor.py MANIFEST.csv OUT_DIR [--model-dir .lightbox/models]
"""

from __future__ import annotations

import argparse
import csv
import io
import sys
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
from PIL import Image, ImageCms, ImageOps

MEAN, STD = np.array([0.485, 0.456, 0.406], np.float32), np.array([0.229, 0.224, 0.225], np.float32)
SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def mask_of(session: ort.InferenceSession, image: Image.Image) -> Image.Image:
    x = np.asarray(image.resize((320, 320), Image.LANCZOS), np.float32)
    x = (x / max(float(x.max()), 1e-6) - MEAN) / STD
    out = session.run(None, {session.get_inputs()[0].name: x.transpose(2, 0, 1)[None]})[0][0, 0]
    out = (out - out.min()) / max(float(out.max() - out.min()), 1e-6)
    return Image.fromarray((out * 255).astype(np.uint8)).resize(image.size, Image.BILINEAR)


def place(cut: Image.Image, size: tuple[int, int], fill: float, background) -> Image.Image:
    scale = fill * max(size) / max(cut.size)
    product = cut.resize((max(1, round(cut.width * scale)), max(1, round(cut.height * scale))), Image.LANCZOS)
    canvas = Image.new("RGBA", size, background)
    canvas.alpha_composite(product, ((size[0] - product.width) // 2, (size[1] - product.height) // 2))
    return canvas


def render(session, photo: Path, out: Path) -> None:
    with Image.open(photo) as im:
        image = ImageOps.exif_transpose(im).convert("RGB")
    cut = image.convert("RGBA")
    cut.putalpha(mask_of(session, image))
    cut = cut.crop(cut.getchannel("A").point(lambda a: 255 if a >= 128 else 0).getbbox())
    out.mkdir(parents=True, exist_ok=True)
    for name, side in (("amazon-main", 2000), ("shopify", 2048)):
        buf = io.BytesIO()
        place(cut, (side, side), 0.85, (255, 255, 255, 255)).convert("RGB").save(
            buf, "JPEG", quality=90, icc_profile=SRGB
        )
        (out / f"{name}.jpg").write_bytes(buf.getvalue())
    aspect = 2048 / max(cut.size)
    size = (max(1, round(cut.width * aspect)), max(1, round(cut.height * aspect)))
    place(cut, size, 0.95, (0, 0, 0, 0)).save(out / "transparent.png", icc_profile=SRGB, compress_level=6)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("manifest", type=Path)
    ap.add_argument("out", type=Path)
    ap.add_argument("--model-dir", type=Path, default=Path(__file__).resolve().parents[1] / ".lightbox" / "models")
    args = ap.parse_args(argv)
    started = time.perf_counter()
    session = ort.InferenceSession(str(args.model_dir / "u2netp.onnx"), providers=["CPUExecutionProvider"])
    with args.manifest.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    for row in rows:
        render(session, args.manifest.parent / row["image"], args.out / row["sku"])
    seconds = time.perf_counter() - started
    print(f"floor: {len(rows)} SKUs in {seconds:.2f} s ({len(rows) * 60 / seconds:.1f} SKU/min)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
