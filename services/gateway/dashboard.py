"""The operations dashboard (指挥调度中心): one page, and one JSON endpoint that gathers the
numbers for the logged-in admin's unit subtree from the services, with the admin's own token
(so it shows exactly what that admin may see)."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path

import grpc
from flask import Blueprint, Response, redirect, request
from google.protobuf import json_format

from services.common.clock import CHINA, clock

from .upstreams import Upstream


log = logging.getLogger(__name__)
PAGE = Path(__file__).with_name("static") / "dashboard.html"

Section = Callable[[dict[str, Upstream], list[tuple[str, str]], str], dict]


def organization(upstreams: dict[str, Upstream], metadata, unit_id: str) -> dict:
    """组织体系 and 志愿者队伍: counts from registration."""
    from wenming.registration.v1 import registration_pb2 as reg

    return _dict(upstreams["registration"].call("GetUnitStats", reg.GetUnitStatsRequest(unit_id=unit_id), metadata))


def _dict(message) -> dict:
    return json_format.MessageToDict(message, preserving_proto_field_name=True,
                                     always_print_fields_with_no_presence=True)


def orders(upstreams: dict[str, Upstream], metadata, unit_id: str) -> dict:
    """群众点单: orders in progress by status and level, overdue ones and SLA breaches, from ordering."""
    from wenming.ordering.v1 import ordering_pb2 as ordr

    return _dict(upstreams["ordering"].call("GetOrderStats", ordr.GetOrderStatsRequest(unit_id=unit_id), metadata))


def incentives(upstreams: dict[str, Upstream], metadata, unit_id: str) -> dict:
    """三级创建 scorecard for this month and this year's hours leaderboard, from points."""
    from wenming.points.v1 import points_pb2 as pts

    today = clock.now().astimezone(CHINA)
    month = pts.Period(year=today.year, month=today.month)
    points = upstreams["points"]
    scorecard = points.call("GetUnitScorecard", pts.GetUnitScorecardRequest(unit_id=unit_id, period=month), metadata)
    board = points.call("GetLeaderboard", pts.GetLeaderboardRequest(
        unit_id=unit_id, metric=pts.LEADERBOARD_METRIC_VERIFIED_HOURS, period=pts.Period(year=today.year), limit=10),
        metadata)
    return {"scorecard": _dict(scorecard.scorecard), "leaderboard": [_dict(row) for row in board.rows]}


def training(upstreams: dict[str, Upstream], metadata, unit_id: str) -> dict:
    """轮训: due / overdue / done per rotation plan, from training."""
    from wenming.common.v1 import common_pb2
    from wenming.training.v1 import training_pb2 as trn

    try:
        report = upstreams["training"].call("GetRotationReport", trn.GetRotationReportRequest(
            unit_id=unit_id, page=common_pb2.PageRequest(page_size=1)), metadata)
    except grpc.RpcError as error:
        if error.code() != grpc.StatusCode.FAILED_PRECONDITION:
            raise
        return {"unavailable": "本区县尚未设置轮训周期：请中心管理员在培训管理中设置"}
    return {"rotation": [_dict(c) for c in report.counts]}


# (key, upstream it needs, function); the page renders the sections it knows and says which
# ones are unavailable
SECTIONS: list[tuple[str, str, Section]] = [
    ("organization", "registration", organization),
    ("orders", "ordering", orders),
    ("incentives", "points", incentives),
    ("training", "training", training),
]


def overview(upstreams: dict[str, Upstream], metadata, unit_id: str) -> dict:
    result: dict[str, dict] = {}
    for key, needs, section in SECTIONS:
        if needs not in upstreams:
            result[key] = {"unavailable": f"{needs} 服务未部署"}
            continue
        try:
            result[key] = section(upstreams, metadata, unit_id)
        except grpc.RpcError as error:
            if error.code() in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED):
                raise
            if error.code() == grpc.StatusCode.NOT_FOUND:
                # the peer has not yet received the unit from registration's events
                result[key] = {"unavailable": "数据同步中，请稍后刷新"}
                continue
            log.warning("dashboard section %s failed: %s", key, error.code().name)
            result[key] = {"unavailable": f"{needs} 服务暂不可用（{error.code().name}）"}
    return result


def dashboard_blueprint(upstreams: dict[str, Upstream]) -> Blueprint:
    bp = Blueprint("dashboard", __name__)

    @bp.get("/")
    def root():
        return redirect("/dashboard")

    @bp.get("/dashboard")
    def page():
        return Response(PAGE.read_bytes(), mimetype="text/html; charset=utf-8",
                        headers={"Content-Security-Policy": "default-src 'self'; style-src 'self' 'unsafe-inline'; "
                                                            "script-src 'self' 'unsafe-inline'",
                                 "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"})

    @bp.get("/dashboard/api/overview")
    def overview_json():
        auth = request.headers.get("Authorization", "")
        if not auth:
            return _json(401, {"error": {"code": "UNAUTHENTICATED", "message": "请先登录"}})
        metadata = [("authorization", auth)]
        try:
            body = overview(upstreams, metadata, request.args.get("unit_id", ""))
        except grpc.RpcError as error:
            status = 401 if error.code() == grpc.StatusCode.UNAUTHENTICATED else 403
            return _json(status, {"error": {"code": error.code().name, "message": error.details()}})
        return _json(200, body)

    return bp


def _json(status: int, body: dict) -> Response:
    return Response(json.dumps(body, ensure_ascii=False), status=status, mimetype="application/json")
