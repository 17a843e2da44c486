"""What a unit admin exports in the app: the 三级创建评分表 of a period chosen with the picker,
downloaded as a workbook."""

from __future__ import annotations

import datetime as dt

import openpyxl
from playwright.sync_api import expect

from services.common.clock import CHINA
from tests.support.registration import PASSWORD

ADMIN = "yard00-admin"  # the first courtyard's admin (tests.support.registration.small_tree)


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
    assert not screen.accessibility_violations()
    page.get_by_role("button", name="开始导出").click()
    button = page.get_by_role("button", name="下载")
    expect(button).to_be_visible(timeout=60_000)
    with page.expect_download() as caught:
        button.click()
    download = caught.value
    assert download.suggested_filename.startswith(f"三级创建评分表-{world.courtyards[0].name}-")
    saved = tmp_path / download.suggested_filename
    download.save_as(saved)
    book = openpyxl.load_workbook(saved)
    assert book.sheetnames == [f"三级创建 {year}年", "评分明细"]
    rows = list(book.worksheets[0].iter_rows(min_row=2, values_only=True))
    assert [row[:3] for row in rows] == [(world.courtyards[0].unit_id, world.courtyards[0].name, "小院")]
