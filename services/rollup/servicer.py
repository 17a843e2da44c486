"""gRPC servicer: translates requests to the domain and results back. No rules live here."""

from __future__ import annotations

from services.common.auth import current_principal
from wenming.rollup.v1 import rollup_pb2 as pb
from wenming.rollup.v1 import rollup_pb2_grpc

from .reports import RegionReports

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["RollupService"].full_name


class RollupServicer(rollup_pb2_grpc.RollupServiceServicer):
    def __init__(self, reports: RegionReports):
        self.reports = reports

    def GetRegionReport(self, request, context):
        return pb.GetRegionReportResponse(report=self.reports.get(current_principal(), request))
