"""Small pydantic records passed between tasks: ids, paths and figures — never pixels."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, model_validator


class Record(BaseModel):
    model_config = ConfigDict(frozen=True)


class RunSettings(Record):
    """Everything a worker needs to process SKUs; built by the CLI, or named by a deployment.

    A deployment carries block *names* (``catalog_block``, ``model_store_block``), never the
    values behind them: ``tasks.settings.resolve_settings`` loads the blocks when the run
    starts (docs/ARCHITECTURE.md#deployment). The catalog is reached one way only: a
    ``database_url`` or a ``catalog_block``. With a ``model_store_block`` the block says where
    the weights are and which backends run on which device (``model_dir``, ``segmenter``,
    ``upscaler``, ``device``: left at their defaults here); ``diffusion`` keys given here
    are laid over the block's."""

    # a resolved catalog URL may hold a password: validation errors must not quote it
    model_config = ConfigDict(frozen=True, hide_input_in_errors=True)

    data_dir: Path = Field(description="Work files (content-addressed), caches, SQLite DB")
    work_store: str | None = Field(
        None,
        description='work files in S3: a saved S3Destination block, "lightbox-s3-destination/<name>"; '
        "empty: <data_dir>/work on this machine",
    )
    database_url: str | None = Field(None, description="the catalog's SQLAlchemy URL; or name catalog_block")
    catalog_block: str | None = Field(
        None, description='name of a saved CatalogDatabase block ("catalog"), loaded when the run starts'
    )
    model_store_block: str | None = Field(
        None,
        description='name of a saved ModelStore block ("gpu"), loaded when the run starts: '
        "model_dir, segmenter, upscaler, device and diffusion come from it",
    )
    model_dir: Path | None = Field(None, description="local weights; or name model_store_block")
    segmenter: str = "u2netp"
    upscaler: str = Field("auto", description="auto | realesrgan-x4plus-ncnn | lanczos | realesrgan-x4plus")
    upscale_budget_s: float = Field(
        30.0, description="auto: the ncnn model only if its time estimate for the crop fits (s)"
    )
    device: str = "cpu"
    templates_dir: Path | None = None
    profiles: dict = Field(default_factory=dict, description="extra/overridden export profiles (imaging.profiles)")
    diffusion: dict[str, str] = Field(default_factory=dict, description="lifestyle weights (ModelStore.diffusion)")
    generation_size: int = Field(1024, ge=64, description="side the scene model paints at; upsampled to the canvas")
    thresholds: dict = Field(default_factory=dict, description="QcThresholds as a dict; {} = defaults")
    max_attempts: int = Field(3, ge=1, le=6, description="renders per SKU before QC gives up")
    max_pixels: int = 64_000_000
    max_bytes: int = 50 * 2**20

    @model_validator(mode="after")
    def _one_source_each(self) -> RunSettings:
        if (self.database_url is None) == (self.catalog_block is None):
            raise ValueError(
                "the catalog is reached one way: give database_url or catalog_block (a CatalogDatabase block), "
                + ("not both" if self.database_url else "neither was given")
            )
        if self.model_store_block is None:
            if self.model_dir is None:
                raise ValueError("give model_dir, or model_store_block (a ModelStore block)")
            return self
        defaults = RunSettings.model_fields
        clashing = [name for name in MODEL_STORE_FIELDS if getattr(self, name) != defaults[name].default]
        if clashing:
            raise ValueError(
                f"{', '.join(clashing)} given beside model_store_block {self.model_store_block!r}, "
                "which sets them: change them in that block (or name another block)"
            )
        return self

    @property
    def resolved(self) -> bool:
        """No block left to load: every value is here."""
        return self.catalog_block is None and self.model_store_block is None


# What a ModelStore block sets; with model_store_block they stay at their defaults here.
MODEL_STORE_FIELDS = ("model_dir", "segmenter", "upscaler", "device")


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
    path: str  # the original bytes, stored in the work dir under their sha256
    width: int
    height: int
    format: str
    size_bytes: int


DEFAULT_FILL = 0.85  # the profiles' product fill when a render used the default
DEFAULT_SHADOW = 0.35  # the studio templates' shadow strength when a render used the default
_BOUNDS = {"fill": (0.5, 0.95), "shadow_strength": (0.0, 1.0), "refine_strength": (0, 3), "cut_bias": (-1, 1)}


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

    def adjusted(self, changes: dict) -> RenderParams:
        """The next attempt's parameters: these with ``changes`` applied, the attempt counted
        up. The one place both QC retries (tasks/adjust.py) and reviewers' re-renders
        (tasks/review.py) change a render. A change is ``"+n"``/``"-n"`` (add), ``"*f"``
        (multiply), ``"target"`` (fill: the profiles' default) or a value; an unset fill,
        shadow or seed starts from its default; results stay within what the compositor
        and refinement accept."""
        update: dict = {"attempt": self.attempt + 1}
        for key, change in changes.items():
            current = getattr(self, key)
            if current is None:
                current = {"fill": DEFAULT_FILL, "shadow_strength": DEFAULT_SHADOW, "seed": 0}[key]
            value = DEFAULT_FILL if (key, change) == ("fill", "target") else _apply(current, change)
            if key in _BOUNDS:
                low, high = _BOUNDS[key]
                value = type(value)(min(high, max(low, value)))
            update[key] = value
        return self.model_copy(update=update)


def _apply(current, change):
    """``"+1"``/``"-0.05"`` add, ``"*0.6"`` multiplies, anything else replaces."""
    if isinstance(change, str) and change[:1] in "+-*":
        op, amount = change[0], float(change[1:])
        value = current * amount if op == "*" else current + (amount if op == "+" else -amount)
        return type(current)(round(value, 3)) if isinstance(current, int) and op != "*" else round(value, 3)
    return change


class RenderInfo(Record):
    profile: str
    template: str
    path: str  # the encoded file for the profile, as export ships it
    sha256: str  # of that file
    scale: float
    offset_x: float
    offset_y: float  # source -> canvas placement
    params: RenderParams
    shadow_style: str | None = None
    light_direction_deg: float | None = None
    background: tuple[int, int, int] | None = None
    seed: int | None = None
    seconds: float = 0.0
    digital_source_type: str | None = None  # IPTC provenance written into the file (imaging/provenance.py)


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
        None,
        description='e.g. "lightbox-s3-destination/catalog-assets" or '
        '"lightbox-shopify-store/acme"; empty: a local folder at out_dir',
    )
    profiles: list[str] | None = Field(None, description="profiles sent there; empty: all of the batch's")
    mask: bool | None = Field(None, description="also send <sku>/mask.png; empty: yes, except to a Shopify store")
