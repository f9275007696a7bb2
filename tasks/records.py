"""Small pydantic records passed between tasks: ids, paths and figures — never pixels."""
from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field


class Record(BaseModel):
    model_config = ConfigDict(frozen=True)


class RunSettings(Record):
    """Everything a worker needs to process SKUs; built by the CLI or from blocks."""

    data_dir: Path = Field(description="Work files (content-addressed), caches, SQLite DB")
    database_url: str
    model_dir: Path
    segmenter: str = "u2netp"
    upscaler: str = Field("auto", description="auto | realesrgan-x4plus-ncnn | lanczos | realesrgan-x4plus")
    upscale_budget_s: float = Field(30.0, description="auto: the ncnn model only if its time estimate for the crop fits (s)")
    device: str = "cpu"
    templates_dir: Path | None = None
    profiles: dict = Field(default_factory=dict, description="extra/overridden export profiles (imaging.profiles)")
    diffusion: dict[str, str] = Field(default_factory=dict, description="lifestyle weights (ModelStore.diffusion)")
    generation_size: int = Field(1024, ge=64, description="side the scene model paints at; upsampled to the canvas")
    thresholds: dict = Field(default_factory=dict, description="QcThresholds as a dict; {} = defaults")
    max_attempts: int = Field(3, ge=1, le=6, description="renders per SKU before QC gives up")
    max_pixels: int = 40_000_000
    max_bytes: int = 50 * 2**20


class SkuJob(Record):
    sku_id: int
    sku: str
    dirname: str
    source_path: str
    template: str
    title: str | None = None
    priority: str = "standard"
    shopify_product_id: str | None = None


class SourceInfo(Record):
    sku_id: int
    sha256: str
    path: str  # decoded 8-bit sRGB copy in the work dir (PNG), orientation applied
    width: int
    height: int
    format: str
    size_bytes: int
    has_alpha: bool = False


class MaskInfo(Record):
    source_sha256: str
    path: str  # 8-bit mask on the source grid
    confidence: float
    model: str
    seconds: float


class CutoutInfo(Record):
    path: str  # RGBA PNG of the (maybe upscaled) product crop
    scale: float
    offset_x: float
    offset_y: float  # source -> cutout placement
    upscaler: str
    seconds: float


class RenderParams(Record):
    """What an attempt may change. Attempt 1 uses the template's values."""

    attempt: int = 1
    refine_strength: int = 1
    fill_holes: bool = True  # refinement fills small enclosed holes (a retry for "background inside" opens them)
    cut_bias: int = Field(0, ge=-1, le=1, description="-1 keeps more of the raw mask, +1 less")
    decontaminate: bool = False
    fill: float | None = None
    shadow_strength: float | None = None
    seed: int | None = None


class RenderInfo(Record):
    profile: str
    template: str
    path: str  # lossless canvas (PNG, RGBA when transparent)
    alpha_path: str  # product coverage on the canvas, 8-bit
    sha256: str
    scale: float
    offset_x: float
    offset_y: float  # source -> canvas placement
    params: RenderParams
    shadow_style: str | None = None
    light_direction_deg: float | None = None
    background: tuple[int, int, int] | None = None
    seed: int | None = None
    seconds: float = 0.0


class QcInfo(Record):
    profile: str
    status: str  # pass | warn | fail
    metrics: dict
    checks: list
    failing: list[str]
    thresholds_version: str
    reasons: list[str] = Field(default_factory=list)  # the failing defects, as a person would name them
    encoded_path: str  # the profile's file bytes, as export will ship them
    seconds: float = 0.0


class ExportInfo(Record):
    profile: str
    key: str
    destination: str
    sha256: str
    size: int
    skipped: bool  # True when an earlier run had already exported these bytes
    seconds: float = 0.0


class DestinationSpec(Record):
    """Where approved images go: a local folder at the run's ``out_dir`` (no ``block``),
    or a saved destination block (``LocalFolderDestination``, ``S3Destination``,
    ``ShopifyStore``) named ``"<block-type-slug>/<block-name>"``."""

    block: str | None = Field(
        None, description='e.g. "lightbox-s3-destination/catalog-assets" or '
        '"lightbox-shopify-store/acme"; empty: a local folder at out_dir')
    profiles: list[str] | None = Field(None, description="profiles sent there; empty: all of the batch's")
    mask: bool | None = Field(
        None, description="also send <sku>/mask.png; empty: yes, except to a Shopify store")
