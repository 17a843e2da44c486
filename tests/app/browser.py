"""A phone (or desk) in a real headless Chromium, driven by Playwright for Python.

Debian's `chromium` is the browser (`make test` installs it); Playwright's own browser download
is never used. Each `Device` is a fresh browser context — its own storage, like another person's
phone — that records what a person would call a fault: JavaScript errors, console errors, server
errors (5xx) and any request leaving the gateway's origin (the app must work offline from CDNs).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Browser, BrowserContext, Page, expect

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "build" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
# flags for a closed network: no background calls home, no component updates
CHROMIUM_ARGS = ["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-sync", "--disable-quic"]
PHONE = {"width": 390, "height": 844}
DESK = {"width": 1440, "height": 900}
# Chrome logs every non-2xx fetch as "Failed to load resource"; a refusal the page handles (a 409
# for a lost 抢单, a 404) is not a fault, a server error is
NETWORK_NOISE = re.compile(r"^Failed to load resource: the server responded with a status of 4\d\d")
SERIOUS = {"serious", "critical"}

expect.set_options(timeout=15_000)


@dataclass
class Device:
    context: BrowserContext
    page: Page
    base: str
    name: str
    faults: list[str] = field(default_factory=list)
    expected_faults: list[re.Pattern] = field(default_factory=list)

    def open(self, path: str) -> Page:
        self.page.goto(f"{self.base}/app{path}")
        return self.page

    def login(self, kind: str, login: str, password: str) -> None:
        """Logs in on the app's login page as 居民, 志愿者 or 管理员 and waits for the home page."""
        page = self.open("/login")
        page.get_by_role("radio", name=kind).click()
        page.get_by_label("用户名" if kind == "管理员" else "手机号").fill(login)
        page.get_by_label("密码").fill(password)
        page.get_by_role("button", name=f"以{kind}身份登录").click()
        page.wait_for_url(re.compile(r"/app/(resident|volunteer|admin)"))

    def settle(self) -> None:
        """Waits until nothing on the page is still loading (the live stream stays open, so the
        network is never idle)."""
        expect(self.page.locator(".van-loading >> visible=true")).to_have_count(0)

    def shot(self, name: str) -> Path:
        """A full-page screenshot into build/screenshots (git-ignored)."""
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{name}-{self.name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path

    def accessibility_violations(self) -> list[str]:
        """axe-core's serious and critical findings on the page as it is now."""
        results = Axe().run(self.page)
        return [f"{v['id']} ({v['impact']}): {v['help']} — " + "; ".join(
                    f"{n['target']} {n['html'][:120]} {n.get('failureSummary', '')[:200]}" for n in v["nodes"][:3])
                for v in results.response["violations"] if v["impact"] in SERIOUS]

    def export_and_download(self, folder: Path) -> Path:
        """数据导出 as it stands (kind and period chosen): starts the job, waits for its 下载 button,
        saves the file into `folder`; its path."""
        self.page.get_by_role("button", name="开始导出").click()
        button = self.page.get_by_role("button", name="下载")
        expect(button).to_be_visible(timeout=60_000)
        with self.page.expect_download() as caught:
            button.click()
        saved = folder / caught.value.suggested_filename
        caught.value.save_as(saved)
        return saved

    def expect_fault(self, pattern: str) -> None:
        """A fault the test provokes on purpose (a server that is down)."""
        self.expected_faults.append(re.compile(pattern))

    def lose_next_answer(self, method: str) -> None:
        """The next call of `method` ("points/RestockStoreItem") reaches the server, but its answer is
        lost on the way back: the page sees a network failure, as a phone on a bad line would."""
        def lose(route) -> None:
            route.fetch()
            route.abort()

        self.expect_fault(r"ERR_FAILED")
        self.page.route(f"**/api/v1/{method}", lose, times=1)

    def unexpected_faults(self) -> list[str]:
        return [f for f in self.faults if not any(p.search(f) for p in self.expected_faults)]


def new_device(browser: Browser, base: str, name: str, viewport: dict | None = None) -> Device:
    context = browser.new_context(viewport=viewport or PHONE, locale="zh-CN", timezone_id="Asia/Shanghai",
                                  device_scale_factor=1, is_mobile=(viewport or PHONE) is PHONE,
                                  has_touch=(viewport or PHONE) is PHONE)
    page = context.new_page()
    device = Device(context, page, base, name)
    page.on("pageerror", lambda error: device.faults.append(f"page error: {error}"))

    def on_console(message) -> None:
        if message.type == "error" and not NETWORK_NOISE.match(message.text):
            device.faults.append(f"console error: {message.text[:300]}")

    def on_request(request) -> None:
        if not request.url.startswith((base, "data:", "blob:")):
            device.faults.append(f"request outside the gateway: {request.url[:200]}")

    def on_response(response) -> None:
        if response.status >= 500:
            device.faults.append(f"server error {response.status}: {response.url[:200]}")

    page.on("console", on_console)
    page.on("request", on_request)
    page.on("response", on_response)
    return device
