"""Pure rules, no servers: magic numbers, Range headers, sensitive-word matching, file names,
and Office archives."""

from __future__ import annotations

import io
import zipfile

import pytest

from services.media.content import DOCX, JPEG, MATROSKA, MP4, PDF, PNG, QUICKTIME, WEBM, WEBP, ZIP, UploadRefused, sniff
from services.media.documents import inspect_office_zip
from services.media.http_api import parse_range
from services.media.screening import PolicyView, normalize
from services.media.uploads import _PATH_LIKE


@pytest.mark.parametrize("head, expected", [
    (b"\xff\xd8\xff\xe0\x00\x10JFIF", JPEG),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", PNG),
    (b"RIFF\x10\x00\x00\x00WEBPVP8 ", WEBP),
    (b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00", MP4),
    (b"\x00\x00\x00\x14ftypqt  \x00\x00\x00\x00", QUICKTIME),
    (b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01\x42\x82\x84webm", WEBM),
    (b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01\x42\x82\x88matroska", MATROSKA),
    (b"%PDF-1.7\n", PDF),
    (b"PK\x03\x04\x14\x00", ZIP),
    (b"\x00\x00\x00\x18ftypheic\x00\x00", None),  # HEIC photos are not taken (yet)
    (b"GIF89a\x01\x00", None),
    (b"MZ\x90\x00", None),
    (b"hello world", None),
])
def test_the_bytes_decide_the_type(head, expected):
    assert sniff(head) is expected


@pytest.mark.parametrize("header, size, expected", [
    (None, 100, None), ("bytes=0-9", 100, (0, 10)), ("bytes=90-", 100, (90, 100)), ("bytes=-10", 100, (90, 100)),
    ("bytes=-500", 100, (0, 100)), ("bytes=50-1000", 100, (50, 100)), ("bytes=9-3", 100, None),
    ("bytes=0-1,5-6", 100, None), ("items=0-1", 100, None), ("bytes=-", 100, None),
])
def test_range_headers(header, size, expected):
    assert parse_range(header, size) == expected


@pytest.mark.parametrize("header", ["bytes=100-", "bytes=-0", "bytes=150-200"])
def test_unsatisfiable_ranges(header):
    with pytest.raises(ValueError):
        parse_range(header, 100)


def test_sensitive_words_match_through_spacing_width_and_punctuation():
    policy = PolicyView("d", 1, ("赌博", "六合彩", "ABC"), is_default=False)
    assert normalize("Ａ Ｂ-Ｃ") == "abc"
    assert policy.find("周末 赌*博、买 六.合.彩，abc") == ["赌博", "六合彩", "ABC"]
    assert policy.find("正常的志愿服务报道") == []


@pytest.mark.parametrize("name, refused", [
    ("照片.jpg", False), ("report v2.final.pdf", False), ("a..b.jpg", False),
    ("../x.jpg", True), ("a/b.jpg", True), ("a\\b.jpg", True), ("C:x.jpg", True), (".bashrc", True), ("..", True),
])
def test_only_plain_file_names(name, refused):
    assert bool(_PATH_LIKE.search(name)) == refused


def _docx(**extra) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("word/document.xml", "<w:document>" + "志愿服务" * 200 + "</w:document>")
        for name, data in extra.items():
            archive.writestr(name, data)
    return out.getvalue()


def test_office_archives_are_recognised_and_damage_is_refused():
    assert inspect_office_zip(io.BytesIO(_docx()), 10_000_000, "file") is DOCX
    with pytest.raises(UploadRefused) as too_big:
        inspect_office_zip(io.BytesIO(_docx()), 1_000, "file")
    assert too_big.value.reason == "zip_bomb"
    damaged = bytearray(_docx())
    start = damaged.index(b"word/document.xml") + len("word/document.xml")
    damaged[start + 10:start + 20] = b"\x00" * 10  # inside the compressed entry: the CRC no longer matches
    with pytest.raises(UploadRefused) as corrupt:
        inspect_office_zip(io.BytesIO(bytes(damaged)), 10_000_000, "file")
    assert corrupt.value.reason == "corrupt_document"
