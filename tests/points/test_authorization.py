"""Who may do what in points (another user's token is refused for every RPC that takes an object
id), bad input named by field with nothing written, unknown ids NOT_FOUND, and the public
certificate check without a token."""

from __future__ import annotations

import datetime as dt
import uuid

import grpc
import pytest

from tests.points.support import account_known
from tests.support.grpc_helpers import bad_request_fields, bearer, expect_error
from tests.support.registration import new_phone
from tests.support.waiting import wait_until
from wenming.common.v1 import common_pb2 as c
from wenming.points.v1 import points_pb2 as pb

DENIED, INVALID, NOT_FOUND = (grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.INVALID_ARGUMENT,
                              grpc.StatusCode.NOT_FOUND)


@pytest.fixture(scope="module")
def world(module_district, points, stub, feed):
    d = module_district
    tree = d.small_tree()
    phones = [new_phone(), new_phone()]
    mine = d.volunteer(tree.courtyards[0].unit_id, phone=phones[0])    # under station 0
    other = d.volunteer(tree.courtyards[2].unit_id, phone=phones[1])   # under station 1
    admin0, admin1 = bearer(tree.admins[tree.stations[0].unit_id]), bearer(tree.admins[tree.stations[1].unit_id])
    assert wait_until(lambda: account_known(stub, other.volunteer_id, admin1) and account_known(stub, mine.volunteer_id, admin0), 30)
    order = feed.order(f"ord_{uuid.uuid4().hex[:12]}", courtyard=tree.courtyards[2], handling=tree.stations[1])
    feed.send(feed.hours_confirmed(d.id, order, [(other.volunteer_id, 600, c.HOURS_SOURCE_VERIFIED)],
                                   tree.stations[1]))
    other_token = bearer(d.volunteer_token(phones[1]))
    assert wait_until(lambda: stub.GetAccount(pb.GetAccountRequest(), metadata=other_token,
                                            timeout=5).account.points == 100, 30)
    item = stub.CreateStoreItem(pb.CreateStoreItemRequest(unit_id=tree.stations[1].unit_id, name="食用油",
                                                          price_points=20, stock=10), metadata=admin1, timeout=5).item
    redemption = stub.Redeem(pb.RedeemRequest(item_id=item.item_id, quantity=1, idempotency_key="auth-1"),
                             metadata=other_token, timeout=10).redemption
    entry = stub.ListLedgerEntries(pb.ListLedgerEntriesRequest(account_id=other.volunteer_id), metadata=admin1,
                                   timeout=5).entries[0]
    cert = stub.IssueCertificate(pb.IssueCertificateRequest(volunteer_id=other.volunteer_id, idempotency_key="c-1"),
                                 metadata=admin1, timeout=10).certificate
    commendation = stub.RecordCommendation(_commendation(other.volunteer_id, "cmd-1"), metadata=admin1,
                                           timeout=5).commendation
    merchant = stub.RegisterMerchant(_merchant(tree.stations[1].unit_id, "mer-1"), metadata=admin1, timeout=5).merchant
    return dict(tree=tree, mine=mine, other=other, admin0=admin0, admin1=admin1, own=bearer(d.volunteer_token(phones[0])),
                other_token=other_token, item=item, redemption=redemption, entry=entry, cert=cert,
                commendation=commendation, merchant=merchant)


def _merchant(unit_id: str, key: str) -> pb.RegisterMerchantRequest:
    return pb.RegisterMerchantRequest(unit_id=unit_id, name="爱心理发店", address="东关街3号", contact_name="王师傅",
                                      contact_phone=new_phone(), idempotency_key=key)


def _commendation(volunteer_id: str, key: str, **changes) -> pb.RecordCommendationRequest:
    year = dt.date.today().year - 1
    return pb.RecordCommendationRequest(**{**dict(
        volunteer_id=volunteer_id, year=year, level=pb.COMMENDATION_LEVEL_DISTRICT, title="优秀志愿者",
        issuer="区文明办", awarded_on=f"{year}-12-05", idempotency_key=key), **changes})


def test_another_users_token_is_refused_for_every_rpc_with_an_object_id(stub, world):
    w = world
    other_id, admin0, own = w["other"].volunteer_id, w["admin0"], w["own"]
    station1 = w["tree"].stations[1].unit_id
    calls = [
        (own, lambda m: stub.GetAccount(pb.GetAccountRequest(account_id=other_id), metadata=m, timeout=5)),
        (own, lambda m: stub.ListLedgerEntries(pb.ListLedgerEntriesRequest(account_id=other_id), metadata=m,
                                               timeout=5)),
        (own, lambda m: stub.GetRedemption(pb.GetRedemptionRequest(redemption_id=w["redemption"].redemption_id),
                                           metadata=m, timeout=5)),
        (own, lambda m: stub.ListRedemptions(pb.ListRedemptionsRequest(account_id=other_id), metadata=m, timeout=5)),
        (own, lambda m: stub.GetCertificate(pb.GetCertificateRequest(number=w["cert"].facts.number), metadata=m,
                                            timeout=5)),
        (own, lambda m: stub.AuditAccount(pb.AuditAccountRequest(account_id=other_id), metadata=m, timeout=5)),
        (own, lambda m: stub.ListCertificates(pb.ListCertificatesRequest(volunteer_id=other_id), metadata=m,
                                              timeout=5)),
        (own, lambda m: stub.AdjustPoints(pb.AdjustPointsRequest(account_id=other_id, amount=5, reason="x",
                                                                 idempotency_key="x"), metadata=m, timeout=5)),
        (own, lambda m: stub.ListCommendations(pb.ListCommendationsRequest(volunteer_id=other_id), metadata=m,
                                               timeout=5)),
        (own, lambda m: stub.RecordCommendation(_commendation(other_id, "x"), metadata=m, timeout=5)),
        (own, lambda m: stub.RevokeCommendation(pb.RevokeCommendationRequest(
            commendation_id=w["commendation"].commendation_id, reason="越权"), metadata=m, timeout=5)),
        (own, lambda m: stub.GetMyPerks(pb.GetMyPerksRequest(volunteer_id=other_id), metadata=m, timeout=5)),
        (own, lambda m: stub.RegisterMerchant(_merchant(station1, "x"), metadata=m, timeout=5)),
        (own, lambda m: stub.ListMerchants(pb.ListMerchantsRequest(unit_id=station1), metadata=m, timeout=5)),
        # an admin of another station
        (admin0, lambda m: stub.GetAccount(pb.GetAccountRequest(account_id=other_id), metadata=m, timeout=5)),
        (admin0, lambda m: stub.AuditAccount(pb.AuditAccountRequest(account_id=other_id), metadata=m, timeout=5)),
        (admin0, lambda m: stub.AddManualHours(pb.AddManualHoursRequest(
            volunteer_id=other_id, minutes=60, reason="越权", content="越权", idempotency_key="x"), metadata=m,
            timeout=5)),
        (admin0, lambda m: stub.AdjustPoints(pb.AdjustPointsRequest(account_id=other_id, amount=-5, reason="越权",
                                                                    idempotency_key="x"), metadata=m, timeout=5)),
        (admin0, lambda m: stub.ReverseEntry(pb.ReverseEntryRequest(entry_id=w["entry"].entry_id, reason="越权"),
                                             metadata=m, timeout=5)),
        (admin0, lambda m: stub.UpdateStoreItem(pb.UpdateStoreItemRequest(
            item_id=w["item"].item_id, update_fields=["price_points"], price_points=1), metadata=m, timeout=5)),
        (admin0, lambda m: stub.RestockStoreItem(pb.RestockStoreItemRequest(item_id=w["item"].item_id, quantity=5),
                                                 metadata=m, timeout=5)),
        (admin0, lambda m: stub.CreateStoreItem(pb.CreateStoreItemRequest(unit_id=station1, name="x", price_points=1,
                                                                          stock=1), metadata=m, timeout=5)),
        (admin0, lambda m: stub.ListStoreItems(pb.ListStoreItemsRequest(unit_id=station1, include_inactive=True),
                                               metadata=m, timeout=5)),
        (admin0, lambda m: stub.GetRedemption(pb.GetRedemptionRequest(redemption_id=w["redemption"].redemption_id),
                                              metadata=m, timeout=5)),
        (admin0, lambda m: stub.CollectRedemption(pb.CollectRedemptionRequest(code=w["redemption"].code),
                                                  metadata=m, timeout=5)),
        (admin0, lambda m: stub.RefundRedemption(pb.RefundRedemptionRequest(
            redemption_id=w["redemption"].redemption_id, reason="越权"), metadata=m, timeout=5)),
        (admin0, lambda m: stub.ListRedemptions(pb.ListRedemptionsRequest(unit_id=station1), metadata=m, timeout=5)),
        (admin0, lambda m: stub.GetUnitGrade(pb.GetUnitGradeRequest(unit_id=station1), metadata=m, timeout=5)),
        (admin0, lambda m: stub.IssueCertificate(pb.IssueCertificateRequest(
            volunteer_id=other_id, issuing_unit_id=station1, idempotency_key="x"), metadata=m, timeout=5)),
        (admin0, lambda m: stub.GetCertificate(pb.GetCertificateRequest(number=w["cert"].facts.number), metadata=m,
                                               timeout=5)),
        (admin0, lambda m: stub.ListCertificates(pb.ListCertificatesRequest(volunteer_id=other_id), metadata=m,
                                                 timeout=5)),
        (admin0, lambda m: stub.RecordCommendation(_commendation(other_id, "x"), metadata=m, timeout=5)),
        (admin0, lambda m: stub.ListCommendations(pb.ListCommendationsRequest(volunteer_id=other_id), metadata=m,
                                                  timeout=5)),
        (admin0, lambda m: stub.RevokeCommendation(pb.RevokeCommendationRequest(
            commendation_id=w["commendation"].commendation_id, reason="越权"), metadata=m, timeout=5)),
        (admin0, lambda m: stub.SetPointRules(pb.SetPointRulesRequest(rules=stub.GetPointRules(
            pb.GetPointRulesRequest(), metadata=m, timeout=5).rules), metadata=m, timeout=5)),
        (admin0, lambda m: stub.GetMyPerks(pb.GetMyPerksRequest(volunteer_id=other_id), metadata=m, timeout=5)),
        (admin0, lambda m: stub.RegisterMerchant(_merchant(station1, "x"), metadata=m, timeout=5)),
        (admin0, lambda m: stub.ListMerchants(pb.ListMerchantsRequest(unit_id=station1), metadata=m, timeout=5)),
        (admin0, lambda m: stub.SetMerchantStatus(pb.SetMerchantStatusRequest(
            merchant_id=w["merchant"].merchant_id, status=pb.MERCHANT_STATUS_SUSPENDED, reason="越权"), metadata=m,
            timeout=5)),
        (admin0, lambda m: stub.SetPerkRules(pb.SetPerkRulesRequest(rules=[
            pb.PerkRule(min_star_level=1, discount_percent=5)]), metadata=m, timeout=5)),
    ]
    for metadata, call in calls:
        with expect_error(DENIED):
            call(metadata)
    # the rightful callers get through
    assert stub.GetMyPerks(pb.GetMyPerksRequest(volunteer_id=other_id), metadata=w["admin1"], timeout=5).star_level == 0
    assert stub.GetAccount(pb.GetAccountRequest(account_id=other_id), metadata=w["admin1"], timeout=5)
    assert stub.GetRedemption(pb.GetRedemptionRequest(redemption_id=w["redemption"].redemption_id),
                              metadata=w["other_token"], timeout=5).redemption.code == w["redemption"].code
    assert [x.commendation_id for x in stub.ListCommendations(pb.ListCommendationsRequest(), metadata=w["other_token"],
                                                              timeout=5).commendations] == \
        [w["commendation"].commendation_id]


def test_a_volunteer_sees_only_their_own_ledger_and_cannot_adjust(stub, world):
    mine = stub.ListLedgerEntries(pb.ListLedgerEntriesRequest(), metadata=world["other_token"], timeout=5).entries
    assert mine and {e.account_id for e in mine} == {world["other"].volunteer_id}
    with expect_error(DENIED, contains="unit admin"):
        stub.AddManualHours(pb.AddManualHoursRequest(volunteer_id=world["other"].volunteer_id, minutes=60,
                                                     reason="自己加", content="自己加", idempotency_key="self"),
                            metadata=world["other_token"], timeout=5)


def test_unknown_ids_are_not_found(stub, world, module_district):
    admin = module_district.as_center()
    for call in (
        lambda: stub.GetAccount(pb.GetAccountRequest(account_id="vol_nobody"), metadata=admin, timeout=5),
        lambda: stub.GetRedemption(pb.GetRedemptionRequest(redemption_id="red_nothing"), metadata=admin, timeout=5),
        lambda: stub.ReverseEntry(pb.ReverseEntryRequest(entry_id="ord:none", reason="x"), metadata=admin, timeout=5),
        lambda: stub.RestockStoreItem(pb.RestockStoreItemRequest(item_id="item_none", quantity=1), metadata=admin,
                                      timeout=5),
        lambda: stub.CollectRedemption(pb.CollectRedemptionRequest(code="ABCDEFGH"), metadata=admin, timeout=5),
        lambda: stub.GetUnitGrade(pb.GetUnitGradeRequest(unit_id="unit_none"), metadata=admin, timeout=5),
        lambda: stub.VerifyCertificate(pb.VerifyCertificateRequest(number="ZM-2026-999999-ABCD"), timeout=5),
        lambda: stub.RevokeCommendation(pb.RevokeCommendationRequest(commendation_id="comm_nothing", reason="没有"),
                                        metadata=admin, timeout=5),
    ):
        with expect_error(NOT_FOUND):
            call()


def test_bad_input_names_the_field_and_writes_nothing(stub, world, points_db, module_district):
    admin1 = world["admin1"]
    counts = lambda: {n: points_db[n].count_documents({}) for n in  # noqa: E731
                      ("ledger_entries", "ledger_postings", "store_items", "redemptions", "certificates",
                       "commendations")}
    before = counts()
    cases = [
        ("minutes", lambda: stub.AddManualHours(pb.AddManualHoursRequest(
            volunteer_id=world["other"].volunteer_id, minutes=0, reason="r", content="c", idempotency_key="k"),
            metadata=admin1, timeout=5)),
        ("idempotency_key", lambda: stub.AdjustPoints(pb.AdjustPointsRequest(
            account_id=world["other"].volunteer_id, amount=5, reason="r", idempotency_key="带空格 的键"),
            metadata=admin1, timeout=5)),
        ("idempotency_key", lambda: stub.ReverseEntry(pb.ReverseEntryRequest(
            entry_id="adj:any", reason="r", idempotency_key="x" * 65), metadata=admin1, timeout=5)),
        ("amount", lambda: stub.AdjustPoints(pb.AdjustPointsRequest(
            account_id=world["other"].volunteer_id, amount=0, reason="r", idempotency_key="k"), metadata=admin1,
            timeout=5)),
        ("price_points", lambda: stub.CreateStoreItem(pb.CreateStoreItemRequest(
            unit_id=world["tree"].stations[1].unit_id, name="毛巾", price_points=0, stock=1), metadata=admin1,
            timeout=5)),
        ("name", lambda: stub.CreateStoreItem(pb.CreateStoreItemRequest(
            unit_id=world["tree"].stations[1].unit_id, name="", price_points=5, stock=1), metadata=admin1, timeout=5)),
        ("quantity", lambda: stub.Redeem(pb.RedeemRequest(item_id=world["item"].item_id, quantity=21,
                                                          idempotency_key="k"), metadata=world["other_token"],
                                         timeout=5)),
        ("update_fields[0]", lambda: stub.UpdateStoreItem(pb.UpdateStoreItemRequest(
            item_id=world["item"].item_id, update_fields=["stock"]), metadata=admin1, timeout=5)),
        ("code", lambda: stub.CollectRedemption(pb.CollectRedemptionRequest(code="0O1I"), metadata=admin1,
                                                timeout=5)),
        ("period.month", lambda: stub.GetLeaderboard(pb.GetLeaderboardRequest(
            metric=pb.LEADERBOARD_METRIC_VERIFIED_HOURS, period=pb.Period(year=2026, month=13)), metadata=admin1,
            timeout=5)),
        ("metric", lambda: stub.GetLeaderboard(pb.GetLeaderboardRequest(), metadata=admin1, timeout=5)),
        ("number", lambda: stub.VerifyCertificate(pb.VerifyCertificateRequest(number="12345"), timeout=5)),
        ("rules.star_threshold_hours", lambda: stub.SetPointRules(pb.SetPointRulesRequest(rules=pb.PointRules(
            star_threshold_hours=[300, 100, 600, 1000, 1500], rating_received_points=[0, 0, 1, 3, 5])),
            metadata=module_district.as_center(), timeout=5)),
        ("awarded_on", lambda: stub.RecordCommendation(_commendation(
            world["other"].volunteer_id, "k", awarded_on="1999-01-01"), metadata=admin1, timeout=5)),
        ("page.page_size", lambda: stub.ListLedgerEntries(pb.ListLedgerEntriesRequest(
            page=c.PageRequest(page_size=500)), metadata=world["other_token"], timeout=5)),
    ]
    for field, call in cases:
        with expect_error(INVALID, field=field):
            call()
    with expect_error(INVALID) as caught:  # every bad field at once
        stub.CreateStoreItem(pb.CreateStoreItemRequest(unit_id="", name="", price_points=-1, stock=-1),
                             metadata=admin1, timeout=5)
    assert {"unit_id", "name", "price_points", "stock"} <= set(bad_request_fields(caught.value))
    assert counts() == before


def test_certificate_verification_is_public_and_shows_no_personal_data(stub, world, points):
    import json
    import urllib.request

    cert = world["cert"]
    facts = stub.VerifyCertificate(pb.VerifyCertificateRequest(number=cert.facts.number), timeout=5).facts
    assert facts.volunteer_number == world["other"].volunteer_number and facts.verified_minutes == 600
    assert facts.issuer.unit_id == world["tree"].stations[1].unit_id and facts.lines[0].title == "理论宣讲进小院"
    with urllib.request.urlopen(f"{points.http_base}/certificates/{cert.facts.number}", timeout=5) as reply:
        body = reply.read().decode()
    with urllib.request.urlopen(f"{points.http_base}/certificates/{cert.facts.number}?format=html", timeout=5) as r:
        page = r.read().decode()
    assert json.loads(body)["volunteerNumber"] == world["other"].volunteer_number  # proto3 JSON
    assert "志愿服务记录证明" in page and cert.facts.number in page
    for text in (body, page, str(facts)):
        assert world["other"].name not in text and world["other"].volunteer_id not in text
        assert world["other"].national_id_masked[-4:] not in text.replace(cert.facts.number, "")
    # the holder's own printable copy carries the name
    own = stub.GetCertificate(pb.GetCertificateRequest(number=cert.facts.number), metadata=world["other_token"],
                              timeout=5)
    assert world["other"].name in own.html and "10.0" in own.html


def test_certificates_are_listed_newest_first_for_the_volunteer_and_the_issuers(stub, world, module_district):
    w = world
    other_id, tree = w["other"].volunteer_id, w["tree"]
    second = stub.IssueCertificate(pb.IssueCertificateRequest(volunteer_id=other_id, idempotency_key="c-2"),
                                   metadata=w["admin1"], timeout=10).certificate
    numbers = [second.facts.number, w["cert"].facts.number]

    def listed(metadata, volunteer_id: str = "", page_size: int = 0) -> list[str]:
        seen, token = [], ""
        while True:
            reply = stub.ListCertificates(pb.ListCertificatesRequest(
                volunteer_id=volunteer_id, page=c.PageRequest(page_size=page_size, page_token=token)),
                metadata=metadata, timeout=5)
            seen += [cert.number for cert in reply.certificates]
            token = reply.page.next_page_token
            if not token:
                return seen

    assert listed(w["other_token"]) == numbers                        # the volunteer's own, newest first
    assert listed(w["other_token"], other_id, page_size=1) == numbers  # and in keyset pages
    for issuer_or_above in (w["admin1"], bearer(tree.admins[tree.institute.unit_id]), module_district.as_center()):
        assert listed(issuer_or_above, other_id) == numbers
    # the courtyard the volunteer serves did not issue them: its admin may ask, and sees none
    assert listed(bearer(tree.admins[tree.courtyards[2].unit_id]), other_id) == []
    first = stub.ListCertificates(pb.ListCertificatesRequest(), metadata=w["other_token"], timeout=5).certificates[0]
    assert first.volunteer_number == w["other"].volunteer_number and first.verified_minutes == 600

    with expect_error(INVALID, field="volunteer_id"):
        stub.ListCertificates(pb.ListCertificatesRequest(), metadata=w["admin1"], timeout=5)
    with expect_error(INVALID, field="page.page_token"):
        stub.ListCertificates(pb.ListCertificatesRequest(page=c.PageRequest(page_token="%%")),
                              metadata=w["other_token"], timeout=5)
    with expect_error(NOT_FOUND):
        stub.ListCertificates(pb.ListCertificatesRequest(volunteer_id="vol_nobody"), metadata=w["admin1"], timeout=5)
    _, resident = module_district.resident(tree.courtyards[2].unit_id)
    with expect_error(DENIED):
        stub.ListCertificates(pb.ListCertificatesRequest(volunteer_id=other_id), metadata=bearer(resident),
                              timeout=5)


def test_a_certificate_issued_without_a_period_shows_the_span_of_service(stub, world, points):
    import json
    import urllib.request

    from services.common.clock import CHINA

    cert = world["cert"]  # issued without period_start / period_end
    facts = stub.VerifyCertificate(pb.VerifyCertificateRequest(number=cert.facts.number), timeout=5).facts
    first = min(line.first_at.ToDatetime() for line in facts.lines)
    last = max(line.last_at.ToDatetime() for line in facts.lines)
    assert facts.period_start.ToDatetime() == first and facts.period_end.ToDatetime() == last
    with urllib.request.urlopen(f"{points.http_base}/certificates/{cert.facts.number}", timeout=5) as reply:
        body = reply.read().decode()
    assert "1970" not in body and json.loads(body)["periodStart"].startswith(f"{first:%Y-%m-%d}")
    with urllib.request.urlopen(f"{points.http_base}/certificates/{cert.facts.number}?format=html", timeout=5) as r:
        page = r.read().decode()

    def day(value):
        return value.replace(tzinfo=dt.UTC).astimezone(CHINA).strftime("%Y年%m月%d日")

    assert f"于 {day(first)}至{day(last)} 期间" in page and "1970" not in page
