"""imaging/profile_files.py: export profiles from YAML files, validated strictly."""

import pytest

from imaging.profile_files import ProfileError, load_profile_file, load_profile_files
from imaging.profiles import BUILTIN_PROFILES, load_profiles

ACME = """
format: jpeg
canvas: [1200, 1200]
background: white
fill: 0.8
min_fill: 0.75
max_fill: 0.9
min_side: 800
max_bytes: 5000000
frameless: true
"""


def test_a_folder_of_profiles_loads_into_run_settings_form(tmp_path):
    (tmp_path / "acme-shop.yaml").write_text(ACME)
    (tmp_path / "amazon-main.yml").write_text("quality: 95\n")  # a built-in, one field changed
    (tmp_path / "notes.txt").write_text("not a profile")
    extra = load_profile_files(tmp_path)
    assert list(extra) == ["acme-shop", "amazon-main"]
    assert extra["amazon-main"] == {"quality": 95}
    profiles = load_profiles(extra)  # what tasks/common.profiles_for does with RunSettings.profiles
    acme = profiles["acme-shop"]
    assert acme.canvas == (1200, 1200) and acme.frameless and (acme.min_fill, acme.max_fill) == (0.75, 0.9)
    assert profiles["amazon-main"].quality == 95 and profiles["amazon-main"].edge_clear
    assert BUILTIN_PROFILES["amazon-main"].quality == 90


def test_rules_reach_the_gate(tmp_path):
    from tasks.records import RunSettings
    from tasks.score import marketplace_rules

    (tmp_path / "acme-shop.yaml").write_text(ACME)
    settings = RunSettings(
        data_dir=tmp_path, database_url="sqlite://", model_dir=tmp_path, profiles=load_profile_files(tmp_path)
    )
    from tasks.common import profiles_for

    rules = marketplace_rules(profiles_for(settings)["acme-shop"])
    assert rules.fill_range == (0.75, 0.9) and rules.frameless and rules.min_longest_side == 800
    assert rules.background_rgb == (255, 255, 255) and rules.max_file_bytes == 5_000_000


def test_name_may_be_given_but_must_match_the_file(tmp_path):
    (tmp_path / "acme-shop.yaml").write_text("name: acme-shop\n" + ACME)
    assert load_profile_file(tmp_path / "acme-shop.yaml")[0] == "acme-shop"
    (tmp_path / "other.yaml").write_text("name: acme-shop\n" + ACME)
    with pytest.raises(ProfileError, match=r"other\.yaml.*must match the file name"):
        load_profile_file(tmp_path / "other.yaml")


@pytest.mark.parametrize(
    "text, key",
    [
        (ACME + "qualty: 95\n", "qualty"),
        (ACME.replace("fill: 0.8", "fill: 2"), "fill"),
        (ACME.replace("background: white", "background: pink"), "background"),
        ("format: jpeg\nbackground: white\n", "canvas"),
    ],
)
def test_errors_name_the_file_and_the_key(tmp_path, text, key):
    path = tmp_path / "acme-shop.yaml"
    path.write_text(text)
    with pytest.raises(ProfileError) as err:
        load_profile_files(tmp_path)
    assert str(path) in str(err.value) and key in str(err.value)


@pytest.mark.parametrize("text", ["- a\n- b\n", "format: [unclosed\n"])
def test_not_a_mapping_or_not_yaml(tmp_path, text):
    (tmp_path / "acme-shop.yaml").write_text(text)
    with pytest.raises(ProfileError, match="acme-shop.yaml"):
        load_profile_files(tmp_path)


def test_one_profile_defined_twice_is_refused(tmp_path):
    (tmp_path / "acme-shop.yaml").write_text(ACME)
    (tmp_path / "acme-shop.yml").write_text(ACME)
    with pytest.raises(ProfileError, match="defined twice"):
        load_profile_files(tmp_path)


def test_missing_folder(tmp_path):
    with pytest.raises(ProfileError, match="does not exist"):
        load_profile_files(tmp_path / "nope")
