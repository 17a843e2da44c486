"""Uploads, the same for gRPC (client streaming) and HTTP (multipart).

1. The header is validated: a plain file name, a declared size within the largest cap.
2. The first bytes decide the type (magic numbers), checked against the declared type and the
   type's cap — a refusal comes before the rest of the file is even read.
3. The bytes are counted against the declared size as they arrive (more → refused at once,
   fewer → truncated).
   Video streams straight into a pending blob. Images and documents must be inspected whole, so
   they are spooled (to disk past 1 MiB) and then decoded and re-encoded (images) or unpacked
   with limits (Office documents) before their blob is written.
4. The blob is committed (deduplicated by SHA-256 in the district) and the asset inserted with
   its AssetStored event. Anything refused or interrupted leaves no asset, and its chunks are
   removed (or, if the process dies, the orphan job removes them).
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field, replace

from services.common.auth import Principal, Role
from services.common.clock import clock
from services.common.errors import Aborted, DomainError, InvalidArgument, NotFound, PermissionDenied, excerpt
from services.common.ids import new_id
from services.common.validation import Validator
from wenming.media.v1 import media_pb2 as pb

from .assets import AssetLibrary, audit_entry
from .blobs import BlobStore, StoredBlob
from .content import BY_MIME, SNIFF_BYTES, SUPPORTED_TEXT, ZIP, ContentType, UploadRefused, describe, sniff
from .documents import inspect_office_zip
from .images import ImageProcessor
from .metrics import BYTES_STORED, UPLOADS, UPLOADS_REFUSED, kind_label
from .models import Asset
from .units import UnitInfo, Units

K = pb.AssetKind
MIB = 1024 * 1024
MAX_PIECE = 2 * MIB
SPOOL_IN_MEMORY = MIB
COPY_PIECE = 256 * 1024
MAX_FILE_NAME = 200
_PATH_LIKE = re.compile(r"[/\\]|^[A-Za-z]:|^\.\.?$|^\.")


class UploadInterrupted(Aborted):
    """The client went away (cancelled, deadline, connection lost) before the end of the file."""

    def __init__(self) -> None:
        super().__init__("上传中断：客户端在文件传完之前断开了")


@dataclass(frozen=True)
class UploadCaps:
    image_bytes: int
    video_bytes: int
    document_bytes: int
    document_max_unpacked: int
    spool_dir: str | None = None

    def for_kind(self, kind: int) -> int:
        return {K.ASSET_KIND_IMAGE: self.image_bytes, K.ASSET_KIND_VIDEO: self.video_bytes,
                K.ASSET_KIND_DOCUMENT: self.document_bytes}[kind]

    @property
    def largest(self) -> int:
        return max(self.image_bytes, self.video_bytes, self.document_bytes)


def _mb(size: int) -> str:
    return f"{size / MIB:.1f} MB"


class _Measured:
    """The uploaded pieces, counted against the declared size as they arrive."""

    def __init__(self, pieces: Iterator[bytes], declared: int, field: str):
        self._pieces = iter(pieces)
        self.declared = declared
        self.field = field
        self.received = 0
        self._ended = False
        self._held = b""

    def _next(self) -> bytes | None:
        piece = next(self._pieces, None)
        if piece is None:
            self._ended = True
            return None
        if len(piece) > MAX_PIECE:
            raise UploadRefused("chunk_too_large", self.field, f"each chunk must be at most {MAX_PIECE} bytes")
        self.received += len(piece)
        if self.received > self.declared:
            raise UploadRefused("size_exceeded", self.field,
                                f"实际内容超过了声明的大小（{self.declared} 字节），已停止接收", http_status=413)
        return piece

    def _check_complete(self) -> None:
        if self._ended and self.received < self.declared:
            raise UploadRefused("truncated", self.field,
                                f"上传不完整：声明 {self.declared} 字节，只收到 {self.received} 字节")

    def head(self) -> bytes:
        """The first bytes (up to SNIFF_BYTES), kept for pieces()."""
        while len(self._held) < min(SNIFF_BYTES, self.declared):
            piece = self._next()
            if piece is None:
                self._check_complete()
                break
            self._held += piece
        return self._held[:SNIFF_BYTES]

    def pieces(self) -> Iterator[bytes]:
        if self._held:
            yield self._held
            self._held = b""
        while (piece := self._next()) is not None:
            if piece:
                yield piece
        self._check_complete()


def _compatible(declared: ContentType, actual: ContentType) -> bool:
    if declared.kind == K.ASSET_KIND_VIDEO:
        return actual.kind == K.ASSET_KIND_VIDEO  # containers are often labelled loosely
    if actual is ZIP:
        return declared.kind == K.ASSET_KIND_DOCUMENT and declared.mime != "application/pdf"
    return declared == actual


@dataclass(frozen=True)
class _Header:
    file_name: str
    declared: int
    declared_type: str
    unit_id: str
    order_id: str
    activity_id: str


@dataclass(frozen=True)
class _Stored:
    content_type: ContentType
    blob: StoredBlob
    deduplicated: bool
    new_bytes: int  # what this upload added to storage
    image_fields: dict = field(default_factory=dict)


class Uploader:
    def __init__(self, assets: AssetLibrary, blobs: BlobStore, units: Units, images: ImageProcessor,
                 caps: UploadCaps):
        self.assets = assets
        self.blobs = blobs
        self.units = units
        self.images = images
        self.caps = caps

    def upload(self, principal: Principal, header: pb.UploadHeader, pieces: Iterator[bytes], *,
               header_prefix: str, content_field: str) -> tuple[Asset, bool]:
        """`header_prefix` and `content_field` name the fields in errors ("header." and "chunk" for
        gRPC, "" and "file" for HTTP)."""
        try:
            return self._upload(principal, header, pieces, header_prefix, content_field)
        except DomainError as exc:
            UPLOADS_REFUSED.labels(_refusal_reason(exc)).inc()
            raise

    def _upload(self, principal: Principal, header: pb.UploadHeader, pieces: Iterator[bytes], prefix: str,
                content_field: str) -> tuple[Asset, bool]:
        spec = self._checked_header(header, prefix)
        unit = self.units.of_caller_or(principal, spec.unit_id, f"{prefix}unit_id")
        _require_uploader(principal, unit)
        stream = _Measured(pieces, spec.declared, content_field)
        content_type = self._identify(stream.head(), spec, prefix, content_field)
        if content_type.kind == K.ASSET_KIND_VIDEO:
            stored = self._stored(content_type, *self.blobs.store(principal.district_id, stream.pieces()))
        else:
            stored = self._store_inspected(principal.district_id, stream, content_type, spec, content_field)

        actor = principal.subject
        asset = Asset(id=new_id("ast"), district_id=principal.district_id, **unit.fields(),
                      kind=stored.content_type.kind, content_type=stored.content_type.mime, size=stored.blob.size,
                      sha256=stored.blob.sha256, blob_id=stored.blob.blob_id, file_name=spec.file_name,
                      uploaded_by=actor, order_ids=[spec.order_id] if spec.order_id else [],
                      activity_ids=[spec.activity_id] if spec.activity_id else [], status=pb.ASSET_STATUS_STORED,
                      audit=[audit_entry(actor, "stored", "deduplicated" if stored.deduplicated else "")],
                      created_at=clock.now(), **stored.image_fields)
        self.assets.insert(asset, stored.deduplicated)
        kind = kind_label(stored.content_type.kind)
        BYTES_STORED.labels(kind).inc(stored.new_bytes)
        UPLOADS.labels(kind, "deduplicated" if stored.deduplicated else "stored").inc()
        return asset, stored.deduplicated

    def _checked_header(self, header: pb.UploadHeader, prefix: str) -> _Header:
        file_name = header.file_name.strip()
        if _PATH_LIKE.search(file_name):
            raise UploadRefused("bad_file_name", f"{prefix}file_name",
                                "must be a plain file name, not a path (no '/', '\\', drive or leading '.')")
        v = Validator()
        spec = _Header(
            file_name=v.text(f"{prefix}file_name", file_name, max_len=MAX_FILE_NAME),
            declared=header.declared_size_bytes,
            declared_type=header.declared_content_type.strip().lower(),
            unit_id=v.ident(f"{prefix}unit_id", header.unit_id, required=False),
            order_id=v.ident(f"{prefix}linked_order_id", header.linked_order_id, required=False),
            activity_id=v.ident(f"{prefix}linked_activity_id", header.linked_activity_id, required=False))
        if spec.declared < 1:
            v.fail(f"{prefix}declared_size_bytes", "must be at least 1")
        if spec.declared_type and spec.declared_type not in BY_MIME:
            v.fail(f"{prefix}declared_content_type", f"{excerpt(spec.declared_type)} is not accepted; send one of: "
                                                      + ", ".join(sorted(BY_MIME)))
        v.check()
        if spec.declared > self.caps.largest:
            raise UploadRefused("declared_too_large", f"{prefix}declared_size_bytes",
                                f"文件过大：声明 {_mb(spec.declared)}，任何类型都不能超过 {_mb(self.caps.largest)}",
                                http_status=413)
        return spec

    def _identify(self, head: bytes, spec: _Header, prefix: str, content_field: str) -> ContentType:
        """The type the first bytes say, checked against the declared type and the type's cap."""
        content_type = sniff(head)
        if content_type is None:
            raise UploadRefused("unsupported_type", content_field,
                                f"不支持的文件类型（{describe(head)}）。只接受{SUPPORTED_TEXT}", http_status=415)
        expected = BY_MIME.get(spec.declared_type)
        if expected is not None and not _compatible(expected, content_type):
            raise _mismatch(spec.declared_type, content_type, content_field)
        cap = self.caps.for_kind(content_type.kind)
        if spec.declared > cap:
            raise UploadRefused("declared_too_large", f"{prefix}declared_size_bytes",
                                f"文件过大：{content_type.label}最大 {_mb(cap)}，声明了 {_mb(spec.declared)}",
                                http_status=413)
        return content_type

    def _store_inspected(self, district_id: str, stream: _Measured, content_type: ContentType, spec: _Header,
                         content_field: str) -> _Stored:
        """Images and documents: spooled whole, inspected (and images re-encoded), then stored."""
        with tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY, dir=self.caps.spool_dir) as spool:
            for piece in stream.pieces():
                spool.write(piece)
            spool.seek(0)
            if content_type.kind == K.ASSET_KIND_IMAGE:
                image = self.images.process(spool, content_type, content_field)
                stored = self._stored(content_type, *self.blobs.store(district_id, iter([image.data])))
                thumb, thumb_deduplicated = self.blobs.store(district_id, iter([image.thumbnail]))
                return replace(stored, new_bytes=stored.new_bytes + (0 if thumb_deduplicated else thumb.size),
                               image_fields={"width": image.width, "height": image.height,
                                             "thumb_blob_id": thumb.blob_id, "thumb_size": thumb.size})
            if content_type is ZIP:
                content_type = inspect_office_zip(spool, self.caps.document_max_unpacked, content_field)
                expected = BY_MIME.get(spec.declared_type)
                if expected is not None and expected != content_type:
                    raise _mismatch(spec.declared_type, content_type, content_field)
                spool.seek(0)
            return self._stored(content_type, *self.blobs.store(district_id,
                                                                iter(lambda: spool.read(COPY_PIECE), b"")))

    @staticmethod
    def _stored(content_type: ContentType, blob: StoredBlob, deduplicated: bool) -> _Stored:
        return _Stored(content_type, blob, deduplicated, 0 if deduplicated else blob.size)


def _require_uploader(principal: Principal, unit: UnitInfo) -> None:
    if principal.role == Role.ROLE_SERVICE or (principal.is_admin and principal.manages(unit.path)):
        return
    if not principal.is_admin and unit.unit_id in principal.unit_path:
        return
    raise PermissionDenied("you may upload only for your own unit (or the units above it; admins: their subtree)")


def _mismatch(declared_type: str, actual: ContentType, field: str) -> UploadRefused:
    return UploadRefused("type_mismatch", field, f"文件内容与声明的类型不符：声明为 {declared_type}，实际是{actual.label}",
                         http_status=415)


def _refusal_reason(exc: DomainError) -> str:
    if isinstance(exc, UploadRefused):
        return exc.reason
    if isinstance(exc, UploadInterrupted):
        return "interrupted"
    if isinstance(exc, InvalidArgument):
        return "invalid_header"
    if isinstance(exc, PermissionDenied):
        return "permission_denied"
    if isinstance(exc, NotFound):
        return "unknown_unit"
    return type(exc).__name__.lower()
