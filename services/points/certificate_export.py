"""Certificates in bulk (docs/points.md): for each volunteer of a unit's subtree whose service hours
the unit recorded in a period, the unit's certificate for that period as a PDF with its verification
QR code, all in one .zip, through the kit's export jobs (services/common/exports.py).

Each certificate is issued by Certificates.issue with the job starter's rights, so its number, its
event and its verification are those of IssueCertificate. Its idempotency key names the period, the
volunteer and the minutes the unit recorded for them in it: a step repeated by a runner that died,
or a second export of the same period, answers the certificate already issued instead of a second
one, while hours recorded since make a new certificate with the new figures.

The PDFs are drawn page by page (a page is two volunteers: drawing one costs about a second, see
docs/reporting.md) and kept in the page's rows as base64 text, since the pages are JSON; the last
step packs them into the zip.
"""

from __future__ import annotations

import base64
import io
import zipfile
from collections import defaultdict

from services.common.auth import Principal
from services.common.events import to_timestamp
from services.common.exports import ZIP_FILE, ExportJobs, FileFormat, Row
from services.common.pdf import CjkFont
from services.common.validation import Validator
from wenming.common.v1 import common_pb2
from wenming.points.v1 import points_pb2 as pb

from .certificate_pdf import certificate_pdf, verification_url
from .certificates import HOURS_BOOKS, Certificates, certificate_view
from .directory import Directory
from .exports import reported_unit
from .models import LedgerEntry
from .periods import bounds, validate_period

START_CERTIFICATES_EXPORT = f"/{pb.DESCRIPTOR.services_by_name['PointsService'].full_name}/StartCertificatesExport"
PAGE_VOLUNTEERS = 2


def period_key(period: dict) -> str:
    """2026-11, 2026-Q4 or 2026: the period in an idempotency key."""
    if period["month"]:
        return f"{period['year']}-{period['month']:02d}"
    if period["quarter"]:
        return f"{period['year']}-Q{period['quarter']}"
    return str(period["year"])


def idempotency_key(period: dict, volunteer_id: str, verified: int, manual: int) -> str:
    """One certificate per period, volunteer and figures (at most 57 characters: a ULID id, six-digit
    minutes — a year holds 525,600)."""
    return f"bulk:{period_key(period)}:{volunteer_id}:{verified}:{manual}"


def recorded_minutes(entries: list[dict]) -> dict[str, tuple[int, int]]:
    """Per account, the verified and manual minutes of its entries, for the accounts with any
    service to certify (reversals can leave nothing)."""
    sums: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for entry in entries:
        sums[entry["account_id"]][HOURS_BOOKS.index(entry["book"])] += entry["amount"]
    return {account: (verified, manual) for account, (verified, manual) in sums.items() if verified + manual > 0}


def entry_name(volunteer_number: str, name: str) -> str:
    """The certificate's file in the zip: V2026…-王小明.pdf (no path characters)."""
    safe = "".join(c for c in name if c not in '\\/:*?"<>|').strip()
    return f"{volunteer_number}-{safe}.pdf" if safe else f"{volunteer_number}.pdf"


def zipped(files: list[tuple[str, bytes]]) -> bytes:
    """The files in one zip, in order (stored: a PDF is compressed already)."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_STORED) as archive:
        for name, content in files:
            archive.writestr(name, content)
    return out.getvalue()


class CertificatesSource:
    kind = common_pb2.EXPORT_KIND_CERTIFICATES
    title = "志愿服务记录证明"

    def __init__(self, directory: Directory, certificates: Certificates, font: CjkFont, app_url: str):
        self.directory = directory
        self.certificates = certificates
        self.font = font
        self.app_url = app_url
        self.entries = LedgerEntry._get_collection()

    def file_format(self, params: dict) -> FileFormat:
        return ZIP_FILE

    def _to_certify(self, job: dict) -> dict[str, tuple[int, int]]:
        """The subtree's volunteers whose hours the unit recorded in the period, with the minutes."""
        params = job["params"]
        minutes = recorded_minutes(list(self.entries.find(
            {"district_id": job["district_id"], "recorded_by_unit_id": job["unit_id"],
             "book": {"$in": list(HOURS_BOOKS)}, "occurred_at": {"$gte": params["start"], "$lt": params["end"]}},
            {"account_id": 1, "book": 1, "amount": 1})))
        inside = self.directory.registry.volunteers.find(
            {"district_id": job["district_id"], "_id": {"$in": list(minutes)}, "scope": job["unit_id"]}, {"_id": 1})
        return {v["_id"]: minutes[v["_id"]] for v in inside}

    def count(self, principal: Principal, job: dict) -> int:
        return len(self._to_certify(job))

    def page(self, principal: Principal, job: dict, cursor: str) -> tuple[list[Row], str]:
        # issuing checks the starter still runs the unit: an admin moved elsewhere gets no more pages
        to_certify = self._to_certify(job)
        ids = sorted(v for v in to_certify if v > cursor)[:PAGE_VOLUNTEERS + 1]
        params = job["params"]
        rows: list[Row] = []
        for volunteer_id in ids[:PAGE_VOLUNTEERS]:
            cert = self.certificates.issue(principal, pb.IssueCertificateRequest(
                volunteer_id=volunteer_id, issuing_unit_id=job["unit_id"], period_start=to_timestamp(params["start"]),
                period_end=to_timestamp(params["end"]),
                idempotency_key=idempotency_key(params["period"], volunteer_id, *to_certify[volunteer_id])))
            pdf = certificate_pdf(self.font, certificate_view(cert), cert["volunteer_name"],
                                  verification_url(self.app_url, cert["number"]))
            rows.append([entry_name(cert["volunteer_number"], cert["volunteer_name"]),
                         base64.b64encode(pdf).decode("ascii")])
        return rows, ids[PAGE_VOLUNTEERS - 1] if len(ids) > PAGE_VOLUNTEERS else ""

    def render(self, job: dict, rows: list[Row]) -> bytes:
        return zipped([(str(name), base64.b64decode(str(pdf))) for name, pdf in rows])


def start_certificates(exports: ExportJobs, directory: Directory, principal: Principal,
                       req: pb.StartCertificatesExportRequest) -> dict:
    """StartCertificatesExport: unit admins, for their unit or one below it (the issuer)."""
    v = Validator()
    unit_id = v.ident("unit_id", req.unit_id, required=False) or principal.unit_id
    period = validate_period(v, "period", req.period)
    v.check()
    unit = reported_unit(directory, principal, unit_id, CertificatesSource.title)
    start, end = bounds(period)
    return exports.start(principal, CertificatesSource.kind, unit, {
        "period": {"year": period.year, "month": period.month, "quarter": period.quarter}, "start": start, "end": end})
