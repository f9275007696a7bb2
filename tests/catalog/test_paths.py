import pytest

from catalog.paths import UnsafeName, contained_path, folder_key, sku_dirname, validate_sku

# Two ids with the same slug whose sha256 share their first 10 hex digits (found by a
# birthday search): the one case where sku_dirname gives two ids one name.
DIGEST_TWINS = ("MUG;&#:1", "MUG  $#?1")


@pytest.mark.parametrize("sku", ["MUG-001", "CUP-ESPRESSO-01", "A.B_C", "X1", "4242"])
def test_safe_ids_are_kept(sku):
    assert sku_dirname(sku) == sku


@pytest.mark.parametrize("sku", ["mug-1", "Mug-1", "a.b_c", "ABC-DEADBEEF01", "X-0123456789"])
def test_ids_with_lower_case_or_a_digest_tail_are_hashed(sku):
    name = sku_dirname(sku)
    assert name != sku and name.startswith(sku[:5])
    assert name == sku_dirname(sku)  # stable: the same id always gets the same folder


def test_an_id_equal_to_another_ids_slug_gets_its_own_folder():
    """`x y` became `x_y-<digest>`, and the id `x_y-<digest>` was kept as it is: one folder
    and one set of export keys for two SKUs."""
    slugged = sku_dirname("x y")
    assert sku_dirname(slugged) != slugged
    assert folder_key(slugged) != folder_key("x y")


def test_ids_differing_only_in_case_never_share_a_folder_on_case_insensitive_stores():
    ids = ["MUG-1", "mug-1", "Mug-1", "mUG-1", "x y", "X Y", "X_Y", "x_y"]
    ids.append(sku_dirname("x y").upper())  # the kept name a hashed one lower-cases to
    keys = {folder_key(s) for s in ids}
    assert len(keys) == len(ids)
    assert sku_dirname("MUG-1") == "MUG-1"


def test_the_only_shared_names_are_digest_twins():
    assert DIGEST_TWINS[0] != DIGEST_TWINS[1]
    assert sku_dirname(DIGEST_TWINS[0]) == sku_dirname(DIGEST_TWINS[1])


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
