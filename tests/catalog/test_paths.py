import pytest

from catalog.paths import UnsafeName, contained_path, sku_dirname, validate_sku


@pytest.mark.parametrize("sku", ["MUG-001", "a.b_c", "X1"])
def test_safe_ids_are_kept(sku):
    assert sku_dirname(sku) == sku


@pytest.mark.parametrize(
    "sku", ["../../etc/passwd", "a/b", "a\\b", "..", ".hidden", "CON", "tasse-é", "商品-1", "x" * 150, "a b"]
)
def test_hostile_ids_become_safe_unique_names(sku):
    name = sku_dirname(sku)
    assert "/" not in name and "\\" not in name and not name.startswith(".")
    assert len(name) <= 60
    assert name.isascii()
    assert name != sku


def test_distinct_ids_never_share_a_folder():
    names = {sku_dirname(s) for s in ["a/b", "a_b", "a\\b", "a b", "A/B"]}
    assert len(names) == 5


@pytest.mark.parametrize(
    "raw,reason", [("", "empty"), ("   ", "empty"), ("a\x00b", "control"), ("x" * 201, "201 characters")]
)
def test_invalid_ids_are_refused(raw, reason):
    with pytest.raises(UnsafeName, match=reason):
        validate_sku(raw)


def test_contained_path_refuses_escapes(tmp_path):
    (tmp_path / "img").mkdir()
    assert contained_path(tmp_path, "img/a.jpg") == (tmp_path / "img" / "a.jpg").resolve()
    for bad in ["../x.jpg", "/etc/passwd", "img/../../x.jpg", ""]:
        with pytest.raises(UnsafeName):
            contained_path(tmp_path, bad)


def test_contained_path_refuses_symlink_escape(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    base = tmp_path / "base"
    base.mkdir()
    (base / "link").symlink_to(outside)
    with pytest.raises(UnsafeName, match="outside"):
        contained_path(base, "link/x.jpg")
