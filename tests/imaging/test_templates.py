"""The template library: built-ins, team extensions from a directory, strict validation."""

from __future__ import annotations

from pathlib import Path

import pytest

from imaging.templates import (
    BUILTIN_DIR,
    LifestyleTemplate,
    StudioTemplate,
    TemplateError,
    get_template,
    light_phrase,
    load_templates,
)
from imaging.types import Background, ShadowSpec

STUDIO = {"white_studio", "white_studio_hard", "white_floating", "colour_studio", "gradient_studio"}
LIFESTYLE = {
    "marble_counter",
    "kitchen_counter",
    "linen_flatlay",
    "outdoor_garden",
    "wooden_table",
    "concrete_loft",
    "bathroom_shelf",
    "beach_sand",
}

EXTRA = """\
name: acme_pink
kind: studio
version: 2
description: Brand pink backdrop.
background: {kind: solid, colour: "#F4C2C2"}
shadow: {style: hard, light_direction_deg: 45, strength: 0.3}
fill: 0.8
"""


def _write(directory: Path, name: str, text: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.yaml"
    path.write_text(text)
    return path


def test_builtins_load_and_cover_both_kinds():
    library = load_templates()
    kinds = {name: t.kind for name, t in library.items()}
    assert STUDIO <= {n for n, k in kinds.items() if k == "studio"}
    lifestyle = {n for n, k in kinds.items() if k == "lifestyle"}
    assert LIFESTYLE <= lifestyle and len(lifestyle) >= 8
    assert sorted(p.stem for p in BUILTIN_DIR.glob("*.yaml")) == sorted(library)
    for template in library.values():
        assert template.description and template.version >= 1
        if isinstance(template, LifestyleTemplate):
            prompt = template.render_prompt()
            assert "{" not in prompt and "key light from" in prompt
            assert template.negative_prompt and template.clip_text
            assert 0.0 < template.fill < 1.0 and template.variants >= 1


def test_white_studio_is_marketplace_white_with_soft_shadow_from_above():
    white = get_template("white_studio", load_templates())
    assert isinstance(white, StudioTemplate)
    assert white.to_background() == Background(kind="solid", colour=(255, 255, 255))
    assert white.to_shadow() == ShadowSpec(style="soft", light_direction_deg=90.0, strength=0.35)
    assert white.fill == 0.85


def test_gradient_studio_converts_to_a_two_colour_background():
    bg = load_templates()["gradient_studio"].to_background()
    assert bg.kind == "gradient" and bg.colour2 is not None and bg.colour != bg.colour2


def test_an_extra_directory_adds_a_template_without_code(tmp_path):
    _write(tmp_path, "acme_pink", EXTRA)
    library = load_templates([tmp_path])
    pink = get_template("acme_pink", library)
    assert pink.to_background().colour == (0xF4, 0xC2, 0xC2)
    assert pink.to_shadow().style == "hard" and pink.version == 2
    assert "white_studio" in library  # built-ins stay


def test_an_unknown_key_names_the_file_and_the_key(tmp_path):
    bad = _write(
        tmp_path,
        "my_scene",
        (BUILTIN_DIR / "marble_counter.yaml")
        .read_text()
        .replace("name: marble_counter", "name: my_scene")
        .replace("backdrop_blur", "backdrop_blurr"),
    )
    with pytest.raises(TemplateError) as info:
        load_templates([tmp_path])
    message = str(info.value)
    assert str(bad) in message and "post.backdrop_blurr" in message and "Extra inputs" in message


@pytest.mark.parametrize(
    ("change", "key"),
    [
        (("fill: 0.8", "fill: 1.7"), "fill"),
        (("version: 2", "version: 0"), "version"),
        (('colour: "#F4C2C2"', "colour: [300, 0, 0]"), "background.colour"),
        (("kind: solid", "kind: gradient"), "background"),
        (("style: hard", "style: dramatic"), "shadow.style"),
        (("kind: studio", "kind: video"), "kind"),
    ],
)
def test_bad_values_name_the_key(tmp_path, change, key):
    path = _write(tmp_path, "acme_pink", EXTRA.replace(*change))
    with pytest.raises(TemplateError) as info:
        load_templates([tmp_path])
    assert str(path) in str(info.value) and key in str(info.value)


def test_a_missing_required_key_is_named(tmp_path):
    text = "name: bare\nkind: lifestyle\nversion: 1\ndescription: no prompt\n"
    _write(tmp_path, "bare", text)
    with pytest.raises(TemplateError, match=r"bare\.yaml(.|\n)*  prompt: Field required"):
        load_templates([tmp_path])


def test_prompt_placeholders_other_than_light_are_rejected(tmp_path):
    text = (BUILTIN_DIR / "beach_sand.yaml").read_text().replace("name: beach_sand", "name: odd")
    _write(tmp_path, "odd", text.replace("{light}", "{sku}"))
    with pytest.raises(TemplateError, match="prompt"):
        load_templates([tmp_path])


def test_file_name_must_match_template_name(tmp_path):
    _write(tmp_path, "not_pink", EXTRA)
    with pytest.raises(TemplateError, match="must match the file name"):
        load_templates([tmp_path])


def test_a_duplicate_name_names_both_files(tmp_path):
    path = _write(tmp_path, "white_studio", EXTRA.replace("acme_pink", "white_studio"))
    with pytest.raises(TemplateError) as info:
        load_templates([tmp_path])
    assert str(path) in str(info.value) and str(BUILTIN_DIR / "white_studio.yaml") in str(info.value)


def test_broken_yaml_and_missing_directory_are_clear(tmp_path):
    _write(tmp_path, "broken", "name: broken\nkind: [studio\n")
    with pytest.raises(TemplateError, match="not valid YAML"):
        load_templates([tmp_path])
    with pytest.raises(TemplateError, match="does not exist"):
        load_templates([tmp_path / "nowhere"])


def test_unknown_template_lists_known_names():
    with pytest.raises(TemplateError) as info:
        get_template("moon_base", load_templates())
    assert "moon_base" in str(info.value)
    assert "white_studio" in str(info.value) and "marble_counter" in str(info.value)


@pytest.mark.parametrize(
    ("deg", "words"),
    [
        (90, "above"),
        (135, "the upper left"),
        (45, "the upper right"),
        (180, "the left"),
        (0, "the right"),
        (350, "the right"),
    ],
)
def test_light_phrase_follows_the_shared_angle_convention(deg, words):
    assert light_phrase(deg) == f"key light from {words}"
