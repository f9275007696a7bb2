"""What a run needs on disk, checked cheaply: no model is loaded and no torch is imported.

A check reads what a loader would trip on first: the file or folder is there, every JSON
config parses, every ``*.safetensors`` header reads and its tensors fit in the file (a
truncated download fails here), and registry files match their pinned size and sha256.

Lifestyle weights are diffusers/transformers folders. ``--diffusion-dir DIR`` (the CLI) and
``ModelStore.diffusion`` use the same keys; the directory layout is one folder per key::

    DIR/inpaint/            SDXL inpainting pipeline (model_index.json, unet/, vae/, ...)
    DIR/controlnet_depth/   SDXL depth ControlNet (config.json + safetensors)
    DIR/controlnet_canny/   SDXL canny ControlNet (templates with ``controlnet: canny``)
    DIR/depth/              depth estimator, transformers folder (depth templates)
    DIR/clip/               CLIP model + tokenizer (optional: ranks the variants)
    DIR/vae/                VAE override (optional, e.g. an fp16-safe SDXL VAE)
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from pathlib import Path

from imaging.errors import WeightsMissing
from imaging.weights import WEIGHTS, weight_path

DIFFUSION_KEYS = ("inpaint", "controlnet_depth", "controlnet_canny", "depth", "clip", "vae")
OPTIONAL_KEYS = ("clip", "vae")
# Where the public weights live (Hugging Face repos, saved in the diffusers/transformers layout).
DIFFUSION_SOURCES = {
    "inpaint": "diffusers/stable-diffusion-xl-1.0-inpainting-0.1",
    "controlnet_depth": "diffusers/controlnet-depth-sdxl-1.0",
    "controlnet_canny": "diffusers/controlnet-canny-sdxl-1.0",
    "depth": "Intel/dpt-hybrid-midas (or a Depth Anything *-hf repo)",
    "clip": "openai/clip-vit-large-patch14",
    "vae": "madebyollin/sdxl-vae-fp16-fix",
}
UPSCALER_WEIGHTS = {
    "auto": ("realesrgan-x4plus-ncnn-param", "realesrgan-x4plus-ncnn-bin"),
    "realesrgan-x4plus-ncnn": ("realesrgan-x4plus-ncnn-param", "realesrgan-x4plus-ncnn-bin"),
    "realesrgan-x4plus": ("realesrgan-x4plus-pth",),
    "realesr-general-x4v3": ("realesr-general-x4v3-pth",),
    "lanczos": (),
}
MAX_HEADER = 100 * 2**20  # a safetensors header larger than this is not one


@dataclass(frozen=True)
class WeightCheck:
    """One weight the run needs: ``problem`` None when it is usable."""

    name: str  # registry name ("u2netp") or "diffusion.<key>"
    path: str
    problem: str | None
    how_to_get: str
    required: bool = True

    @property
    def ok(self) -> bool:
        return self.problem is None


def diffusion_layout(root: Path) -> dict[str, str]:
    """``RunSettings.diffusion`` for a ``--diffusion-dir``: every key whose folder exists."""
    root = Path(root).expanduser().resolve()
    return {key: str(root / key) for key in DIFFUSION_KEYS if (root / key).is_dir()}


def needed_diffusion(controlnet: str) -> list[str]:
    """The keys a lifestyle template with this ControlNet kind loads (required first)."""
    return ["inpaint", f"controlnet_{controlnet}", *(["depth"] if controlnet == "depth" else []), "clip", "vae"]


def check_registry(model_dir: Path, name: str) -> WeightCheck:
    """A registry weight file (imaging.weights): present, size and sha256 where pinned."""
    wf = WEIGHTS[name]
    path = Path(model_dir) / wf.filename
    how = wf.how_to_get if wf.source == "user" else f"`lightbox models fetch --model-dir {model_dir}`"
    try:
        weight_path(model_dir, name)
    except WeightsMissing as exc:  # "weight file PATH (NAME) has N bytes, expected M; run ..."
        problem = "missing" if not path.is_file() else str(exc).split(";")[0].split(f"({name}) ")[-1]
        return WeightCheck(name, str(path), problem, how)
    return WeightCheck(name, str(path), None, how)


def check_diffusion(key: str, source: str | None) -> WeightCheck:
    """A lifestyle weight folder (``diffusion.<key>``)."""
    how = f"{DIFFUSION_SOURCES[key]}, saved as a folder at DIR/{key}"
    required = key not in OPTIONAL_KEYS
    if source is None:
        return WeightCheck(f"diffusion.{key}", "-", "not configured", how, required)
    path = Path(source).expanduser()
    if not path.exists():
        index = "model_index.json" if key == "inpaint" else "config.json"
        problem = _hub_id_problem(source, index) if _looks_like_hub_id(source) else f"folder {path} does not exist"
        return WeightCheck(f"diffusion.{key}", source, problem, how, required)
    problem = check_pipeline_folder(path) if key == "inpaint" else check_model_folder(path, tokenizer=key == "clip")
    return WeightCheck(f"diffusion.{key}", str(path), problem, how, required)


def check_pipeline_folder(path: Path) -> str | None:
    """A diffusers pipeline folder: model_index.json and each component it lists."""
    index, problem = _read_json(path / "model_index.json")
    if problem:
        return problem
    for component, spec in sorted(index.items()):
        if component.startswith("_") or not isinstance(spec, list) or spec[0] is None:
            continue  # metadata, or a component the pipeline does not use
        sub = path / component
        if not sub.is_dir():
            return f"missing {sub}"
        if (sub / "config.json").is_file():
            problem = check_model_folder(sub)
        else:  # a scheduler or a tokenizer: configs only
            problem = _json_files_problem(sub) or (None if any(sub.glob("*.json")) else f"no config in {sub}")
        if problem:
            return problem
    return None


def check_model_folder(path: Path, tokenizer: bool = False) -> str | None:
    """A diffusers/transformers model folder: config.json, readable safetensors."""
    if not (path / "config.json").is_file():
        return f"missing {path / 'config.json'}"
    if tokenizer and not (path / "tokenizer_config.json").is_file():
        return f"missing {path / 'tokenizer_config.json'}"
    problem = _json_files_problem(path)
    if problem:
        return problem
    weights = sorted(path.glob("*.safetensors"))
    if not weights:
        return f"no *.safetensors weights in {path}"
    for file in weights:
        problem = safetensors_problem(file)
        if problem:
            return problem
    return None


def safetensors_problem(file: Path) -> str | None:
    """Why ``file`` is no readable safetensors file (header, tensor offsets), or None."""
    size = file.stat().st_size
    with file.open("rb") as fh:
        head = fh.read(8)
        if len(head) < 8:
            return f"{file} is truncated (no safetensors header)"
        (length,) = struct.unpack("<Q", head)
        if length > min(MAX_HEADER, size - 8):
            return f"{file} is not a safetensors file or is truncated"
        try:
            header = json.loads(fh.read(length))
        except ValueError:
            return f"{file} has an unreadable safetensors header"
    ends = [t["data_offsets"][1] for k, t in header.items() if k != "__metadata__" and isinstance(t, dict)]
    if max(ends, default=0) > size - 8 - length:
        return f"{file} is truncated ({size} bytes, its header says {max(ends) + 8 + length})"
    return None


def _read_json(file: Path) -> tuple[dict, str | None]:
    if not file.is_file():
        return {}, f"missing {file}"
    try:
        value = json.loads(file.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError):
        return {}, f"{file} is not valid JSON"
    return (value, None) if isinstance(value, dict) else ({}, f"{file} is not a JSON object")


def _json_files_problem(folder: Path) -> str | None:
    for file in sorted(folder.glob("*.json")):
        if file.name.endswith(".index.json"):
            continue
        problem = _read_json(file)[1]
        if problem:
            return problem
    return None


def _looks_like_hub_id(text: str) -> bool:
    return text.count("/") == 1 and not text.startswith((".", "/", "~"))


def _hub_id_problem(hub_id: str, filename: str) -> str | None:
    from imaging.depth import missing_weights  # transformers: imported only for a hub id

    return missing_weights(hub_id, filename)


def check_run_weights(
    model_dir: Path, diffusion: dict[str, str], *, segmenter: str, upscaler: str, controlnet: str | None
) -> list[WeightCheck]:
    """Every weight a run needs: the segmenter's, the upscaler's, and, for a lifestyle
    template (``controlnet`` set), its diffusion folders."""
    from imaging.segment import SEGMENTERS

    checks = [check_registry(model_dir, SEGMENTERS[segmenter].weight)]
    checks += [check_registry(model_dir, name) for name in UPSCALER_WEIGHTS.get(upscaler, ())]
    if controlnet:
        checks += [check_diffusion(key, diffusion.get(key)) for key in needed_diffusion(controlnet)]
    return checks
