"""Office documents arrive as ZIP containers (OOXML). Only a well-formed Word, Excel or
PowerPoint file is accepted, and only when it unpacks to a sane size: the sizes the archive
declares are summed before anything is inflated (a zip bomb is refused without the work), and
Python's zipfile never inflates an entry past its declared size; then every entry is inflated
once, so a corrupt, encrypted or tampered archive (CRC) is refused instead of stored."""

from __future__ import annotations

import zipfile
import zlib
from typing import BinaryIO

from .content import DOCX, PPTX, XLSX, ContentType, UploadRefused

MAX_ENTRIES = 10_000
_READ = 64 * 1024
_OFFICE_PARTS = (("word/", DOCX), ("xl/", XLSX), ("ppt/", PPTX))


def inspect_office_zip(source: BinaryIO, max_unpacked: int, field: str) -> ContentType:
    try:
        archive = zipfile.ZipFile(source)
    except (zipfile.BadZipFile, OSError, EOFError):
        raise UploadRefused("corrupt_document", field, "压缩文件已损坏，无法读取", http_status=415) from None
    with archive:
        entries = archive.infolist()
        if len(entries) > MAX_ENTRIES:
            raise _bomb(f"包含 {len(entries)} 个文件（上限 {MAX_ENTRIES}）", field)
        unpacked = sum(e.file_size for e in entries)
        if unpacked > max_unpacked:
            raise _bomb(f"解压后有 {unpacked // (1024 * 1024)} MB（上限 {max_unpacked // (1024 * 1024)} MB）", field)
        names = {e.filename for e in entries}
        kind = next((t for prefix, t in _OFFICE_PARTS if any(n.startswith(prefix) for n in names)), None)
        if "[Content_Types].xml" not in names or kind is None:
            raise UploadRefused("unsupported_type", field, "只接受 Word/Excel/PowerPoint 文档，不接受普通压缩包",
                                http_status=415)
        try:
            for entry in entries:
                with archive.open(entry) as member:
                    while member.read(_READ):
                        pass
        except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError) as exc:
            # RuntimeError: an encrypted entry; NotImplementedError: an unknown compression method
            raise UploadRefused("corrupt_document", field, f"文档已损坏、加密或格式不受支持（{type(exc).__name__}）",
                                http_status=415) from None
    return kind


def _bomb(why: str, field: str) -> UploadRefused:
    return UploadRefused("zip_bomb", field, f"文档{why}，疑似压缩炸弹，已拒绝", http_status=413)
