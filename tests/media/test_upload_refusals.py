"""Bad uploads are refused with a clear error naming the field, and nothing is stored half: no
asset, no blob, no chunk is left behind, and the refusal is counted by reason."""

from __future__ import annotations

import io
import os
import re
import struct
import threading
import zipfile
import zlib

import grpc
import pytest

from tests.support.grpc_helpers import bearer, expect_error
from wenming.media.v1 import media_pb2 as pb

from .helpers import CHUNK, MP4_HEAD, chunk_docs, chunk_state, fake_video, header, jpeg, upload_messages
from tests.support.waiting import wait_until

MIB = 1024 * 1024


def stored_state(media_db, district_id: str) -> dict:
    """Everything an upload could leave behind: assets, blobs, chunks."""
    return {"assets": media_db.assets.count_documents({"district_id": district_id}),
            "blobs": media_db.blobs.count_documents({"district_id": district_id}), "chunks": chunk_state(media_db)}


def refused_count(media_client, reason: str) -> float:
    match = re.search(rf'^media_uploads_refused_total{{reason="{reason}"}} (\S+)$', media_client.metrics(), re.M)
    return float(match.group(1)) if match else 0.0


def png_bomb(width: int, height: int) -> bytes:
    """A tiny PNG whose header announces width × height pixels."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = zlib.compress((b"\x00" + bytes(width)) * 8)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", rows) + chunk(b"IEND", b""))


def office_zip(extra_zeros_mib: int = 0, office: bool = True) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        if office:
            archive.writestr("[Content_Types].xml", '<?xml version="1.0"?><Types/>')
            archive.writestr("word/document.xml", "<w:document>志愿服务</w:document>")
        else:
            archive.writestr("notes.txt", "not an office file")
        if extra_zeros_mib:
            with archive.open("word/media/padding.bin", "w") as member:
                for _ in range(extra_zeros_mib):
                    member.write(bytes(MIB))
    return out.getvalue()


DOCX_TYPE = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
PDF = b"%PDF-1.7\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"

CASES = [
    # (id, file name, bytes, header fields, field, reason, message fragment)
    ("pdf-claiming-jpeg", "photo.jpg", PDF * 20, {"declared_content_type": "image/jpeg"}, "chunk",
     "type_mismatch", "声明为 image/jpeg"),
    ("random-bytes-named-jpg", "photo.jpg", os.urandom(4096), {}, "chunk", "unsupported_type", "不支持的文件类型"),
    ("exe-named-png", "photo.png", b"MZ\x90\x00" + os.urandom(2000), {}, "chunk", "unsupported_type", "可执行程序"),
    ("jpeg-magic-then-garbage", "photo.jpg", b"\xff\xd8\xff\xe0" + os.urandom(5000), {}, "chunk",
     "undecodable_image", "图片已损坏"),
    ("declared-over-every-cap", "big.mp4", fake_video(1000), {"declared": 600 * MIB}, "header.declared_size_bytes",
     "declared_too_large", "文件过大"),
    ("declared-over-image-cap", "big.jpg", jpeg(), {"declared": 25 * MIB}, "header.declared_size_bytes",
     "declared_too_large", "JPEG 图片最大"),
    ("more-than-declared", "clip.mp4", fake_video(300_000), {"declared": 100_000}, "chunk", "size_exceeded",
     "超过了声明的大小"),
    ("truncated", "clip.mp4", fake_video(1 * MIB), {"declared": 3 * MIB}, "chunk", "truncated", "上传不完整"),
    ("pixel-bomb-over-twice-the-limit", "bomb.png", png_bomb(30000, 30000), {}, "chunk", "decompression_bomb",
     "解压炸弹"),
    ("pixel-bomb-over-the-limit", "bomb.png", png_bomb(7000, 7000), {}, "chunk", "decompression_bomb", "解压炸弹"),
    ("zip-bomb-docx", "report.docx", office_zip(extra_zeros_mib=64), {}, "chunk", "zip_bomb", "压缩炸弹"),
    ("plain-zip", "archive.docx", office_zip(office=False), {}, "chunk", "unsupported_type", "普通压缩包"),
    ("path-traversal-name", "../../etc/passwd", jpeg(), {}, "header.file_name", "bad_file_name", "not a path"),
    ("windows-path-name", "C:\\Users\\a.jpg", jpeg(), {}, "header.file_name", "bad_file_name", "not a path"),
    ("nested-name", "photos/a.jpg", jpeg(), {}, "header.file_name", "bad_file_name", "not a path"),
    ("hidden-name", ".htaccess", jpeg(), {}, "header.file_name", "bad_file_name", "not a path"),
]


@pytest.mark.parametrize("file_name, data, fields, field, reason, fragment", [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_bad_upload_is_refused_and_leaves_nothing(media_client, media_db, world, file_name, data, fields, field,
                                                  reason, fragment):
    before = stored_state(media_db, world.district.id)
    refused_before = refused_count(media_client, reason)
    with expect_error(grpc.StatusCode.INVALID_ARGUMENT, field=field) as caught:
        media_client.upload(world.volunteer_token, data, file_name, **fields)
    assert fragment in caught.value.details()
    assert stored_state(media_db, world.district.id) == before
    assert refused_count(media_client, reason) == refused_before + 1


def test_every_bad_header_field_is_named(media_client, world):
    bad = pb.UploadHeader(file_name="", declared_size_bytes=0, declared_content_type="image/heic", unit_id="bad id!")
    with expect_error(grpc.StatusCode.INVALID_ARGUMENT) as caught:
        media_client.stub.UploadAsset(iter([pb.UploadAssetRequest(header=bad)]),
                                      metadata=bearer(world.volunteer_token), timeout=10)
    from tests.support.grpc_helpers import bad_request_fields

    assert {"header.file_name", "header.declared_size_bytes", "header.declared_content_type",
            "header.unit_id"} <= set(bad_request_fields(caught.value))
    with expect_error(grpc.StatusCode.INVALID_ARGUMENT, field="header"):
        media_client.stub.UploadAsset(iter([pb.UploadAssetRequest(chunk=b"data first")]),
                                      metadata=bearer(world.volunteer_token), timeout=10)
    data = jpeg()
    second_header = list(upload_messages(header(data, "a.jpg"), data)) + [pb.UploadAssetRequest(
        header=header(data, "b.jpg"))]
    with expect_error(grpc.StatusCode.INVALID_ARGUMENT, field="header"):
        media_client.stub.UploadAsset(iter(second_header), metadata=bearer(world.volunteer_token), timeout=10)


def test_a_cancelled_upload_removes_its_chunks(media_client, media_db, world):
    data = MP4_HEAD + os.urandom(8 * MIB)
    release = threading.Event()

    def messages():
        yield pb.UploadAssetRequest(header=header(data, "cancelled.mp4"))
        for start in range(0, 3 * MIB, CHUNK):
            yield pb.UploadAssetRequest(chunk=data[start:start + CHUNK])
        release.wait(30)

    before = stored_state(media_db, world.district.id)
    cut_short_before = refused_count(media_client, "interrupted") + refused_count(media_client, "truncated")
    call = media_client.stub.UploadAsset.future(messages(), metadata=bearer(world.volunteer_token), timeout=60)
    try:
        pending = wait_until(lambda: media_db.blobs.find_one({"district_id": world.district.id, "status": "PENDING"}),
                             what="the upload's pending blob")
        wait_until(lambda: len(chunk_docs(media_db, pending["_id"])) >= 4, what="chunks of the pending blob")
        call.cancel()
    finally:
        release.set()
    wait_until(lambda: stored_state(media_db, world.district.id) == before, timeout=15,
               what="the cancelled upload's chunks and blob to be removed")
    # depending on timing gRPC shows the server a cancel as an error or as an early end of stream
    wait_until(lambda: refused_count(media_client, "interrupted") + refused_count(media_client, "truncated")
               == cut_short_before + 1, timeout=5, what="the cancelled upload to be counted")


def violations(reply: dict) -> list[dict]:
    return [v for detail in reply["error"].get("details", ()) for v in detail["fieldViolations"]]


def test_http_upload_refusals_are_json_with_the_field(media_client, media_db, world):
    before = stored_state(media_db, world.district.id)
    status, reply = media_client.http_upload(world.volunteer_token, PDF * 10, "a.jpg",
                                             {"declared_content_type": "image/jpeg"})
    # the platform's one HTTP error format (Google's JSON error model)
    assert status == 415 and reply["error"]["status"] == "INVALID_ARGUMENT" and reply["error"]["code"] == 415
    assert violations(reply)[0]["field"] == "file" and "声明为 image/jpeg" in reply["error"]["message"]
    status, reply = media_client.http_upload(world.volunteer_token, jpeg(), "../secret.jpg")
    assert status == 400 and violations(reply)[0]["field"] == "file_name"
    status, reply = media_client.http_upload(world.volunteer_token, fake_video(1000), "big.mp4",
                                             {"declared_size_bytes": str(600 * MIB)})
    assert status == 413 and violations(reply)[0]["field"] == "declared_size_bytes"
    status, reply = media_client.http_upload(world.volunteer_token, jpeg(), "a.jpg", {"declared_size_bytes": "many"})
    assert status == 400 and violations(reply)[0]["field"] == "declared_size_bytes"
    status, reply = media_client.http_upload(world.volunteer_token, jpeg(), "a.jpg", {"colour": "red"})
    assert status == 400 and violations(reply)[0]["field"] == "colour"
    status, _, body = media_client.http("POST", "/v1/assets", world.volunteer_token, b"raw bytes",
                                        {"Content-Type": "application/octet-stream"})
    assert status == 415
    status, reply = media_client.http_upload("", jpeg(), "a.jpg")
    assert status == 401 and reply["error"]["status"] == "UNAUTHENTICATED"
    assert stored_state(media_db, world.district.id) == before


def test_well_formed_documents_pass_the_same_checks(media_client, world):
    """The control group: real documents are stored with the type their bytes say."""
    docx = media_client.upload(world.volunteer_token, office_zip(), "志愿服务总结.docx",
                               declared_content_type=DOCX_TYPE).asset
    assert (docx.kind, docx.content_type) == (pb.ASSET_KIND_DOCUMENT, DOCX_TYPE)
    status, reply = media_client.http_upload(world.volunteer_token, PDF * 3, "制度汇编.pdf")
    assert status == 201 and reply["asset"]["contentType"] == "application/pdf"
    status, headers, body = media_client.http("GET", docx.content_path, world.volunteer_token)
    assert status == 200 and zipfile.ZipFile(io.BytesIO(body)).read("word/document.xml").decode().count("志愿服务")
    assert headers["Content-Disposition"].startswith("attachment;") and "filename*=UTF-8''" in \
        headers["Content-Disposition"]
