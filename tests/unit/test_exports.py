"""The rules of exports without a network: file names, the workbook, progress, the hours export's
date range, sums and unit totals, and the roster's row (masked values only)."""

from __future__ import annotations

import datetime as dt
import io

import openpyxl
import pytest

from services.common.errors import InvalidArgument
from services.common.exports import Sheet, file_name, workbook
from services.common.jobs import progress
from services.common.validation import Validator
from services.gateway.downloads import content_disposition
from services.points.exports import BOOKS, TOTAL, date_range, home_unit, sums_by_account, unit_totals
from services.registration.exports import HEADERS, roster_row
from wenming.common.v1 import common_pb2 as c
from wenming.points.v1 import points_pb2 as pb
from wenming.registration.v1 import registration_pb2 as reg


def test_file_name_drops_characters_a_file_system_refuses():
    assert file_name("志愿者花名册", "东关/站:1", dt.date(2026, 12, 7)) == "志愿者花名册-东关站1-20261207.xlsx"
    assert file_name("时长积分统计", "  ", dt.date(2026, 1, 2)) == "时长积分统计-单位-20260102.xlsx"
    assert file_name("志愿服务记录证明", "东关站", dt.date(2026, 12, 7), "zip") == "志愿服务记录证明-东关站-20261207.zip"


def test_workbook_has_each_sheet_with_its_headers_and_rows():
    content = workbook([Sheet("花名册", ("编号", "姓名"), [["ZY1", "张三"]]), Sheet("汇总", ("合计",), [[3]])])
    book = openpyxl.load_workbook(io.BytesIO(content))
    assert book.sheetnames == ["花名册", "汇总"]
    assert [list(r) for r in book["花名册"].iter_rows(values_only=True)] == [["编号", "姓名"], ["ZY1", "张三"]]
    assert book["花名册"]["A1"].font.bold


def test_progress_measures_the_current_run_only():
    start = dt.datetime(2026, 1, 1, 8, 0, 0)
    # 100 rows were done by a process that died; this run did 200 more in 10 s
    done, rate, eta = progress(300, 1300, start, 100, start + dt.timedelta(seconds=10), True)
    assert (done, rate, eta) == (300, 20.0, 50)
    assert progress(5, 10, None, 0, None, True) == (5, 0.0, 0)
    assert progress(10, 10, start, 0, start + dt.timedelta(seconds=5), False)[2] == 0


def test_date_range_is_china_days_inclusive():
    start, end = date_range(Validator(), "2026-11-01", "2026-11-30")
    assert start == dt.datetime(2026, 10, 31, 16, tzinfo=dt.UTC)
    assert end == dt.datetime(2026, 11, 30, 16, tzinfo=dt.UTC)


@pytest.mark.parametrize("first,last,field", [
    ("20261101", "2026-11-30", "from_date"),  # Python would read the basic ISO form; people write dashes
    ("2026-13-01", "2026-11-30", "from_date"),
    ("2026-11-01", "", "to_date"),
    ("2026-11-30", "2026-11-01", "to_date"),
    ("2000-01-01", "2026-01-01", "to_date"),
])
def test_date_range_names_the_bad_field_in_chinese(first, last, field):
    with pytest.raises(InvalidArgument) as caught:
        date_range(Validator(), first, last)
    (named, why), *_ = caught.value.violations
    assert named == field and any("\u4e00" <= ch <= "\u9fff" for ch in why)


def test_sums_by_account_per_book_and_unit_totals_add_up():
    entries = [{"account_id": "a", "book": pb.BOOK_VERIFIED_MINUTES, "amount": 60},
               {"account_id": "a", "book": pb.BOOK_POINTS, "amount": 10},
               {"account_id": "a", "book": pb.BOOK_POINTS, "amount": -4},
               {"account_id": "b", "book": pb.BOOK_TRAINING_MINUTES, "amount": 30}]
    sums = sums_by_account(entries)
    assert sums["a"] == [60, 0, 0, 6] and sums["b"] == [0, 0, 30, 0] and sums["nobody"] == [0] * len(BOOKS)
    rows = [["ZY1", "甲", "一院", *sums["a"]], ["ZY2", "乙", "二院", *sums["b"]], ["ZY3", "丙", "一院", 1, 2, 3, 4]]
    assert unit_totals(rows) == [["一院", 2, 61, 2, 3, 10], ["二院", 1, 0, 0, 30, 0], [TOTAL, 3, 61, 2, 33, 10]]


def test_home_unit_is_the_first_service_unit_inside_the_subtree():
    volunteer = {"units": [{"name": "别处", "path": ["c", "x"]}, {"name": "一院", "path": ["c", "s", "y1"]},
                           {"name": "二院", "path": ["c", "s", "y2"]}]}
    assert home_unit(volunteer, "s") == "一院" and home_unit(volunteer, "z") == ""


def test_roster_row_carries_what_the_api_shows_masked():
    volunteer = reg.Volunteer(volunteer_number="ZY00000001", name="张三", gender=reg.GENDER_FEMALE,
                              birth_date="1990-01-02", national_id_masked="1101**********1234",
                              phone_masked="139****0000", political_status=reg.POLITICAL_STATUS_MASSES,
                              service_units=[c.UnitRef(name="一院", level=c.UNIT_LEVEL_COURTYARD)],
                              skills=[c.SKILL_ELDERLY_CARE], status=reg.VOLUNTEER_STATUS_ACTIVE)
    row = roster_row(volunteer)
    assert len(row) == len(HEADERS)
    assert row[:7] == ["ZY00000001", "张三", "女", "1990-01-02", "1101**********1234", "139****0000", "群众"]
    assert row[7:10] == ["一院（小院）", "助老服务", "在册"]


def test_content_disposition_names_the_file_in_utf8_with_an_ascii_stand_in():
    assert content_disposition("志愿者花名册-东关站-20261207.xlsx", 'exp_1"\\;.xlsx') == (
        "attachment; filename=\"exp_1.xlsx\"; filename*=UTF-8''"
        "%E5%BF%97%E6%84%BF%E8%80%85%E8%8A%B1%E5%90%8D%E5%86%8C-%E4%B8%9C%E5%85%B3%E7%AB%99-20261207.xlsx")
