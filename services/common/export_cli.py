"""python -m services.common.export_cli: exports for IT teams who script them (docs/reporting.md).
It calls the owning service's export RPCs over gRPC with a unit admin's access token
(WENMING_TOKEN, or --token), as the app does, prints the progress and saves the file.

    export_cli roster [--unit <unit id>] [--status active] [-o 花名册.xlsx]     registration
    export_cli hours --from 2026-11-01 --to 2026-11-30 [--unit <unit id>]      points
    export_cli scorecards [--year 2026] [--month 11 | --quarter 4] [--format pdf] [--unit <unit id>]   points
    export_cli monthly --month 2026-11 [--unit <unit id>]                     points
    export_cli certificates [--year 2026] [--month 11 | --quarter 4] [--unit <unit id>]   points (.zip of PDFs)
    export_cli fetch roster|hours|scorecards|monthly|certificates <job id> [-o FILE]   waits for a started job, saves its file

Without -o the file keeps the name the service gave it (志愿者花名册-某某站-20261207.xlsx).
Exit status: 0 saved, 2 refused or failed.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from google.protobuf.message import Message

from wenming.common.v1 import common_pb2 as c
from wenming.points.v1 import points_pb2, points_pb2_grpc
from wenming.registration.v1 import registration_pb2, registration_pb2_grpc

from .config import Env, grpc_tls
from .grpc_client import client_channel
from .job_cli import add_token_argument, follow, run_command

STATUSES = {"pending": registration_pb2.VOLUNTEER_STATUS_PENDING, "active": registration_pb2.VOLUNTEER_STATUS_ACTIVE,
            "suspended": registration_pb2.VOLUNTEER_STATUS_SUSPENDED}
RUNNING = (c.EXPORT_JOB_STATE_QUEUED, c.EXPORT_JOB_STATE_RUNNING)
FORMATS = {"xlsx": c.EXPORT_FORMAT_XLSX, "pdf": c.EXPORT_FORMAT_PDF}


@dataclass(frozen=True)
class Service:
    """Where a kind of export is built: its service's address and messages."""

    target_variable: str
    default_target: str
    stub: type  # the generated stub class (protoc's _grpc modules are untyped: its calls answer Any)
    pb: ModuleType  # the service's messages (registration_pb2, points_pb2), each with its own export requests


REGISTRATION = Service("REGISTRATION_GRPC_TARGET", "127.0.0.1:50051", registration_pb2_grpc.RegistrationServiceStub,
                       registration_pb2)
POINTS = Service("POINTS_GRPC_TARGET", "127.0.0.1:50053", points_pb2_grpc.PointsServiceStub, points_pb2)


@dataclass(frozen=True)
class Export:
    """A kind of export: where it is built, the RPC that starts it, and that RPC's request from the
    command line's arguments. A new kind is a row of EXPORTS and its subcommand's arguments."""

    service: Service
    start_method: str
    request: Callable[[argparse.Namespace], Message]


EXPORTS = {
    "roster": Export(REGISTRATION, "StartRosterExport", lambda args: registration_pb2.StartRosterExportRequest(
        unit_id=args.unit, status=STATUSES.get(args.status, registration_pb2.VOLUNTEER_STATUS_UNSPECIFIED))),
    "hours": Export(POINTS, "StartHoursExport", lambda args: points_pb2.StartHoursExportRequest(
        unit_id=args.unit, from_date=args.first, to_date=args.last)),
    "scorecards": Export(POINTS, "StartScorecardExport", lambda args: points_pb2.StartScorecardExportRequest(
        unit_id=args.unit, period=_period(args), format=FORMATS.get(args.format, c.EXPORT_FORMAT_UNSPECIFIED))),
    "monthly": Export(POINTS, "StartMonthlyReportExport", lambda args: points_pb2.StartMonthlyReportExportRequest(
        unit_id=args.unit, month=args.month)),
    "certificates": Export(POINTS, "StartCertificatesExport", lambda args: points_pb2.StartCertificatesExportRequest(
        unit_id=args.unit, period=_period(args))),
}


def _period(args: argparse.Namespace) -> points_pb2.Period:
    return points_pb2.Period(year=args.year, month=args.month, quarter=args.quarter)


def _add_period_arguments(command: argparse.ArgumentParser) -> None:
    command.add_argument("--year", type=int, default=0, help="the year (default: this year)")
    part_of_year = command.add_mutually_exclusive_group()
    part_of_year.add_argument("--month", type=int, default=0, help="one month, 1-12 (default: the whole year)")
    part_of_year.add_argument("--quarter", type=int, default=0, help="one quarter, 1-4")


def progress_line(job: c.ExportJob) -> str:
    share = 100 * job.rows_done // job.total_rows if job.total_rows else 0
    line = f"{job.rows_done:,}/{job.total_rows:,} 行 ({share}%) · {job.rows_per_second:,.0f} 行/秒"
    if job.eta_seconds:
        line += f" · 预计还需 {job.eta_seconds // 60} 分 {job.eta_seconds % 60} 秒"
    return line


class Client:
    def __init__(self, kind: str, token: str):
        self.export = EXPORTS[kind]
        self.service = self.export.service
        target = os.environ.get(self.service.target_variable, self.service.default_target)
        self.channel = client_channel(target, default_timeout=300, tls=grpc_tls(Env()))
        self.stub = self.service.stub(self.channel)
        self.metadata = [("authorization", f"Bearer {token}")]

    def start(self, args: argparse.Namespace) -> int:
        reply = getattr(self.stub, self.export.start_method)(self.export.request(args), metadata=self.metadata)
        print(f"导出任务 {reply.job.job_id}：{reply.job.file_name}（{reply.job.unit.name}）", flush=True)
        return self.save(reply.job, args.output)

    def fetch(self, args: argparse.Namespace) -> int:
        return self.save(self._job(args.job_id), args.output)

    def save(self, job: c.ExportJob, output: str | None) -> int:
        job = follow(job, lambda j: self._job(j.job_id), progress_line, lambda j: j.state in RUNNING)
        if job.state != c.EXPORT_JOB_STATE_DONE:
            print(f"导出未完成（{c.ExportJobState.Name(job.state)}），请重新导出", file=sys.stderr)
            return 2
        out = Path(output or job.file_name)
        with out.open("wb") as file:
            for reply in self.stub.DownloadExport(self.service.pb.DownloadExportRequest(job_id=job.job_id),
                                                  metadata=self.metadata):
                file.write(reply.part.data)
        print(f"已保存：{out}（{job.total_rows:,} 行，{out.stat().st_size:,} 字节）")
        return 0

    def _job(self, job_id: str) -> c.ExportJob:
        job: c.ExportJob = self.stub.GetExportJob(self.service.pb.GetExportJobRequest(job_id=job_id),
                                                  metadata=self.metadata, timeout=30).job
        return job


def parser() -> argparse.ArgumentParser:
    cli = argparse.ArgumentParser(prog="python -m services.common.export_cli",
                                  description="Exports as files (docs/reporting.md). Addresses: "
                                              "$REGISTRATION_GRPC_TARGET (roster), $POINTS_GRPC_TARGET (hours, scorecards, "
                                              "monthly, certificates)")
    add_token_argument(cli)
    commands = cli.add_subparsers(dest="command", required=True)
    roster = commands.add_parser("roster", help="the volunteers of a unit's subtree (志愿者花名册)")
    roster.add_argument("--status", choices=STATUSES, help="only volunteers in this status")
    hours = commands.add_parser("hours", help="hours and points by volunteer and unit in a date range (时长积分统计)")
    hours.add_argument("--from", dest="first", required=True, help="first day, YYYY-MM-DD (China time)")
    hours.add_argument("--to", dest="last", required=True, help="last day, YYYY-MM-DD (included)")
    scorecards = commands.add_parser("scorecards", help="the 三级创建 grade and its figures of a unit and each unit "
                                                        "under it for a month, quarter or year (三级创建评分表)")
    _add_period_arguments(scorecards)
    scorecards.add_argument("--format", choices=FORMATS, help="the file (default: xlsx)")
    monthly = commands.add_parser("monthly", help="a month's figures by unit and by service category, the "
                                                  "report sent to the city's 文明办 (志愿服务统计月报)")
    monthly.add_argument("--month", required=True, help="the month, YYYY-MM (China time), this one or earlier")
    certificates = commands.add_parser("certificates", help="the unit's certificate (志愿服务记录证明) of each volunteer "
                                                            "of its subtree whose hours it recorded in a month, "
                                                            "quarter or year: PDFs in a .zip")
    _add_period_arguments(certificates)
    fetch = commands.add_parser("fetch", help="wait for a started export and save its file")
    fetch.add_argument("kind", choices=EXPORTS)
    fetch.add_argument("job_id")
    for command in (roster, hours, scorecards, monthly, certificates):
        command.add_argument("--unit", default="", help="the unit whose subtree (default: your own unit)")
    for command in (roster, hours, scorecards, monthly, certificates, fetch):
        command.add_argument("-o", "--output", help="where the file goes (default: the name the service gave it)")
    return cli


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    client = Client(args.kind if args.command == "fetch" else args.command, args.token)
    return run_command(args.token, lambda: (client.fetch if args.command == "fetch" else client.start)(args),
                       client.channel.close)


if __name__ == "__main__":
    sys.exit(main())
