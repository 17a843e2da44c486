"""Certificates in bulk and the scorecards as PDF without a network: the idempotency key of a
volunteer's certificate, who has minutes to certify, the zip's files, the certificate's PDF (its
sentence, lines, commendations and QR code of the verification page), the scorecard tables as a PDF,
and the command line's requests."""

from __future__ import annotations

import datetime as dt

from services.common.config import Env
from services.common.export_cli import EXPORTS, parser
from services.common.pdf import cjk_font, qr_modules
from services.points.certificate_export import entry_name, idempotency_key, recorded_minutes, zipped
from services.points.certificate_pdf import certificate_pdf, verification_url
from services.points.certificates import certificate_view
from services.points.scorecard_export import scorecard_pdf, scorecard_sheets, unit_row
from services.points.grading_rules import GRADE_LABEL
from services.points import grading_rules as rules
from tests.support.pdfs import flat, pdf_text, qr_modules_in, zip_files
from tests.unit.test_grading_rules import BARE, THRIVING
from tests.unit.test_scorecard_export import COURTYARD, STATION, _graded
from wenming.common.v1 import common_pb2 as c
from wenming.points.v1 import points_pb2 as pb

VERIFIED, MANUAL = pb.BOOK_VERIFIED_MINUTES, pb.BOOK_MANUAL_MINUTES
AT = dt.datetime(2026, 11, 20, 2, 0, tzinfo=dt.UTC)
CERT = {"number": "ZM-2026-000123-K7QX", "volunteer_number": "V2026000001", "volunteer_name": "王小明",
        "issuer": {"name": "东关街道实践站"}, "verified_minutes": 120, "manual_minutes": 30, "issued_at": AT,
        "period_start": dt.datetime(2026, 10, 31, 16, tzinfo=dt.UTC), "period_end": dt.datetime(2026, 11, 30, 16, tzinfo=dt.UTC),
        "lines": [{"title": "助老送餐", "category": c.SERVICE_CATEGORY_CARE_FOR_OTHERS, "times": 2, "minutes": 150,
                   "first_at": AT - dt.timedelta(days=5), "last_at": AT}],
        "commendations": [{"year": 2025, "level": 1, "level_label": "区县级", "title": "优秀志愿者",
                           "issuer": "凉州区文明办"}]}


def test_one_key_per_period_volunteer_and_figures_within_the_keys_limit():
    month = {"year": 2026, "month": 11, "quarter": 0}
    key = idempotency_key(month, "vol_01JD3Q8Y6P4M2T5R7W9X0Z1B3C", 525_600, 525_600)
    assert key == "bulk:2026-11:vol_01JD3Q8Y6P4M2T5R7W9X0Z1B3C:525600:525600" and len(key) <= 64
    assert idempotency_key({"year": 2026, "month": 0, "quarter": 4}, "vol_1", 60, 0) == "bulk:2026-Q4:vol_1:60:0"
    assert idempotency_key({"year": 2026, "month": 0, "quarter": 0}, "vol_1", 60, 0) == "bulk:2026:vol_1:60:0"
    assert idempotency_key(month, "vol_1", 60, 0) != idempotency_key(month, "vol_1", 90, 0)  # hours recorded since


def test_volunteers_with_minutes_left_after_reversals_are_certified():
    entries = [{"account_id": "vol_a", "book": VERIFIED, "amount": 60}, {"account_id": "vol_a", "book": MANUAL, "amount": 15},
               {"account_id": "vol_b", "book": VERIFIED, "amount": 30}, {"account_id": "vol_b", "book": VERIFIED, "amount": -30},
               {"account_id": "vol_a", "book": VERIFIED, "amount": 30}]
    assert recorded_minutes(entries) == {"vol_a": (90, 15)}


def test_the_zip_holds_each_certificate_under_the_volunteer_number_and_name():
    assert entry_name("V2026000001", "王/小明") == "V2026000001-王小明.pdf"
    assert entry_name("V2026000002", "") == "V2026000002.pdf"
    assert zip_files(zipped([("a.pdf", b"%PDF-1"), ("b.pdf", b"%PDF-2")])) == {"a.pdf": b"%PDF-1", "b.pdf": b"%PDF-2"}


def test_the_certificate_pdf_says_what_the_page_says_with_the_verification_qr_code():
    url = verification_url("https://wenming.example.gov.cn/app/", CERT["number"])
    assert url == "https://wenming.example.gov.cn/app/verify/ZM-2026-000123-K7QX"
    content = certificate_pdf(cjk_font(Env({})), certificate_view(CERT), CERT["volunteer_name"], url)
    text = flat(pdf_text(content))
    for expected in ("志愿服务记录证明", "证明编号：ZM-2026-000123-K7QX", "王小明", "志愿者编号 V2026000001",
                     "2026年11月01日至2026年11月30日", "东关街道实践站", "累计服务时长 2.5 小时", "实时记录 2.0 小时",
                     "补录 0.5 小时", "助老送餐", "关爱他人", "优秀志愿者", "凉州区文明办", "出具日期：2026年11月20日", url):
        assert flat(expected) in text, expected
    assert qr_modules_in(content) == qr_modules(url)


def test_the_scorecards_pdf_holds_every_units_figures_and_lines():
    thriving, bare = _graded(THRIVING), _graded(BARE)
    sheets = scorecard_sheets("2026年11月", [unit_row(STATION, thriving), unit_row(COURTYARD, bare)])
    text = flat(pdf_text(scorecard_pdf(cjk_font(Env({})), "三级创建评分表 东关街道实践站 2026年11月", sheets)))
    for expected in ("三级创建评分表 东关街道实践站 2026年11月", "三级创建 2026年11月", "评分明细", "东关街道实践站",
                     "幸福小院", GRADE_LABEL[rules.evaluate(THRIVING, rules.DEFAULT_SCHEME, 1).grade], "创建级",
                     thriving.lines[0].explanation, bare.lines[-1].explanation):
        assert flat(expected) in text, expected
    assert "unt_station" not in text  # the unit ids stay in the workbook


def test_the_command_line_builds_the_pdf_exports_requests():
    def request(*argv: str):
        args = parser().parse_args(list(argv))
        return EXPORTS[args.command].request(args)

    assert request("certificates", "--year", "2026", "--month", "11", "--unit", "unt_1") == \
        pb.StartCertificatesExportRequest(unit_id="unt_1", period=pb.Period(year=2026, month=11))
    assert request("scorecards", "--format", "pdf") == \
        pb.StartScorecardExportRequest(period=pb.Period(), format=c.EXPORT_FORMAT_PDF)
