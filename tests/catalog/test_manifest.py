import zipfile

import pytest

from catalog.manifest import ManifestError, load_manifest


def _images(folder, *names):
    for name in names:
        (folder / name).write_bytes(b"\x89PNG fake")


def test_csv_with_optional_columns(tmp_path):
    _images(tmp_path, "a.png", "b.png")
    (tmp_path / "m.csv").write_text(
        "SKU,Image,Title,template,priority\nA1,a.png,Mug,white_studio,urgent\nB2,b.png,,,\n"
    )
    m = load_manifest(tmp_path / "m.csv")
    assert [e.sku for e in m.entries] == ["A1", "B2"]
    assert m.entries[0].title == "Mug" and m.entries[0].priority == "urgent"
    assert m.entries[1].template is None and m.entries[1].priority == "standard"
    assert all(e.problem is None for e in m.entries)
    assert len(m.sha256) == 64


def test_shopify_product_ids_are_normalised_to_gids(tmp_path):
    _images(tmp_path, "a.png", "b.png", "c.png", "d.png")
    (tmp_path / "m.csv").write_text(
        "sku,image,shopify_product_id\nA,a.png,1001\nB,b.png,gid://shopify/Product/42\n"
        "C,c.png,\nD,d.png,gid://shopify/Variant/7\n"
    )
    a, b, c, d = load_manifest(tmp_path / "m.csv").entries
    assert a.shopify_product_id == "gid://shopify/Product/1001"
    assert b.shopify_product_id == "gid://shopify/Product/42"
    assert c.shopify_product_id is None and c.problem is None
    assert d.problem == "shopify_product_id 'gid://shopify/Variant/7' is neither a number nor gid://shopify/Product/<n>"


@pytest.mark.parametrize(
    "text,reason",
    [
        ("sku,title\nA,x\n", "lacks required column"),
        ("", "empty"),
    ],
)
def test_unusable_manifests_raise(tmp_path, text, reason):
    (tmp_path / "m.csv").write_text(text)
    with pytest.raises(ManifestError, match=reason):
        load_manifest(tmp_path / "m.csv")


def test_missing_manifest_raises(tmp_path):
    with pytest.raises(ManifestError, match="not found"):
        load_manifest(tmp_path / "nope.csv")


def test_row_problems_do_not_stop_the_batch(tmp_path):
    _images(tmp_path, "a.png")
    (tmp_path / "m.csv").write_text(
        "sku,image,priority\nA,a.png,\nA,a.png,\n,a.png,\nB,../escape.png,\nC,missing.png,\nD,a.png,asap\n"
    )
    entries = load_manifest(tmp_path / "m.csv").entries
    problems = [e.problem for e in entries]
    assert problems[0] is None
    assert "duplicate SKU 'A'" in problems[1] and "row 1" in problems[1]
    assert "empty SKU" in problems[2]
    assert "outside the catalog folder" in problems[3]
    assert "not found" in problems[4]
    assert "unknown priority" in problems[5]


@pytest.mark.parametrize("encoding", ["utf-8-sig", "utf-16", "cp1252"])
def test_manifest_encodings(tmp_path, encoding):
    _images(tmp_path, "t.png")
    (tmp_path / "m.csv").write_bytes("sku,image,title\nT1,t.png,Tasse café\n".encode(encoding))
    m = load_manifest(tmp_path / "m.csv")
    assert m.entries[0].title == "Tasse café"
    assert m.entries[0].sku == "T1"


def test_folder_manifest_uses_stems_and_ignores_other_files(tmp_path):
    _images(tmp_path, "MUG-1.jpg", "MUG-2.png", "MUG-2.webp")
    (tmp_path / "notes.txt").write_text("x")
    m = load_manifest(tmp_path)
    assert [e.sku for e in m.entries] == ["MUG-1", "MUG-2", "MUG-2"]
    assert "duplicate SKU" in m.entries[2].problem
    assert m.ignored == ["notes.txt"]


def test_zip_manifest_and_zip_slip(tmp_path):
    archive = tmp_path / "cat.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("cat/m.csv", "sku,image\nZ1,z.png\n")
        z.writestr("cat/z.png", b"\x89PNG fake")
    m = load_manifest(archive, unpack_dir=tmp_path / "unpacked")
    assert m.entries[0].sku == "Z1" and m.entries[0].problem is None
    evil = tmp_path / "evil.zip"
    with zipfile.ZipFile(evil, "w") as z:
        z.writestr("../../evil.png", b"x")
    with pytest.raises(ManifestError, match="outside"):
        load_manifest(evil, unpack_dir=tmp_path / "unpacked")
