"""The media HTTP API for browsers, on the service's Flask app beside /healthz, /readyz, /metrics.

    POST /v1/assets                       multipart/form-data; the header fields first (as in the
                                          gRPC UploadHeader), then the file part named "file"
    GET  /v1/assets/<asset_id>/content    the stored file, with Range requests (206, Content-Range,
                                          Accept-Ranges), ETag = the SHA-256
    GET  /v1/assets/<asset_id>/thumbnail  images: the JPEG thumbnail

Every call needs `Authorization: Bearer <token>`, as on gRPC. Errors are JSON in the platform's
one format (services/common/http_errors.py), bodies proto3 JSON (lowerCamelCase).
Both directions stream: the multipart body is parsed piece by piece, a download is a generator
over the stored chunks.
"""

from __future__ import annotations

import logging
import re
import urllib.parse
from collections.abc import Iterator

import grpc
from flask import Blueprint, Response, jsonify, request
from google.protobuf.json_format import MessageToDict
from pymongo.errors import ConnectionFailure
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.sansio.multipart import Data, Epilogue, Field, File, MultipartDecoder, NeedData

from services.common.audit import CallPolicy
from services.common.auth import Principal, TokenVerifier
from services.common.errors import (
    DomainError, InvalidArgument, Unauthenticated,
)
from services.common.http_errors import from_domain_error, json_error
from services.common.ops_app import trace_requests
from wenming.media.v1 import media_pb2 as pb

from .app import Media
from .content import UploadRefused
from .metrics import HTTP_REQUESTS
from .translate import asset_msg

log = logging.getLogger(__name__)

READ_PIECE = 256 * 1024
MAX_FIELD_BYTES = 4096
MAX_PARTS = 10
HEADER_FIELDS = ("declared_size_bytes", "declared_content_type", "unit_id", "linked_order_id", "linked_activity_id")
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")
_ATTACHMENT_TYPES = ("application/vnd.openxmlformats",)  # Office files download; the rest show inline


class MultipartUpload:
    """A multipart/form-data body read piece by piece: the fields before the file part, then the
    file's bytes as an iterator (nothing is held whole)."""

    def __init__(self, stream, boundary: str):
        self._stream = stream
        self._decoder = MultipartDecoder(boundary.encode("latin-1"), max_parts=MAX_PARTS)
        self._events = self._read_events()

    def _read_events(self) -> Iterator:
        while True:
            data = self._stream.read(READ_PIECE)
            self._decoder.receive_data(data or None)
            try:
                event = self._decoder.next_event()
                while not isinstance(event, NeedData):
                    yield event
                    if isinstance(event, Epilogue):
                        return
                    event = self._decoder.next_event()
            except (ValueError, RequestEntityTooLarge) as exc:  # malformed, or too many parts
                raise InvalidArgument.field("file", f"the multipart body is malformed: {exc}") from None
            if not data:
                raise UploadRefused("truncated", "file", "上传不完整：请求体在文件结束之前就断开了")

    def header(self) -> pb.UploadHeader:
        """Reads up to the file part; the header it carries."""
        fields: dict[str, str] = {}
        current = None
        for event in self._events:
            if isinstance(event, File):
                if event.name != "file":
                    raise InvalidArgument.field(event.name, "the file part must be named 'file'")
                return self._to_header(fields, event.filename or "")
            if isinstance(event, Field):
                if event.name not in HEADER_FIELDS:
                    raise InvalidArgument.field(event.name, f"unknown field; expected {', '.join(HEADER_FIELDS)}")
                current, fields[event.name] = event.name, ""
            elif isinstance(event, Data) and current:
                fields[current] += event.data.decode("utf-8", errors="replace")
                if len(fields[current]) > MAX_FIELD_BYTES:
                    raise InvalidArgument.field(current, f"must be at most {MAX_FIELD_BYTES} characters")
        raise InvalidArgument.field("file", "the body has no file part named 'file'")

    @staticmethod
    def _to_header(fields: dict[str, str], file_name: str) -> pb.UploadHeader:
        raw_size = fields.get("declared_size_bytes", "").strip()
        if not raw_size.isdigit():
            raise InvalidArgument.field("declared_size_bytes",
                                        "must be the file's size in bytes, sent before the file part")
        return pb.UploadHeader(file_name=file_name, declared_size_bytes=int(raw_size),
                               **{k: fields[k] for k in HEADER_FIELDS[1:] if k in fields})

    def file_data(self) -> Iterator[bytes]:
        for event in self._events:
            if isinstance(event, Data):
                yield event.data
                if not event.more_data:
                    return


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """[start, end) of a single `bytes=` range; None to send everything (no header, several
    ranges or a malformed one, which RFC 9110 lets a server ignore). ValueError if unsatisfiable."""
    match = _RANGE.match((header or "").strip())
    if not match or match.groups() == ("", ""):
        return None
    first, last = match.groups()
    if not first:
        suffix = int(last)
        if suffix == 0:
            raise ValueError("empty suffix range")
        return max(0, size - suffix), size
    start = int(first)
    if last and int(last) < start:
        return None
    if start >= size:
        raise ValueError("range starts past the end")
    return start, min(size, int(last) + 1) if last else size


# the HTTP upload is UploadAsset by another door: the same rules and the same audit record
UPLOAD_METHOD = f"/{pb.DESCRIPTOR.services_by_name['MediaService'].full_name}/UploadAsset"


# over 60 lines: its length is its routes, each a few lines of a view that needs this closure's media,
# verifier and calls
def create_blueprint(media: Media, verifier: TokenVerifier, calls: CallPolicy) -> Blueprint:
    bp = Blueprint("media", __name__)

    def authenticate() -> Principal:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthenticated("this call needs a token: send 'Authorization: Bearer <token>'")
        return verifier.verify(token.strip())[0]

    trace_requests(bp)

    @bp.after_request
    def count(response):
        HTTP_REQUESTS.labels(request.url_rule.rule if request.url_rule else "unmatched", str(response.status_code)).inc()
        return response

    @bp.errorhandler(DomainError)
    def domain_error(exc: DomainError):
        # an upload refused for its content type answers 415, one too big 413
        return from_domain_error(exc, getattr(exc, "http_status", None))

    @bp.errorhandler(ConnectionFailure)
    def database_unreachable(exc: ConnectionFailure):
        log.warning("database unavailable during %s %s: %s", request.method, request.path, type(exc).__name__)
        return json_error(503, "UNAVAILABLE", "storage is unavailable right now; retry later")

    @bp.post("/v1/assets")
    def upload():
        principal = authenticate()
        call = calls.begin(UPLOAD_METHOD, principal, (), request.remote_addr or "", None)
        code = grpc.StatusCode.UNKNOWN
        try:
            if request.mimetype != "multipart/form-data" or not request.mimetype_params.get("boundary"):
                raise UploadRefused("not_multipart", "file", "send the file as multipart/form-data", http_status=415)
            body = MultipartUpload(request.stream, request.mimetype_params["boundary"])
            header = body.header()
            asset, deduplicated = media.uploader.upload(principal, header, body.file_data(), header_prefix="",
                                                        content_field="file")
            call.response = asset_msg(asset, with_audit=True)
            code = grpc.StatusCode.OK
            return jsonify(asset=MessageToDict(call.response), deduplicated=deduplicated), 201
        except DomainError as exc:
            code = exc.code
            raise
        finally:
            calls.end(call, code)

    def download(asset_id: str, variant: int) -> Response:
        principal = authenticate()
        target = media.assets.download_target(principal, asset_id, variant)
        etag = f'"{target.asset.sha256}"' if variant == pb.ASSET_VARIANT_ORIGINAL else f'"{target.blob_id}"'
        disposition = "attachment" if target.content_type.startswith(_ATTACHMENT_TYPES) else "inline"
        headers = {
            "Accept-Ranges": "bytes", "ETag": etag, "Cache-Control": "private, max-age=3600",
            "X-Content-Type-Options": "nosniff",
            "Content-Disposition": f"{disposition}; filename*=UTF-8''{urllib.parse.quote(target.asset.file_name)}",
        }
        if request.headers.get("If-None-Match") == etag:
            return Response(status=304, headers=headers)
        if_range = request.headers.get("If-Range")
        try:
            wanted = parse_range(request.headers.get("Range"), target.size) if if_range in (None, etag) else None
        except ValueError:
            return Response(status=416, headers={**headers, "Content-Range": f"bytes */{target.size}"})
        start, end = wanted or (0, target.size)
        headers["Content-Length"] = str(end - start)
        if wanted:
            headers["Content-Range"] = f"bytes {start}-{end - 1}/{target.size}"
        return Response(media.assets.stream(target, start, end, "http"), status=206 if wanted else 200,
                        headers=headers, content_type=target.content_type, direct_passthrough=True)

    @bp.get("/v1/assets/<asset_id>/content")
    def content(asset_id: str):
        return download(asset_id, pb.ASSET_VARIANT_ORIGINAL)

    @bp.get("/v1/assets/<asset_id>/thumbnail")
    def thumbnail(asset_id: str):
        return download(asset_id, pb.ASSET_VARIANT_THUMBNAIL)

    return bp
