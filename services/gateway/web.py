"""The people-facing app (H5) under /app/: the files `make web` built, served from this process so
a government intranet needs no CDN.

Every path under /app/ that is not a built file answers the app's index.html, so a reload or a
shared link (/app/admin/orders/<id>, /app/admin/center?unit=<id>) opens that page. Built assets
carry a content hash in their names and are cached for a year; index.html never is, so a new
release reaches phones on their next visit.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from flask import Blueprint, Response, redirect, send_from_directory
from werkzeug.exceptions import NotFound
from werkzeug.security import safe_join

log = logging.getLogger(__name__)

SECURITY_HEADERS = {
    # Vant sets inline style attributes and ships its icon font inline (data:); scripts come only from
    # this origin, and nothing is ever fetched from elsewhere (the font's CDN fallback included)
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
                               "font-src 'self' data:; "
                               "img-src 'self' data: blob:; media-src 'self' blob:; connect-src 'self'; "
                               "worker-src 'self' blob:; object-src 'none'; base-uri 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    # the volunteer's check-in scanner uses the camera of this origin only
    "Permissions-Policy": "camera=(self), microphone=(), geolocation=()",
}
HASHED_ASSETS_MAX_AGE = 365 * 24 * 3600


def web_blueprint(root: Path, district_id: str, district_name: str, region_reports: bool = False) -> Blueprint:
    bp = Blueprint("web", __name__)
    index = root / "index.html"
    if not index.exists():
        log.warning("the app is not built (%s missing): run 'make web'; /app/ answers 503 until then", index)

    def _with_headers(response: Response) -> Response:
        response.headers.update(SECURITY_HEADERS)
        return response

    def _index() -> Response:
        if not index.exists():
            return _with_headers(Response("文明云应用尚未构建：请在服务器上运行 make web。", status=503,
                                          mimetype="text/plain"))
        response = Response(index.read_bytes(), mimetype="text/html")
        response.headers["Cache-Control"] = "no-cache"
        return _with_headers(response)

    @bp.get("/")
    def root_page():
        return redirect("/app/")

    @bp.get("/dashboard")
    def dashboard():
        # the 指挥调度中心 lives in the app now; old bookmarks land there
        return redirect("/app/admin/center")

    @bp.get("/app")
    def app_without_slash():
        return redirect("/app/")

    @bp.get("/app/config.json")
    def config():
        """What the pages need to know of this deployment: the district it serves (the login page) and
        whether it routes a roll-up (a city's or province's release: 我的 offers 区域汇总)."""
        body = json.dumps({"districtId": district_id, "districtName": district_name,
                           "regionReports": region_reports}, ensure_ascii=False)
        response = Response(body, mimetype="application/json")
        response.headers["Cache-Control"] = "no-cache"
        return _with_headers(response)

    @bp.get("/app/")
    @bp.get("/app/<path:path>")
    def app_page(path: str = ""):
        if path.startswith("assets/"):
            if safe_join(str(root), path) is None:
                raise NotFound()
            response = send_from_directory(root, path, max_age=HASHED_ASSETS_MAX_AGE)
            response.headers["Cache-Control"] = f"public, max-age={HASHED_ASSETS_MAX_AGE}, immutable"
            return _with_headers(response)
        static = safe_join(str(root), path) if path else None
        if static and Path(static).is_file() and path != "index.html":
            return _with_headers(send_from_directory(root, path, max_age=3600))
        if static and path.endswith("/") and (Path(static) / "index.html").is_file():
            # a page of its own beside the app (the API viewer, /app/api-docs/)
            return _with_headers(send_from_directory(root, f"{path}index.html", max_age=0))
        return _index()

    return bp
