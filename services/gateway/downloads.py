"""Export files for browsers and scripts: the service's DownloadExport stream as the file itself.

    GET /api/v1/<service>/exports/<job_id>/file
    Authorization: Bearer <token>

    200  Content-Type: the file's (.xlsx, application/pdf, application/zip for certificates in bulk)
         Content-Disposition: attachment; filename="exp_….xlsx"; filename*=UTF-8''%E5%BF%97…

The service authorizes (admins of the export's unit and those above) and answers in parts of 1 MiB,
which go out as they arrive. The Chinese name travels as RFC 5987/6266 `filename*`; `filename` is
an ASCII stand-in for clients that read only that. Errors before the first part are the JSON
errors of every other route (a file not ready yet: 400 FAILED_PRECONDITION).
"""

from __future__ import annotations

from pathlib import PurePath
from urllib.parse import quote

import grpc
from flask import Blueprint, Response, stream_with_context

from services.common.http_errors import json_error

from .api import _from_rpc_error, call_metadata
from .upstreams import Upstream

DOWNLOAD_SECONDS = 300.0  # a whole file on a slow line; each part is 1 MiB


def content_disposition(file_name: str, fallback: str) -> str:
    """An attachment named `file_name` (any script), with an ASCII `fallback` for old clients."""
    ascii_name = "".join(ch for ch in fallback if ch.isascii() and ch.isprintable() and ch not in '"\\;')
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(file_name, safe='')}"


def downloads_blueprint(upstreams: dict[str, Upstream]) -> Blueprint:
    bp = Blueprint("downloads", __name__)

    @bp.get("/api/v1/<service>/exports/<job_id>/file")
    def export_file(service: str, job_id: str):
        upstream = upstreams.get(service)
        if upstream is None or upstream.download_export is None or upstream.download_request is None:
            return json_error(404, "NOT_FOUND", f"no exports from {service[:40]!r} behind this gateway")
        parts = upstream.download_export(upstream.download_request(job_id=job_id), metadata=call_metadata(),
                                         timeout=DOWNLOAD_SECONDS)
        try:
            first = next(parts).part
        except grpc.RpcError as error:
            return _from_rpc_error(error)
        except StopIteration:
            return json_error(502, "INTERNAL", "the service sent no file")

        def body():
            yield first.data
            for reply in parts:
                yield reply.part.data

        return Response(stream_with_context(body()), mimetype=first.content_type, headers={
            "Content-Disposition": content_disposition(first.file_name, f"{job_id}{PurePath(first.file_name).suffix}"),
            "Cache-Control": "no-store"})  # personal data: no copy in caches on the way

    return bp
