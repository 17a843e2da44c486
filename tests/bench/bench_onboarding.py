"""Onboarding: a district's 179,000 volunteers imported from .xlsx files (docs/onboarding.md),
from the first StartImport to the last job done, beside the bare floor of inserting as many
documents of a volunteer's size 500 at a time. Budget (issue 17): minutes, not hours — here at
most 15 minutes for the whole roll. --quick imports 20,000."""

from __future__ import annotations

import io
import time

import grpc
import openpyxl
from pymongo import MongoClient

from services.common.pii import id_check_char
from services.registration.onboarding import KINDS
from tests.bench.harness import BenchContext, Measurement
from tests.support.grpc_helpers import bearer
from tests.support.registration import District
from wenming.registration.v1 import registration_pb2 as reg

DISTRICT_VOLUNTEERS = 179_000
QUICK_VOLUNTEERS = 20_000
ROWS_PER_FILE = 60_000  # about 2.4 MiB of .xlsx, well inside a request's 7 MiB
BUDGET_SECONDS = 15 * 60
HEADERS = [c.header for c in KINDS[reg.IMPORT_KIND_VOLUNTEERS].columns]


def _national_id(i: int) -> str:
    """A distinct valid ID number for each i below 4,032,000."""
    first17 = f"620602{1960 + i // 336_000}{(i // 28_000) % 12 + 1:02d}{(i // 1000) % 28 + 1:02d}{i % 1000:03d}"
    return first17 + id_check_char(first17)


def workbook(first: int, count: int, units: list[str]) -> bytes:
    book = openpyxl.Workbook(write_only=True)
    sheet = book.create_sheet("志愿者")
    sheet.append(HEADERS)
    for i in range(first, first + count):
        sheet.append([f"志愿者{i}", _national_id(i), f"139{i:08d}", "群众", units[i % len(units)],
                      "助老服务、义务理发", "周六、周日", "上午"])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def bare_inserts(ctx: BenchContext, count: int) -> float:
    """Documents of a volunteer's size per second, 500 to an insert_many, on the same database."""
    client = MongoClient(ctx.stack.mongodb_uri)
    collection = client[f"{ctx.stack.db_prefix}floor"]["onboarding_floor"]
    collection.drop()
    document = {"district_id": "d", "name": "志愿者", "id_cipher": b"x" * 60, "id_index": "", "id_masked": "6" * 18,
                "phone_cipher": b"x" * 40, "phone_index": "", "phone_masked": "1" * 11, "unit_ids": ["unit_x"],
                "outbox": [{"payload": b"x" * 400}], "outbox_pending": True}
    started = time.perf_counter()
    for at in range(0, count, 500):
        collection.insert_many([{**document, "id_index": f"{at + k}"} for k in range(500)], ordered=False)
    rate = count / (time.perf_counter() - started)
    collection.drop()
    client.close()
    return rate


def run(ctx: BenchContext) -> list[Measurement]:
    total = QUICK_VOLUNTEERS if ctx.quick else DISTRICT_VOLUNTEERS
    proc = ctx.service("registration", port_offset=4)
    district = District(proc.grpc_target, proc.env)
    tree = district.small_tree()
    token = bearer(tree.admins[tree.stations[0].unit_id])
    units = [tree.courtyards[0].name, f"{tree.stations[0].name}/{tree.courtyards[1].name}"]
    files = [workbook(at, min(ROWS_PER_FILE, total - at), units) for at in range(0, total, ROWS_PER_FILE)]

    started = time.perf_counter()
    jobs = [district.stub.StartImport(reg.StartImportRequest(kind=reg.IMPORT_KIND_VOLUNTEERS, file=reg.ImportFile(
        file_name=f"volunteers-{n}.xlsx", content=content)), metadata=token, timeout=600).job
        for n, content in enumerate(files)]
    accepted = time.perf_counter() - started
    done = []
    for job in jobs:
        while job.state != reg.IMPORT_JOB_STATE_DONE:
            time.sleep(1.0)
            try:
                job = district.stub.GetImportJob(reg.GetImportJobRequest(job_id=job.job_id), metadata=token,
                                                 timeout=30).job
            except grpc.RpcError:
                continue  # a slow answer under load: ask again
        done.append(job)
    seconds = time.perf_counter() - started
    district.close()
    registered = sum(j.registered for j in done)
    floor = bare_inserts(ctx, min(total, 50_000))
    rate = registered / seconds
    return [
        Measurement(f"onboarding {total:,} volunteers from .xlsx", rate, "rows/s", "bare insert_many of 500",
                    floor, f"{DISTRICT_VOLUNTEERS:,} in ≤ {BUDGET_SECONDS // 60} min",
                    registered == total and DISTRICT_VOLUNTEERS / rate <= BUDGET_SECONDS,
                    {"seconds": round(seconds, 1), "files": len(files), "start_import_seconds": round(accepted, 1),
                     "registered": registered, "district_projection_minutes": round(DISTRICT_VOLUNTEERS / rate / 60, 1)}),
    ]
