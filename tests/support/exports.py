"""Export jobs as a client sees them (services/common/exports.py): wait for the file, fetch it."""

from __future__ import annotations

import io
import time

import openpyxl

from wenming.common.v1 import common_pb2 as c


def finished(stub, request_type, job_id: str, metadata, timeout: float = 60.0) -> c.ExportJob:
    """The job once it is no longer queued or running."""
    deadline = time.monotonic() + timeout
    while True:
        job = stub.GetExportJob(request_type(job_id=job_id), metadata=metadata, timeout=5).job
        if job.state not in (c.EXPORT_JOB_STATE_QUEUED, c.EXPORT_JOB_STATE_RUNNING):
            return job
        assert time.monotonic() < deadline, f"export job {job_id} still {c.ExportJobState.Name(job.state)}"
        time.sleep(0.3)


def download(stub, request_type, job_id: str, metadata) -> tuple[str, str, bytes]:
    """(file name, content type, content) as DownloadExport streams them."""
    parts = list(stub.DownloadExport(request_type(job_id=job_id), metadata=metadata, timeout=30))
    return parts[0].part.file_name, parts[0].part.content_type, b"".join(p.part.data for p in parts)


def sheet_rows(content: bytes, index: int = 0) -> tuple[list[str], list[list]]:
    """(headers, data rows) of a workbook's sheet, as openpyxl reads it."""
    book = openpyxl.load_workbook(io.BytesIO(content), read_only=True)
    rows = [list(r) for r in book.worksheets[index].iter_rows(values_only=True)]
    return rows[0], rows[1:]
