"""What a file is, decided by its first bytes (magic numbers), never by its name; and the
refusal an upload gets when its bytes are not what they should be."""

from __future__ import annotations

from dataclasses import dataclass

from services.common.errors import InvalidArgument
from wenming.media.v1 import media_pb2 as pb

K = pb.AssetKind
SNIFF_BYTES = 64  # enough for every signature below


class UploadRefused(InvalidArgument):
    """Bad content (not bad metadata): the reason is the `media_uploads_refused_total` label and
    the HTTP API answers with `http_status`."""

    def __init__(self, reason: str, field: str, message: str, http_status: int = 400):
        super().__init__([(field, message)])
        self.reason = reason
        self.http_status = http_status


@dataclass(frozen=True)
class ContentType:
    kind: int
    mime: str
    label: str  # for messages to the uploader
    pillow_format: str = ""


JPEG = ContentType(K.ASSET_KIND_IMAGE, "image/jpeg", "JPEG 图片", "JPEG")
PNG = ContentType(K.ASSET_KIND_IMAGE, "image/png", "PNG 图片", "PNG")
WEBP = ContentType(K.ASSET_KIND_IMAGE, "image/webp", "WebP 图片", "WEBP")
MP4 = ContentType(K.ASSET_KIND_VIDEO, "video/mp4", "MP4 视频")
QUICKTIME = ContentType(K.ASSET_KIND_VIDEO, "video/quicktime", "QuickTime 视频")
WEBM = ContentType(K.ASSET_KIND_VIDEO, "video/webm", "WebM 视频")
MATROSKA = ContentType(K.ASSET_KIND_VIDEO, "video/x-matroska", "MKV 视频")
PDF = ContentType(K.ASSET_KIND_DOCUMENT, "application/pdf", "PDF 文档")
DOCX = ContentType(K.ASSET_KIND_DOCUMENT, "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
                   "Word 文档")
XLSX = ContentType(K.ASSET_KIND_DOCUMENT, "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                   "Excel 表格")
PPTX = ContentType(K.ASSET_KIND_DOCUMENT, "application/vnd.openxmlformats-officedocument.presentationml.presentation",
                   "PowerPoint 演示文稿")
# a ZIP container: an Office document or not, decided by documents.inspect_office_zip
ZIP = ContentType(K.ASSET_KIND_DOCUMENT, "application/zip", "ZIP 压缩包")

SUPPORTED = (JPEG, PNG, WEBP, MP4, QUICKTIME, WEBM, MATROSKA, PDF, DOCX, XLSX, PPTX)
BY_MIME = {t.mime: t for t in SUPPORTED} | {"image/jpg": JPEG, "image/pjpeg": JPEG}
SUPPORTED_TEXT = "JPEG/PNG/WebP 图片、MP4/MOV/WebM/MKV 视频、PDF 和 Word/Excel/PowerPoint 文档"

# ISO base media brands that are still images (HEIF/AVIF), not video
_IMAGE_BRANDS = {b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1", b"avif", b"avis"}


def sniff(head: bytes) -> ContentType | None:
    """The type the bytes say, or None when they match nothing supported."""
    if head.startswith(b"\xff\xd8\xff"):
        return JPEG
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return PNG
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return WEBP
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in _IMAGE_BRANDS:
            return None
        return QUICKTIME if brand == b"qt  " else MP4
    if head.startswith(b"\x1a\x45\xdf\xa3"):  # EBML: WebM is Matroska with the "webm" doc type
        return WEBM if b"webm" in head else MATROSKA
    if head.startswith(b"%PDF-"):
        return PDF
    if head.startswith(b"PK\x03\x04"):
        return ZIP
    return None


def describe(head: bytes) -> str:
    """A short description of unsupported bytes, for the refusal message."""
    if head[4:8] == b"ftyp" and head[8:12] in _IMAGE_BRANDS:
        return "HEIC/AVIF 图片（请转换为 JPEG 后上传）"
    if head.startswith(b"MZ"):
        return "可执行程序"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "GIF 动图"
    if head.startswith((b"\x1f\x8b", b"Rar!", b"7z\xbc\xaf")):
        return "压缩包"
    return "无法识别的内容"
