"""python -m services.registration.import_cli: a district's onboarding from spreadsheets, for IT
teams who script it (docs/onboarding.md). It calls registration's import RPCs over gRPC with a
unit admin's access token (WENMING_TOKEN, or --token), as the app does.

    import_cli template volunteers -o 志愿者.xlsx      the template (units, volunteers, residents,
                                                      teams, members; --format csv for CSV)
    import_cli check volunteers 志愿者.xlsx             validates every row, writes nothing;
                                                      the marked rows go to 志愿者.errors.xlsx
    import_cli run volunteers 志愿者.xlsx               imports, printing progress until done
    import_cli status <job id> [--wait]

Exit status: 0 done (check: every row valid), 1 check found bad rows, 2 refused or failed.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path


from services.common.config import Env, grpc_tls
from services.common.grpc_client import client_channel
from services.common.job_cli import add_token_argument, follow, run_command
from wenming.registration.v1 import registration_pb2 as pb
from wenming.registration.v1 import registration_pb2_grpc

KINDS = {"units": pb.IMPORT_KIND_UNITS, "volunteers": pb.IMPORT_KIND_VOLUNTEERS, "residents": pb.IMPORT_KIND_RESIDENTS,
         "teams": pb.IMPORT_KIND_TEAMS, "members": pb.IMPORT_KIND_TEAM_MEMBERS}
FORMATS = {"xlsx": pb.IMPORT_FORMAT_XLSX, "csv": pb.IMPORT_FORMAT_CSV}
DONE, FAILED = pb.IMPORT_JOB_STATE_DONE, pb.IMPORT_JOB_STATE_FAILED
SHOWN_ISSUES = 20


def _file(path: str) -> pb.ImportFile:
    return pb.ImportFile(file_name=Path(path).name, content=Path(path).read_bytes())


def _issues(issues) -> None:
    for issue in list(issues)[:SHOWN_ISSUES]:
        print(f"  第{issue.row}行 {issue.column}：{issue.reason}")
    if len(issues) > SHOWN_ISSUES:
        print(f"  ……（共{len(issues)}条，其余见错误工作簿或任务详情）")


def _progress(job: pb.ImportJob) -> str:
    share = 100 * job.rows_done // job.total_rows if job.total_rows else 100
    line = (f"{job.rows_done:,}/{job.total_rows:,} 行 ({share}%) · {job.rows_per_second:,.0f} 行/秒"
            f" · 新登记 {job.registered:,} · 已登记 {job.already_registered:,} · 有误跳过 {job.refused:,}")
    if job.eta_seconds:
        line += f" · 预计还需 {job.eta_seconds // 60} 分 {job.eta_seconds % 60} 秒"
    return line


class Client:
    def __init__(self, target: str, token: str):
        self.channel = client_channel(target, default_timeout=300, tls=grpc_tls(Env()))
        self.stub = registration_pb2_grpc.RegistrationServiceStub(self.channel)
        self.metadata = [("authorization", f"Bearer {token}")]

    def template(self, args) -> int:
        reply = self.stub.GetImportTemplate(pb.GetImportTemplateRequest(kind=KINDS[args.kind],
                                                                        format=FORMATS[args.format]),
                                            metadata=self.metadata)
        out = Path(args.output or reply.file_name)
        out.write_bytes(reply.content)
        print(f"模板已保存：{out}（列：{'、'.join(reply.headers)}）")
        return 0

    def check(self, args) -> int:
        reply = self.stub.CheckImport(pb.CheckImportRequest(kind=KINDS[args.kind], file=_file(args.file)),
                                      metadata=self.metadata)
        print(f"共 {reply.rows:,} 行：可导入 {reply.valid_rows:,} 行，有误 {reply.rows - reply.valid_rows:,} 行"
              f"（{reply.marked_cells:,} 处标记）")
        if not reply.error_workbook:
            return 0
        _issues(reply.issues)
        out = Path(args.errors or Path(args.file).with_suffix(".errors.xlsx"))
        out.write_bytes(reply.error_workbook)
        print(f"错误工作簿已保存：{out}（改正后可直接导入）")
        return 1

    def run(self, args) -> int:
        job = self.stub.StartImport(pb.StartImportRequest(kind=KINDS[args.kind], file=_file(args.file)),
                                    metadata=self.metadata).job
        print(f"导入任务 {job.job_id}：{job.file_name}")
        return self._follow(job) if not args.no_wait else 0

    def status(self, args) -> int:
        job = self._job(args.job_id)
        if args.wait:
            return self._follow(job)
        print(f"{pb.ImportJobState.Name(job.state)} · {_progress(job)}")
        _issues(job.issues)
        return 0

    def _job(self, job_id: str) -> pb.ImportJob:
        return self.stub.GetImportJob(pb.GetImportJobRequest(job_id=job_id), metadata=self.metadata, timeout=30).job

    def _follow(self, job: pb.ImportJob) -> int:
        job = follow(job, lambda j: self._job(j.job_id), _progress,
                     lambda j: j.state not in (DONE, FAILED))
        if job.state == FAILED:
            print(f"导入中止：{job.total_rows - job.rows_done:,} 行未导入，请稍后重新导入同一文件（已导入的不会重复）",
                  file=sys.stderr)
            return 2
        _issues(job.issues)
        return 0


def parser() -> argparse.ArgumentParser:
    cli = argparse.ArgumentParser(prog="python -m services.registration.import_cli",
                                  description="District onboarding from spreadsheets (docs/onboarding.md)")
    cli.add_argument("--target", default=os.environ.get("REGISTRATION_GRPC_TARGET", "127.0.0.1:50051"),
                     help="registration's gRPC address (default: $REGISTRATION_GRPC_TARGET or 127.0.0.1:50051)")
    add_token_argument(cli)
    commands = cli.add_subparsers(dest="command", required=True)
    template = commands.add_parser("template", help="download the template of a kind")
    template.add_argument("kind", choices=KINDS)
    template.add_argument("--format", choices=FORMATS, default="xlsx")
    template.add_argument("-o", "--output")
    check = commands.add_parser("check", help="validate every row, write nothing")
    check.add_argument("kind", choices=KINDS)
    check.add_argument("file")
    check.add_argument("--errors", help="where the error workbook goes (default: <file>.errors.xlsx)")
    run = commands.add_parser("run", help="import, printing progress until done")
    run.add_argument("kind", choices=KINDS)
    run.add_argument("file")
    run.add_argument("--no-wait", action="store_true", help="print the job id and return")
    status = commands.add_parser("status", help="a job's progress")
    status.add_argument("job_id")
    status.add_argument("--wait", action="store_true", help="follow it until done")
    return cli


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    client = Client(args.target, args.token)
    return run_command(args.token, lambda: getattr(client, args.command)(args), client.channel.close)


if __name__ == "__main__":
    sys.exit(main())
