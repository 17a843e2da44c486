"""Seeds points for the demo district through its public API: the district's point rules, a
points store (积分超市) at every station, and a service record certificate (志愿服务记录证明) for the
demo volunteer, issued by the unit that recorded most of their verified hours once those have
arrived; two commendations (表彰) of the demo volunteer, recorded by the center, which their
certificate and 我的表彰 show; the first station's rule documents (有机制), so its 三级创建 card shows
a grade made of this month's venues, teams, volunteers, activities, brand project and rules; one
爱心商家 registered by the center, whose item the first station's store offers (with 10 it donated,
recorded as a keyed restock), and the district's 礼遇 rules. The ledgers fill by themselves from the orders and activities the ordering seed publishes.
Idempotent: stations that already have items are skipped, the certificate, the commendations and
the merchant have idempotency keys, a station with rule documents gets none again, rules already
set are kept."""

from __future__ import annotations

import time

import grpc

from services.common.clock import CHINA, clock
from services.points.grading_rules import DEFAULT_SCHEME, scheme_msg
from wenming.common.v1 import common_pb2 as c
from wenming.points.v1 import points_pb2 as pb
from wenming.points.v1 import points_pb2_grpc

# (name, description, price in points, stock)
STORE = [
    ("洗衣液", "蓝月亮深层洁净洗衣液 2kg", 60, 30),
    ("大米", "本地优质大米 5kg", 120, 20),
    ("食用油", "胡麻油 1.8L", 150, 15),
    ("毛巾", "纯棉毛巾 两条装", 30, 50),
    ("牙膏", "云南白药牙膏 180g", 40, 40),
    ("香皂", "舒肤佳香皂 三块装", 25, 60),
    ("挂面", "手工挂面 2kg", 35, 40),
    ("保温杯", "不锈钢保温杯 500ml", 90, 10),
]


def _rules() -> pb.PointRules:
    """The national defaults, written down so the district can see and change them."""
    thresholds = dict(max_avg_completion_hours=72, min_completion_rate_percent=95, min_satisfaction_centi=450,
                      min_activity_coverage_percent=100, max_avg_ack_minutes=120)
    return pb.PointRules(
        base_points_per_hour=10,
        category_coefficients=[pb.CategoryCoefficient(category=c.SERVICE_CATEGORY_CARE_FOR_OTHERS, percent=120),
                               pb.CategoryCoefficient(category=c.SERVICE_CATEGORY_CARE_FOR_NATURE, percent=110)],
        attendance_points=5, rating_given_points=2, rating_received_points=[0, 0, 1, 3, 5],
        training_points_per_hour=5, points_validity_years=2, star_threshold_hours=[100, 300, 600, 1000, 1500],
        grading=scheme_msg(DEFAULT_SCHEME),
        # deprecated thresholds that grade nothing (GetUnitGrade uses `grading`), still validated by SetPointRules
        exemplary=pb.ScorecardThresholds(**thresholds),
        standard=pb.ScorecardThresholds(max_avg_completion_hours=168, min_completion_rate_percent=85,
                                        min_satisfaction_centi=400, min_activity_coverage_percent=80,
                                        max_avg_ack_minutes=1440))


# a partner merchant registered by the center (its contact number is made up, as every demo one)
MERCHANT = dict(name="爱心面包房", address="凉州区东大街 12 号", contact_name="李师傅", contact_phone="13993510001",
                idempotency_key="demo-merchant-1")
MERCHANT_ITEM = ("全麦面包", "爱心面包房每日现烤", 50, 20)


def _perk_rules(merchant_id: str) -> list[pb.PerkRule]:
    return [pb.PerkRule(min_star_level=1, discount_percent=5),
            pb.PerkRule(min_star_level=2, discount_percent=20, merchant_id=merchant_id, benefits=["生日蛋糕免费裱花"]),
            pb.PerkRule(min_star_level=3, benefits=["免费体检", "景区免票"])]


def seed(ctx) -> None:
    stub = points_pb2_grpc.PointsServiceStub(grpc.insecure_channel(ctx.targets["points"]))
    current = stub.GetPointRules(pb.GetPointRulesRequest(), metadata=ctx.center_admin, timeout=10).rules
    if current.version == 0:
        stub.SetPointRules(pb.SetPointRulesRequest(rules=_rules(), expected_version=0), metadata=ctx.center_admin,
                           timeout=10)
    merchant = stub.RegisterMerchant(pb.RegisterMerchantRequest(unit_id=ctx.center_id, **MERCHANT),
                                     metadata=ctx.center_admin, timeout=10).merchant
    if stub.GetPerkRules(pb.GetPerkRulesRequest(), metadata=ctx.center_admin, timeout=10).rules.version == 0:
        stub.SetPerkRules(pb.SetPerkRulesRequest(rules=_perk_rules(merchant.merchant_id), expected_version=0),
                          metadata=ctx.center_admin, timeout=10)
    created = 0
    for i, station in enumerate(ctx.stations):
        admin = ctx.login_admin(station.unit_id)
        if stub.ListStoreItems(pb.ListStoreItemsRequest(unit_id=station.unit_id, include_inactive=True),
                               metadata=admin, timeout=10).items:
            continue
        for name, description, price, stock in STORE[i % 3:] + STORE[:i % 3]:
            stub.CreateStoreItem(pb.CreateStoreItemRequest(unit_id=station.unit_id, name=name,
                                                           description=description, price_points=price, stock=stock),
                                 metadata=admin, timeout=10)
            created += 1
        if i == 0:
            name, description, price, stock = MERCHANT_ITEM
            bread = stub.CreateStoreItem(pb.CreateStoreItemRequest(
                unit_id=station.unit_id, name=name, description=description, price_points=price, stock=stock,
                merchant_id=merchant.merchant_id), metadata=admin, timeout=10).item
            created += 1
            # the merchant's first donation, as the 积分超市补货 page records one (/app/admin/store)
            stub.RestockStoreItem(pb.RestockStoreItemRequest(
                item_id=bread.item_id, quantity=10, source=pb.STOCK_SOURCE_MERCHANT,
                donor_merchant_id=merchant.merchant_id, idempotency_key="demo-restock-1"), metadata=admin, timeout=10)
    certificate = _demo_certificate(ctx, stub)
    commendations = _demo_commendations(ctx, stub)
    documents = _first_station_rules(ctx, stub)
    print(f"  points: district rules set (1★ 100 h … 5★ 1500 h, 10 points/h), {created} store items "
          f"at {len(ctx.stations)} stations' 积分超市, 爱心商家 {merchant.name} and 礼遇 from 1★"
          + (f", certificate {certificate} for the demo volunteer" if certificate else "")
          + (f", {commendations} commendations of the demo volunteer" if commendations else "")
          + (f", {documents} rule documents at the first station" if documents else ""), flush=True)


def _commendations(year: int) -> list[tuple[str, pb.RecordCommendationRequest]]:
    """(idempotency key, request without the volunteer) of the demo volunteer's two commendations."""
    return [
        ("demo-commendation-1", pb.RecordCommendationRequest(
            year=year - 1, level=pb.COMMENDATION_LEVEL_DISTRICT, title="优秀志愿者", issuer="区文明办",
            awarded_on=f"{year - 1}-12-05")),
        ("demo-commendation-2", pb.RecordCommendationRequest(
            year=year - 2, level=pb.COMMENDATION_LEVEL_CITY, title="学雷锋志愿服务先进个人", issuer="市文明办",
            awarded_on=f"{year - 2}-03-05")),
    ]


def _demo_commendations(ctx, stub, timeout: float = 120.0) -> int:
    """The demo volunteer's two commendations, recorded by the center admin once points has heard
    of the volunteer (their keys make a second run record nothing new); 0 without volunteers."""
    if not ctx.volunteers:
        return 0
    volunteer_id = ctx.demo_volunteer.volunteer_id
    deadline = time.monotonic() + timeout
    for key, request in _commendations(clock.now().astimezone(CHINA).year):
        request.volunteer_id, request.idempotency_key = volunteer_id, key
        while True:
            try:
                stub.RecordCommendation(request, metadata=ctx.center_admin, timeout=10)
                break
            except grpc.RpcError as error:
                if error.code() != grpc.StatusCode.NOT_FOUND or time.monotonic() > deadline:
                    raise  # NOT_FOUND: points has not heard of the volunteer yet
                time.sleep(0.5)
    return 2


RULE_DOCUMENTS = ("《新时代文明实践站志愿服务管理制度》", "《“群众点单—中心派单—志愿者接单—群众评单”工作流程》")


def _first_station_rules(ctx, stub) -> int:
    """The first station's rule documents (有机制), recorded by its admin; none when it has some
    already (seeded before). Reviewers' 评定 is left to people: the card grades live."""
    station = ctx.stations[0]
    admin = ctx.login_admin(station.unit_id)
    now = clock.now().astimezone(CHINA)
    grade = stub.GetUnitGrade(pb.GetUnitGradeRequest(unit_id=station.unit_id, period=pb.Period(
        year=now.year, month=now.month)), metadata=admin, timeout=10).grade
    if any(line.records_total for line in grade.lines if line.criterion == pb.GRADING_CRITERION_RULES):
        return 0
    for title in RULE_DOCUMENTS:
        stub.RecordGradeEvidence(pb.RecordGradeEvidenceRequest(
            unit_id=station.unit_id, criterion=pb.GRADING_CRITERION_RULES, title=title,
            note="经站务会审议通过，上墙公示"), metadata=admin, timeout=10)
    return len(RULE_DOCUMENTS)


def _demo_certificate(ctx, stub, timeout: float = 120.0) -> str:
    """The demo volunteer's certificate, once points has credited every verified minute the
    ordering seed recorded for them; "" when the ordering seed recorded none."""
    volunteer_id = ctx.demo_volunteer.volunteer_id if ctx.volunteers else ""
    by_unit = {unit: minutes for (vid, unit), minutes in ctx.verified_minutes.items() if vid == volunteer_id}
    if not by_unit:
        return ""
    issuer = max(by_unit, key=by_unit.get)
    admin = ctx.center_admin if issuer == ctx.center_id else ctx.login_admin(issuer)
    deadline = time.monotonic() + timeout
    while True:
        try:
            credited = stub.GetAccount(pb.GetAccountRequest(account_id=volunteer_id), metadata=admin,
                                       timeout=10).account.verified_minutes
        except grpc.RpcError as error:
            if error.code() != grpc.StatusCode.NOT_FOUND:  # points has not heard of the volunteer yet
                raise
            credited = 0
        if credited >= sum(by_unit.values()):
            break
        if time.monotonic() > deadline:
            raise RuntimeError(f"seed_points: the demo volunteer's verified hours did not reach points in {timeout:.0f}s")
        time.sleep(0.5)
    return stub.IssueCertificate(pb.IssueCertificateRequest(volunteer_id=volunteer_id, issuing_unit_id=issuer,
                                                            idempotency_key="demo-certificate"),
                                 metadata=admin, timeout=10).certificate.facts.number
