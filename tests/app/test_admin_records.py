"""What a unit admin records and exports in the app: a 表彰 recorded for a volunteer of the
courtyard (checked on the page first, once however often the button is tapped), seen by the
volunteer under 我的表彰, then revoked with a reason; the 三级创建评分表 of a period chosen with
the picker, as a workbook and as a PDF, the month's 志愿服务统计月报 as a workbook, and the
certificates of a period as a zip of PDFs."""

from __future__ import annotations

import datetime as dt
import re

import grpc
import openpyxl
import pytest
from playwright.sync_api import expect

from services.common.clock import CHINA
from tests.support.waiting import wait_until
from tests.support.grpc_helpers import or_not_found
from tests.support.pdfs import flat, pdf_text, zip_files
from tests.support.registration import PASSWORD
from wenming.points.v1 import points_pb2, points_pb2_grpc

ADMIN = "yard00-admin"  # the first courtyard's admin (tests.support.registration.small_tree)
TITLE = "学雷锋志愿服务先进个人"


@pytest.fixture(scope="module")
def points(peers):
    with grpc.insecure_channel(peers["points"].grpc_target) as channel:
        yield points_pb2_grpc.PointsServiceStub(channel)


@pytest.fixture(scope="module")
def volunteer(world, points):
    """A volunteer of the first courtyard whom points has heard of (it learns them from events)."""
    yard = world.courtyards[0]
    made = world.volunteer(yard, name="吴表彰")
    listed = points_pb2.ListCommendationsRequest(volunteer_id=made.id)
    wait_until(lambda: or_not_found(lambda: points.ListCommendations(listed, metadata=world.as_admin(yard), timeout=5)),
               timeout=60, what="the volunteer in points")
    return made


def test_an_admin_records_a_commendation_the_volunteer_sees_and_revokes_it(world, volunteer, points, device):
    admin = device("admin")
    admin.login("管理员", ADMIN, PASSWORD)
    page = admin.open("/admin/commendations")
    page.locator(f'[data-volunteer-id="{volunteer.id}"]').click()
    expect(page.get_by_role("heading", name="吴表彰0")).to_be_visible()
    admin.settle()
    assert not admin.accessibility_violations()

    # the page refuses what the server would, before anything is sent
    record = page.get_by_role("button", name="登记表彰")
    page.get_by_label("称号").fill("优")
    record.click()
    expect(page.get_by_text("请选择表彰级别")).to_be_visible()
    expect(page.get_by_text("称号应为2至30个字")).to_be_visible()
    expect(page.get_by_text("授予单位应为2至30个字")).to_be_visible()
    expect(page.get_by_text("授予日期应在所填年度内，且不晚于今天")).to_be_visible()

    year = dt.datetime.now(CHINA).year - 1
    page.get_by_label("年度").fill(str(year))
    page.get_by_role("radio", name="市级").click()
    page.get_by_label("称号").fill(TITLE)
    page.get_by_label("授予单位").fill("市文明办")
    page.get_by_label("授予日期").fill(f"{year}-03-05")
    record.dblclick()  # a double tap: one form, one idempotency key, one record
    listed = page.get_by_test_id("commendations")
    expect(listed).to_contain_text(TITLE)
    expect(listed).to_contain_text(f"{year}年度 · 市文明办 · {year}-03-05")
    expect(page.get_by_label("称号")).to_have_value("")  # a fresh form, with a fresh key and no messages
    expect(page.get_by_text("称号应为2至30个字")).to_have_count(0)
    recorded = points.ListCommendations(points_pb2.ListCommendationsRequest(volunteer_id=volunteer.id),
                                        metadata=world.as_admin(world.courtyards[0]), timeout=10).commendations
    assert [(c.title, c.level, c.awarded_on) for c in recorded] == [
        (TITLE, points_pb2.COMMENDATION_LEVEL_CITY, f"{year}-03-05")]
    admin.shot("head-commendation-recorded")

    phone = device("volunteer")
    phone.login("志愿者", volunteer.phone, PASSWORD)
    mine = phone.open("/volunteer/me").get_by_test_id("commendations")
    expect(mine.locator(".van-cell", has_text=TITLE)).to_contain_text("市级")

    page.get_by_role("button", name=f"撤销{TITLE}").click()
    popup = page.get_by_role("dialog", name="撤销表彰")
    popup.get_by_label("撤销原因").fill("登记有误")
    popup.get_by_role("button", name="撤销").click()
    page.locator(".van-dialog").get_by_role("button", name="确认").click()
    expect(listed.locator(".van-cell", has_text=TITLE)).to_contain_text("已撤销：登记有误")
    expect(page.get_by_role("button", name=f"撤销{TITLE}")).to_have_count(0)
    admin.shot("head-commendation-revoked")

    # the volunteer's page keeps the record, marked revoked instead of by its level (docs/points.md)
    row = phone.open("/volunteer/me").get_by_test_id("commendations").locator(".van-cell", has_text=TITLE)
    expect(row).to_contain_text("已撤销")
    expect(row).not_to_contain_text("市级")


def test_an_admin_exports_the_scorecards_of_a_year(world, device, tmp_path):
    """数据导出 → 三级创建评分表: the period comes from the picker; the workbook names it and grades
    the courtyard."""
    screen = device("exports")
    screen.login("管理员", ADMIN, PASSWORD)
    page = screen.open("/admin/exports")
    page.get_by_role("radio", name="三级创建评分表").click()
    page.get_by_role("textbox", name="评分周期").click()
    picker = page.get_by_role("dialog", name="评分周期")
    # Vant's columns move by transform, out of Playwright's reach when scrolled: the tap is sent to the option
    picker.locator(".van-picker-column__item", has_text="全年").dispatch_event("click")
    picker.get_by_role("button", name="确认").click()
    year = dt.datetime.now(CHINA).year
    expect(page.get_by_role("textbox", name="评分周期")).to_have_value(f"{year}年")
    expect(picker).to_be_hidden()  # axe looks at the page as it is left, not at the closing popup
    assert not screen.accessibility_violations()
    saved = screen.export_and_download(tmp_path)
    assert saved.name.startswith(f"三级创建评分表-{world.courtyards[0].name}-")
    book = openpyxl.load_workbook(saved)
    assert book.sheetnames == [f"三级创建 {year}年", "评分明细"]
    rows = list(book.worksheets[0].iter_rows(min_row=2, values_only=True))
    assert [row[:3] for row in rows] == [(world.courtyards[0].unit_id, world.courtyards[0].name, "小院")]


def test_an_admin_exports_the_monthly_report(world, device, tmp_path):
    """数据导出 → 志愿服务统计月报: a month not yet begun is refused in Chinese under the field; this
    month's workbook carries the title row and the courtyard's rows by unit and by category."""
    screen = device("monthly")
    screen.login("管理员", ADMIN, PASSWORD)
    page = screen.open("/admin/exports")
    page.get_by_role("radio", name="志愿服务统计月报").click()
    month = page.get_by_label("统计月份")
    now = dt.datetime.now(CHINA)
    this_month = f"{now.year}-{now.month:02d}"
    expect(month).to_have_value(this_month)  # the page offers this month first
    month.fill(f"{now.year + 1}-01")
    page.get_by_role("button", name="开始导出").click()
    expect(page.get_by_text("不能统计尚未开始的月份")).to_be_visible()
    # the refusal's toast too is read out as an alert, not an unnamed dialog
    expect(page.get_by_role("alert")).to_be_visible()
    assert not screen.accessibility_violations()
    month.fill(this_month)
    saved = screen.export_and_download(tmp_path)
    yard = world.courtyards[0]
    assert saved.name.startswith(f"志愿服务统计月报-{yard.name}-")
    book = openpyxl.load_workbook(saved)
    assert book.sheetnames == ["按单位", "按服务类别"]
    units = list(book["按单位"].iter_rows(values_only=True))
    assert units[0][0].endswith(f"{yard.name} {now.year}年{now.month}月 志愿服务统计月报")
    assert [row[0] for row in units[2:]] == ["本级", "合计"]  # a courtyard has no units below it
    assert units[2][2:] == units[3][2:]
    categories = list(book["按服务类别"].iter_rows(values_only=True))
    assert [row[0] for row in categories[2:]][-2:] == ["其他（未分类）", "合计"]


def _choose_year(page, label: str) -> None:
    page.get_by_role("textbox", name=label).click()
    picker = page.get_by_role("dialog", name=label)
    # Vant's columns move by transform, out of Playwright's reach when scrolled: the tap is sent to the option
    picker.locator(".van-picker-column__item", has_text="全年").dispatch_event("click")
    picker.get_by_role("button", name="确认").click()
    expect(picker).to_be_hidden()


def test_an_admin_exports_the_scorecards_as_pdf_and_the_certificates_of_a_year(world, device, tmp_path):
    """数据导出 → 三级创建评分表 as PDF names the courtyard and its grade; 服务记录证明 of the year is a
    zip of PDFs, one per volunteer the courtyard recorded hours of (none needed: the file is what counts)."""
    screen = device("pdf-exports")
    screen.login("管理员", ADMIN, PASSWORD)
    page = screen.open("/admin/exports")
    year = dt.datetime.now(CHINA).year
    page.get_by_role("radio", name="三级创建评分表").click()
    _choose_year(page, "评分周期")
    page.get_by_role("radio", name="PDF").click()
    assert not screen.accessibility_violations()
    saved = screen.export_and_download(tmp_path)
    assert saved.name.startswith(f"三级创建评分表-{world.courtyards[0].name}-") and saved.suffix == ".pdf"
    text = flat(pdf_text(saved.read_bytes()))
    assert flat(f"三级创建评分表 {world.courtyards[0].name} {year}年") in text and "评分明细" in text

    page.reload()
    page.get_by_role("radio", name="服务记录证明").click()
    _choose_year(page, "证明周期")
    expect(page.get_by_role("textbox", name="证明周期")).to_have_value(f"{year}年")
    saved = screen.export_and_download(tmp_path)
    assert saved.name.startswith(f"志愿服务记录证明-{world.courtyards[0].name}-") and saved.suffix == ".zip"
    for name, content in zip_files(saved.read_bytes()).items():
        assert name.endswith(".pdf") and re.search(r"ZM-\d{4}-\d{6}-", flat(pdf_text(content))), name


def test_an_admin_records_a_rules_document_and_this_months_grade_names_it(world, volunteer, points, device):
    """制度材料登记: the page refuses what the server would (a one-character name, an address that is
    not a web page); a document recorded is then listed as the evidence of this month's 有机制 line,
    as GetUnitGrade gives it."""
    yard = world.courtyards[0]
    screen = device("evidence")
    screen.login("管理员", ADMIN, PASSWORD)
    page = screen.open("/admin/evidence")
    expect(page.get_by_text("有机制：制度文件")).to_be_visible()
    screen.settle()
    assert not screen.accessibility_violations()

    page.get_by_label("材料名称").fill("制")
    page.get_by_label("存放网址").fill("ftp://files.example")
    page.get_by_role("button", name="登记材料").click()
    expect(page.get_by_text("材料名称应为2至60个字")).to_be_visible()
    expect(page.get_by_text("存放网址应以 http:// 或 https:// 开头")).to_be_visible()

    page.get_by_label("材料名称").fill("《志愿服务管理制度》")
    page.get_by_label("存放网址").fill("https://files.example/zhidu.pdf")
    page.get_by_role("button", name="登记材料").click()
    expect(page.get_by_text("《志愿服务管理制度》（", exact=False)).to_be_visible()
    expect(page.get_by_label("材料名称")).to_have_value("")  # a fresh form for the next document
    assert not screen.accessibility_violations()

    now = dt.datetime.now(CHINA)
    grade = points.GetUnitGrade(points_pb2.GetUnitGradeRequest(
        unit_id=yard.unit_id, period=points_pb2.Period(year=now.year, month=now.month)),
        metadata=world.as_admin(yard), timeout=10).grade
    rules = next(line for line in grade.lines if line.criterion == points_pb2.GRADING_CRITERION_RULES)
    assert [r.label.split("（")[0] for r in rules.records] == ["《志愿服务管理制度》"]
    assert rules.records[0].record_id.startswith("gev_k")  # recorded with the form's idempotency key
