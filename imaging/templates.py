"""Scene templates: how a studio or lifestyle shot looks, as YAML files teams can add.

The built-ins live in ``imaging/templates/*.yaml``. A team adds its own by dropping YAML
files into a directory and passing it to ``load_templates(extra_dirs=[...])`` (the
templates block carries that path). No code changes are needed; every file is validated
strictly, so a misspelt key fails loudly with the file name and the key.

Example (``acme_pink.yaml``)::

    name: acme_pink
    kind: studio
    version: 1
    description: Brand pink backdrop for the Acme spring range.
    background: {kind: solid, colour: "#F4C2C2"}
    shadow: {style: soft, light_direction_deg: 90, strength: 0.3}
    fill: 0.8

A lifestyle template (``kind: lifestyle``, e.g. ``templates/marble_counter.yaml``) holds the
SDXL prompt with a ``{light}`` marker where the light-direction words go, the negative
prompt, the ControlNet kind and sampler settings, placement (``fill``, ``anchor: floor``
and ``floor_y`` for counters and tables) and ``post`` settings for the generated backdrop.

The file name (without ``.yaml``/``.yml``) must equal ``name``; two files may not define
the same name (a team copies a built-in under a new name instead of overriding it).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)

from imaging.types import Background, ShadowSpec

BUILTIN_DIR = Path(__file__).parent / "templates"
RGB = tuple[int, int, int]


class TemplateError(ValueError):
    """A template file is invalid, or a requested template does not exist."""


def _parse_colour(value: object) -> object:
    """Accept ``"#RRGGBB"`` as well as ``[r, g, b]``; pydantic checks the rest."""
    if isinstance(value, str):
        text = value.strip().lstrip("#")
        if len(text) != 6:
            raise ValueError(f"colour {value!r} must be '#RRGGBB' or [r, g, b]")
        try:
            return tuple(int(text[i : i + 2], 16) for i in (0, 2, 4))
        except ValueError as exc:
            raise ValueError(f"colour {value!r} is not hexadecimal") from exc
    return value


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BackgroundSpec(_Strict):
    kind: Literal["solid", "gradient"] = "solid"
    colour: RGB = Field((255, 255, 255), description="sRGB 0-255, top colour for a gradient")
    colour2: RGB | None = Field(None, description="bottom colour; required for a gradient")

    _colours = field_validator("colour", "colour2", mode="before")(_parse_colour)

    @field_validator("colour", "colour2")
    @classmethod
    def _in_range(cls, value: RGB | None) -> RGB | None:
        if value is not None and not all(0 <= c <= 255 for c in value):
            raise ValueError(f"colour {value} has a channel outside 0..255")
        return value

    @model_validator(mode="after")
    def _gradient_needs_two(self) -> BackgroundSpec:
        if (self.kind == "gradient") != (self.colour2 is not None):
            raise ValueError("a gradient needs colour2, and only a gradient takes it")
        return self


class ShadowSettings(_Strict):
    style: Literal["soft", "hard", "floating", "none"] = "soft"
    light_direction_deg: float = Field(
        90.0, ge=0.0, lt=360.0, description="towards the light, CCW from +x, y up (imaging.types)"
    )
    strength: float = Field(0.35, ge=0.0, le=1.0, description="peak darkening under the product")


class TemplateBase(_Strict):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_]*$", description="unique id, = file stem")
    description: str = Field(min_length=1)
    version: int = Field(ge=1, description="bump on any visual change: part of cache keys")


class StudioTemplate(TemplateBase):
    kind: Literal["studio"]
    background: BackgroundSpec = BackgroundSpec()
    shadow: ShadowSettings = ShadowSettings()
    fill: float = Field(0.85, gt=0.05, le=1.0, description="product's longest side / canvas")

    def to_background(self) -> Background:
        bg = self.background
        return Background(kind=bg.kind, colour=bg.colour, colour2=bg.colour2)

    def to_shadow(self) -> ShadowSpec:
        s = self.shadow
        return ShadowSpec(style=s.style, light_direction_deg=s.light_direction_deg, strength=s.strength)


class PostSettings(_Strict):
    """Applied to the generated backdrop only; product pixels are never touched."""

    backdrop_blur: float = Field(
        0.0, ge=0.0, le=0.05, description="Gaussian sigma as a fraction of the canvas's long side"
    )
    temperature_match: float = Field(
        0.0, ge=0.0, le=1.0, description="pull the backdrop's white point towards the product's"
    )
    grain: float = Field(0.0, ge=0.0, le=12.0, description="film grain std-dev, 0-255 units")


class LifestyleTemplate(TemplateBase):
    kind: Literal["lifestyle"]
    prompt: str = Field(
        min_length=1, description="the scene, never the product; '{light}' marks where the light hint goes"
    )
    negative_prompt: str = ""
    score_prompt: str | None = Field(None, description="short text for CLIP ranking; default prompt")
    controlnet: Literal["depth", "canny"] = Field("depth", description="control image kind")
    conditioning_scale: float = Field(0.5, ge=0.0, le=2.0, description="ControlNet weight")
    control_guidance_end: float = Field(0.8, gt=0.0, le=1.0, description="stop control at")
    num_inference_steps: int = Field(30, ge=1, le=150)
    guidance_scale: float = Field(6.0, ge=1.0, le=20.0, description="classifier-free guidance")
    strength: float = Field(0.99, gt=0.0, le=1.0, description="how far to re-noise the grey")
    variants: int = Field(4, ge=1, le=16, description="seeds per SKU, ranked by CLIP")
    fill: float = Field(0.6, gt=0.05, le=1.0, description="product's longest side / canvas")
    anchor: Literal["center", "floor"] = Field(
        "center", description="floor: stand the product's base on a surface line"
    )
    floor_y: float = Field(0.86, gt=0.3, le=1.0, description="surface line / canvas height")
    mask_dilate: float = Field(0.004, ge=0.0, le=0.05, description="protected margin round the product / long side")
    light_direction_deg: float = Field(
        90.0, ge=0.0, lt=360.0, description="key light hint: prompt wording and QC's shadow check"
    )
    post: PostSettings = PostSettings()

    @field_validator("prompt")
    @classmethod
    def _only_light_placeholder(cls, value: str) -> str:
        if "{" in value.replace("{light}", "") or "}" in value.replace("{light}", ""):
            raise ValueError("the only placeholder a prompt may hold is {light}")
        return value

    @property
    def clip_text(self) -> str:
        return self.score_prompt or self.prompt.replace("{light}, ", "").replace("{light}", "")

    def render_prompt(self) -> str:
        """The prompt with ``{light}`` replaced by the light hint (appended if absent).

        Keep the light hint early: SDXL's text encoders read only the first 77 tokens.
        """
        phrase = light_phrase(self.light_direction_deg)
        text = " ".join(self.prompt.split())
        return text.replace("{light}", phrase) if "{light}" in text else f"{text}, {phrase}"


_LIGHT = (
    "the right",
    "the upper right",
    "above",
    "the upper left",
    "the left",
    "the lower left",
    "below",
    "the lower right",
)


def light_phrase(deg: float) -> str:
    """Words for a light direction (``imaging.types`` convention), e.g. 135 -> upper left."""
    return f"key light from {_LIGHT[round((deg % 360) / 45) % 8]}"


Template = Annotated[StudioTemplate | LifestyleTemplate, Field(discriminator="kind")]
_ADAPTER: TypeAdapter[StudioTemplate | LifestyleTemplate] = TypeAdapter(Template)


def _describe(exc: ValidationError) -> str:
    lines = []
    for err in exc.errors():
        loc = err["loc"][1:] if err["loc"][:1] in (("studio",), ("lifestyle",)) else err["loc"]
        where = ".".join(str(p) for p in loc) or "(top level)"
        lines.append(f"  {where}: {err['msg']}")
    return "\n".join(lines)


def load_template_file(path: Path) -> StudioTemplate | LifestyleTemplate:
    """Parse and validate one YAML template; errors name the file and the offending key."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise TemplateError(f"template file {path}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise TemplateError(f"template file {path}: expected a mapping of keys, got {type(data).__name__}")
    try:
        template = _ADAPTER.validate_python(data)
    except ValidationError as exc:
        raise TemplateError(f"template file {path} is invalid:\n{_describe(exc)}") from exc
    if template.name != path.stem:
        raise TemplateError(f"template file {path}: name {template.name!r} must match the file name {path.stem!r}")
    return template


def load_templates(extra_dirs: Sequence[Path] = ()) -> dict[str, StudioTemplate | LifestyleTemplate]:
    """All built-in templates plus those in ``extra_dirs``, keyed by name, sorted by name."""
    found: dict[str, tuple[Path, StudioTemplate | LifestyleTemplate]] = {}
    for directory in (BUILTIN_DIR, *map(Path, extra_dirs)):
        if not directory.is_dir():
            raise TemplateError(f"template directory {directory} does not exist")
        files = sorted([*directory.glob("*.yaml"), *directory.glob("*.yml")])
        for path in files:
            template = load_template_file(path)
            if template.name in found:
                raise TemplateError(
                    f"template {template.name!r} is defined twice: {found[template.name][0]} and "
                    f"{path}; copy it under a new name instead of overriding it"
                )
            found[template.name] = (path, template)
    return {name: found[name][1] for name in sorted(found)}


def get_template(
    name: str, library: dict[str, StudioTemplate | LifestyleTemplate]
) -> StudioTemplate | LifestyleTemplate:
    """The named template, or a ``TemplateError`` listing the known names by kind."""
    if name in library:
        return library[name]
    studio = sorted(n for n, t in library.items() if t.kind == "studio")
    lifestyle = sorted(n for n, t in library.items() if t.kind == "lifestyle")
    raise TemplateError(
        f"unknown template {name!r}. Studio: {', '.join(studio) or '-'}. Lifestyle: {', '.join(lifestyle) or '-'}."
    )
