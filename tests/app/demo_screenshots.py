"""Screenshots of the demo district for docs/screenshots/ (shown in the README), taken from a
running `make up` stack with the demo logins:

    make up && make screenshots

The page tests write screenshots of every page on every run (build/screenshots/); these few are
the ones a district sees before installing.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from playwright.sync_api import expect, sync_playwright

from .browser import CHROMIUM, CHROMIUM_ARGS, DESK, PHONE, ROOT

DEMO_PASSWORD = "Wenming@2026"
# (file, kind, login, path, text to wait for, desk?)
SHOTS = [
    ("login", None, None, "/login", "以居民身份登录", False),
    ("resident-menu", "居民", "13709310000", "/resident", "服务菜单", False),
    ("resident-orders", "居民", "13709310000", "/resident/orders", "我的点单", False),
    ("volunteer-me", "志愿者", "13909310000", "/volunteer/me", "星级", False),
    ("head-queue", "管理员", "cy111-admin", "/admin", "收单派单", False),
    ("center", "管理员", "center-admin", "/admin/center", "办理漏斗", True),
    ("center-big-screen", "管理员", "center-admin", "/admin/center?screen=1", "退出大屏", True),
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--base", default="http://127.0.0.1:8080")
    parser.add_argument("--out", default=str(ROOT / "docs" / "screenshots"))
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        for name, kind, login, path, text, desk in SHOTS:
            context = browser.new_context(viewport=DESK if desk else PHONE, locale="zh-CN",
                                          timezone_id="Asia/Shanghai", device_scale_factor=1)
            page = context.new_page()
            if kind:
                page.goto(f"{args.base}/app/login")
                page.get_by_role("radio", name=kind).click()
                page.get_by_label("用户名" if kind == "管理员" else "手机号").fill(login)
                page.get_by_label("密码").fill(DEMO_PASSWORD)
                page.get_by_role("button", name=f"以{kind}身份登录").click()
                page.wait_for_url(re.compile(r"/app/(resident|volunteer|admin)"))
            page.goto(f"{args.base}/app{path}")
            expect(page.get_by_text(text).first).to_be_visible(timeout=20_000)
            expect(page.locator(".van-loading >> visible=true")).to_have_count(0, timeout=20_000)
            page.wait_for_timeout(800)  # charts finish their entry animation
            page.screenshot(path=str(out / f"{name}.png"), full_page=not desk)
            print(f"wrote {out / f'{name}.png'}")
            context.close()
        browser.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
