import hashlib
import re
import tracemalloc
import warnings
import zipfile

import pytest

from catalog.manifest import MAX_MANIFEST_BYTES, ManifestError, load_manifest
from catalog.paths import folder_key, sku_dirname
from catalog.unzip import remove_unpacked, unpacked_folders
from tests.catalog.test_paths import DIGEST_TWINS


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


def test_an_image_problem_fails_the_sku_with_that_reason(tmp_path):
    """The Shopify refresh writes why a product's image could not be fetched; the SKU fails
    with those words (one line, bounded), not with "image file not found"."""
    _images(tmp_path, "a.png")
    long = "image not fetched: " + "x" * 1000
    (tmp_path / "m.csv").write_text(
        "sku,image,image_problem\n"
        "A,a.png,\n"
        'B,,"image not fetched: 41 MB is over the\n 20 MB cap"\n'
        f"C,,{long}\n"
        ',,"image not fetched: timed out"\n'
    )
    a, b, c, d = load_manifest(tmp_path / "m.csv").entries
    assert a.problem is None and a.image == tmp_path / "a.png"
    assert b.problem == "image not fetched: 41 MB is over the 20 MB cap"
    assert c.problem.startswith("image not fetched: xxx") and len(c.problem) == 300
    assert "empty SKU" in d.problem  # a bad SKU is named as such first


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


# --- hostile ZIPs, built here; memory is measured with tracemalloc -------------------------


def _peak_mib(call):
    """Run ``call``; return (its exception or None, the peak traced allocation in MiB)."""
    tracemalloc.start()
    try:
        call()
    except Exception as exc:  # the caller asserts which
        error = exc
    else:
        error = None
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    return error, peak / 2**20


def _catalog_zip(path, extra=(), compression=zipfile.ZIP_DEFLATED):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # duplicate names are what some tests build
        with zipfile.ZipFile(path, "w", compression) as z:
            z.writestr("cat/m.csv", "sku,image\nZ1,z.png\n")
            z.writestr("cat/z.png", b"\x89PNG fake")
            for name, data in extra:
                z.writestr(name, data)
    return path


def test_zip_bomb_is_refused_without_inflating_it(tmp_path):
    """A 100 MiB member of zeros deflates to ~100 kB (ratio ~1000:1); it was read whole into
    memory (the audit saw 825 MiB for a 400 kB ZIP)."""
    archive = tmp_path / "bomb.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("cat/m.csv", "sku,image\nZ1,bomb.png\n")
        with z.open("cat/bomb.png", "w", force_zip64=True) as member:
            for _ in range(100):
                member.write(bytes(2**20))
    assert archive.stat().st_size < 400_000
    error, peak = _peak_mib(lambda: load_manifest(archive, unpack_dir=tmp_path / "unpacked"))
    assert isinstance(error, ManifestError) and "cat/bomb.png" in str(error) and "ratio" in str(error)
    assert peak < 8, f"peak {peak:.1f} MiB"
    assert list((tmp_path / "unpacked").iterdir()) == []  # nothing left behind


def test_a_large_member_is_streamed_with_flat_memory(tmp_path):
    archive = tmp_path / "big.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_STORED) as z:
        z.writestr("cat/m.csv", "sku,image\nBIG,big.bmp\n")
        with z.open("cat/big.bmp", "w") as member:
            for _ in range(48):
                member.write(b"BM" + bytes(2**20 - 2))
    error, peak = _peak_mib(lambda: load_manifest(archive, unpack_dir=tmp_path / "unpacked"))
    assert error is None
    assert peak < 8, f"peak {peak:.1f} MiB"
    (entry,) = load_manifest(archive, unpack_dir=tmp_path / "unpacked").entries
    assert entry.problem is None and entry.image.stat().st_size == 48 * 2**20


def test_too_many_members_are_refused_before_unpacking(tmp_path):
    """Folder entries count too: 20,001 of them used to pass the file-only count."""
    archive = tmp_path / "many.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("cat/m.csv", "sku,image\nZ1,z.png\n")
        z.writestr("cat/z.png", b"\x89PNG fake")
        for i in range(20_001):
            z.writestr(zipfile.ZipInfo(f"d{i}/"), b"")
    with pytest.raises(ManifestError, match=r"20003 entries \(limit 20000\)"):
        load_manifest(archive, unpack_dir=tmp_path / "unpacked")
    assert not (tmp_path / "unpacked").exists()  # refused from the end record alone


@pytest.mark.parametrize(
    "names,named",
    [
        (["a", "a/b.png"], "'a/b.png' needs a folder where member 'a' is a file"),
        (["a/b.png", "a"], "'a' clashes with member 'a/b.png'"),
        (["a/", "a"], "'a' clashes with member 'a/'"),
        (["sub/.."], "'sub/..' points outside"),
        (["sub/./x.png"], "'sub/./x.png' is not a plain relative path"),
        (["x.png", "x.png"], "'x.png' clashes with member 'x.png'"),
        (["IMG.png", "img.png"], "'img.png' clashes with member 'IMG.png'"),
    ],
)
def test_clashing_member_names_give_a_manifest_error_naming_the_member(tmp_path, names, named):
    archive = _catalog_zip(tmp_path / "clash.zip", [(n, b"x") for n in names])
    with pytest.raises(ManifestError, match=re.escape(named)):
        load_manifest(archive, unpack_dir=tmp_path / "unpacked")
    assert list((tmp_path / "unpacked").iterdir()) == []


def test_a_corrupt_member_gives_a_manifest_error(tmp_path):
    archive = _catalog_zip(tmp_path / "crc.zip", [("cat/y.png", b"PAYLOAD-" * 8)], zipfile.ZIP_STORED)
    data = bytearray(archive.read_bytes())
    data[data.index(b"PAYLOAD-")] ^= 0xFF  # the stored bytes no longer match their CRC
    archive.write_bytes(bytes(data))
    with pytest.raises(ManifestError, match="'cat/y.png' cannot be read"):
        load_manifest(archive, unpack_dir=tmp_path / "unpacked")


def test_each_load_unpacks_into_its_own_folder_which_can_be_removed(tmp_path):
    archive = _catalog_zip(tmp_path / "cat.zip")
    first = load_manifest(archive, unpack_dir=tmp_path / "unpacked")
    second = load_manifest(archive, unpack_dir=tmp_path / "unpacked")
    assert first.sha256 == second.sha256 == hashlib.sha256(archive.read_bytes()).hexdigest()
    assert first.unpacked != second.unpacked and first.unpacked.name.startswith(first.sha256[:16])
    folders = unpacked_folders([e.image for e in first.entries], tmp_path / "unpacked")
    assert folders == {first.unpacked}
    assert remove_unpacked(folders) == [first.unpacked]
    assert not first.unpacked.exists() and second.entries[0].image.is_file()


def test_a_zip_with_no_usable_manifest_leaves_nothing_unpacked(tmp_path):
    archive = tmp_path / "empty.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("notes.txt", "no images")
    with pytest.raises(ManifestError, match="no images"):
        load_manifest(archive, unpack_dir=tmp_path / "unpacked")
    assert list((tmp_path / "unpacked").iterdir()) == []


# --- folders, sizes, colliding SKUs ----------------------------------------------------------


def test_folder_manifest_refuses_symlinks_out_of_the_folder(tmp_path):
    outside = tmp_path / "secret.png"
    outside.write_bytes(b"\x89PNG private")
    folder = tmp_path / "catalog"
    folder.mkdir()
    _images(folder, "IN-1.png")
    (folder / "OUT-1.png").symlink_to(outside)
    (folder / "IN-2.png").symlink_to(folder / "IN-1.png")  # inside: allowed, as for CSV rows
    entries = {e.sku: e for e in load_manifest(folder).entries}
    assert entries["IN-1"].problem is None and entries["IN-2"].problem is None
    assert entries["IN-2"].image == (folder / "IN-1.png").resolve()
    assert "outside the catalog folder" in entries["OUT-1"].problem
    assert entries["OUT-1"].image is None


def test_csv_size_is_checked_before_reading(tmp_path):
    huge = tmp_path / "m.csv"
    with open(huge, "wb") as fh:
        fh.truncate(MAX_MANIFEST_BYTES + 1)  # sparse: costs no disk
    error, peak = _peak_mib(lambda: load_manifest(huge))
    assert isinstance(error, ManifestError) and f"{MAX_MANIFEST_BYTES + 1} bytes" in str(error)
    assert peak < 1, f"peak {peak:.1f} MiB"


@pytest.mark.parametrize("form", ["csv", "folder"])
def test_skus_that_would_share_a_folder_fail_naming_both(tmp_path, form):
    first, second = DIGEST_TWINS
    if form == "csv":
        _images(tmp_path, "a.png")
        (tmp_path / "m.csv").write_text(f'sku,image\n"{first}",a.png\nOK-1,a.png\n"{second}",a.png\n')
        entries = load_manifest(tmp_path / "m.csv").entries
        where = "row 1"
    else:
        _images(tmp_path, f"{first}.png", f"{second}.png")
        entries = sorted(load_manifest(tmp_path).entries, key=lambda e: e.problem or "")
        first, second = entries[0].sku, entries[1].sku
        where = f"file '{first}.png'"
    problems = [e.problem for e in entries if e.problem]
    assert problems == [
        f"SKU {second!r} and SKU {first!r} ({where}) would share the folder {sku_dirname(first)!r}: rename one of them"
    ]


def test_an_id_equal_to_another_ids_folder_name_is_a_distinct_sku(tmp_path):
    _images(tmp_path, "a.png")
    slugged = sku_dirname("x y")
    (tmp_path / "m.csv").write_text(f"sku,image\nx y,a.png\n{slugged},a.png\nMUG-1,a.png\nmug-1,a.png\n")
    entries = load_manifest(tmp_path / "m.csv").entries
    assert all(e.problem is None for e in entries)
    assert len({folder_key(e.sku) for e in entries}) == 4
