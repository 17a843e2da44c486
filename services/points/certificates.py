"""Service record certificates (志愿服务记录证明), issued by the unit that recorded the hours
(谁记录谁证明): numbered, carrying the volunteer number (never an ID number), the hours and what
they were for, the issuer and the date. Anyone can verify one by its number (gRPC and HTTP);
verification shows the facts, never a name. Every reading also lists the volunteer's commendations
(表彰) not revoked at the time it is read: year, level, title and issuer."""

from __future__ import annotations

import datetime as dt
import re
import secrets
from collections import defaultdict

from flask import Blueprint, Response, request
from google.protobuf.json_format import MessageToDict
from jinja2 import Environment
from prometheus_client import Counter
from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError

from services.common.auth import Principal, Role
from services.common.clock import CHINA, as_utc, clock
from services.common.http_errors import from_domain_error, json_error, json_response
from services.common.errors import FailedPrecondition, InvalidArgument, NotFound, PermissionDenied, Unavailable
from services.common.events import EventSource, to_timestamp
from services.common.ids import decode_page_token, encode_page_token, new_id
from services.common.monthly_rules import HOURS_BOOKS
from services.common.outbox import insert_with_events
from services.common.validation import Validator
from wenming.common.v1 import common_pb2
from wenming.points.v1 import events_pb2
from wenming.points.v1 import points_pb2 as pb

from .commendations import Commendations
from .directory import Directory
from .models import Certificate, Counter as Sequence, LedgerEntry
from .store import CODE_ALPHABET

NUMBER = re.compile(r"^ZM-\d{4}-\d{6}-[2-9A-HJ-NP-Z]{4}$")
CATEGORY_LABEL = {
    common_pb2.SERVICE_CATEGORY_LECTURE_THEORY: "讲理论", common_pb2.SERVICE_CATEGORY_LECTURE_POLICY: "讲政策",
    common_pb2.SERVICE_CATEGORY_LECTURE_SCIENCE: "讲科学", common_pb2.SERVICE_CATEGORY_LECTURE_LAW: "讲法治",
    common_pb2.SERVICE_CATEGORY_LECTURE_HEALTH: "讲健康", common_pb2.SERVICE_CATEGORY_LECTURE_ROLE_MODELS: "讲典型",
    common_pb2.SERVICE_CATEGORY_LECTURE_CHANGE: "讲变化", common_pb2.SERVICE_CATEGORY_CARE_FOR_OTHERS: "关爱他人",
    common_pb2.SERVICE_CATEGORY_CARE_FOR_SOCIETY: "关爱社会", common_pb2.SERVICE_CATEGORY_CARE_FOR_NATURE: "关爱自然",
}

ISSUED = Counter("points_certificates_issued_total", "Service record certificates issued")

_TEMPLATE = Environment(autoescape=True).from_string("""<!DOCTYPE html>
<html lang="zh-CN"><head><meta charset="utf-8"><title>志愿服务记录证明 {{ c.number }}</title>
<style>
 body { font-family: "SimSun", "Songti SC", serif; max-width: 720px; margin: 2em auto; color: #222; }
 h1 { text-align: center; letter-spacing: .3em; } .no { text-align: right; }
 table { width: 100%; border-collapse: collapse; margin: 1em 0; } td, th { border: 1px solid #444; padding: .4em; }
 .seal { text-align: right; margin-top: 3em; } @media print { .hint { display: none; } }
</style></head><body>
<h1>志愿服务记录证明</h1>
<p class="no">证明编号：{{ c.number }}</p>
<p>兹证明{% if name %}志愿者 <b>{{ name }}</b>（{% else %}志愿者（{% endif %}志愿者编号 {{ c.volunteer_number }}）
{% if period %}于 {{ period }} 期间{% endif %}在 {{ c.issuer }} 参加志愿服务，经本单位记录并审核，
累计服务时长 <b>{{ c.total_hours }}</b> 小时（其中实时记录 {{ c.verified_hours }} 小时，补录 {{ c.manual_hours }} 小时）。</p>
<table><tr><th>服务内容</th><th>类别</th><th>次数</th><th>时长（小时）</th><th>时间</th></tr>
{% for line in c.lines %}<tr><td>{{ line.title }}</td><td>{{ line.category }}</td><td>{{ line.times }}</td>
<td>{{ line.hours }}</td><td>{{ line.span }}</td></tr>{% endfor %}</table>
{% if c.commendations %}<p>获得表彰：</p>
<table><tr><th>年度</th><th>级别</th><th>表彰称号</th><th>授予单位</th></tr>
{% for item in c.commendations %}<tr><td>{{ item.year }}</td><td>{{ item.level_label }}</td><td>{{ item.title }}</td>
<td>{{ item.issuer }}</td></tr>{% endfor %}</table>{% endif %}
<p>特此证明。</p>
<p class="seal">出具单位：{{ c.issuer }}（盖章）<br>出具日期：{{ c.issued_on }}</p>
<p class="hint">本证明可凭编号在文明云查验真伪。</p>
</body></html>""")


def _hours(minutes: int) -> str:
    return f"{minutes / 60:.1f}"


def _day(value: dt.datetime) -> str:
    return as_utc(value).astimezone(CHINA).strftime("%Y年%m月%d日")


class Certificates:
    def __init__(self, directory: Directory, events: EventSource, commendations: Commendations):
        self.directory = directory
        self.events = events
        self.commendations = commendations
        self.certificates = Certificate.collection()
        self.entries = LedgerEntry._get_collection()
        self.counters = Sequence._get_collection()

    # over 60 lines: validate, replay by key, tally the unit's entries, insert under a fresh number; each
    # step uses what the ones before found (the tally is the part that could move to a function)
    def issue(self, principal: Principal, req: pb.IssueCertificateRequest) -> dict:
        v = Validator()
        volunteer_id = v.ident("volunteer_id", req.volunteer_id)
        unit_id = v.ident("issuing_unit_id", req.issuing_unit_id, required=False) or principal.unit_id
        start = v.timestamp("period_start", req, required=False)
        end = v.timestamp("period_end", req, required=False)
        if start and end and start >= end:
            v.fail("period_end", "must be after period_start")
        key = v.idempotency_key(req.idempotency_key)
        v.check()
        if principal.role != Role.ROLE_UNIT_ADMIN:
            raise PermissionDenied("certificates are issued by a unit admin")
        if not unit_id:
            raise InvalidArgument.field("issuing_unit_id", "must be set (your token names no unit)")
        unit = self.directory.managed_unit(principal, unit_id, "issuing unit")
        existing = self.certificates.find_one({"district_id": principal.district_id, "issuer_unit_id": unit["_id"],
                                               "idempotency_key": key}, {"outbox": 0})
        if existing is not None:
            return self._shown(self._replayed(existing, volunteer_id))
        holder = self.directory.holder(principal.district_id, volunteer_id)
        if holder is None or holder.kind != pb.ACCOUNT_KIND_VOLUNTEER:
            raise NotFound("volunteer", volunteer_id)

        query: dict = {"district_id": principal.district_id, "account_id": volunteer_id,
                       "recorded_by_unit_id": unit["_id"], "book": {"$in": list(HOURS_BOOKS)}}
        if start or end:
            query["occurred_at"] = {k: val for k, val in (("$gte", start), ("$lt", end)) if val}
        totals: dict[int, int] = defaultdict(int)
        lines: dict[tuple[str, int], dict] = {}
        for e in self.entries.find(query, {"book": 1, "amount": 1, "cause": 1, "occurred_at": 1, "kind": 1}):
            totals[e["book"]] += e["amount"]
            line = lines.setdefault((e["cause"].get("title", ""), e["cause"].get("category", 0)),
                                    {"times": 0, "minutes": 0, "first_at": None, "last_at": None})
            line["minutes"] += e["amount"]
            if e["amount"] > 0:
                at = as_utc(e["occurred_at"])
                line["times"] += 1
                line["first_at"] = min(line["first_at"] or at, at)
                line["last_at"] = max(line["last_at"] or at, at)
        verified, manual = totals[pb.BOOK_VERIFIED_MINUTES], totals[pb.BOOK_MANUAL_MINUTES]
        if verified + manual <= 0:
            raise FailedPrecondition("this unit recorded no service hours for this volunteer in the period")
        now = clock.now()
        document = {
            "_id": new_id("cert"), "district_id": principal.district_id, "volunteer_id": volunteer_id,
            "volunteer_number": holder.volunteer_number, "volunteer_name": holder.name,
            "issuer_unit_id": unit["_id"], "issuer": {"unit_id": unit["_id"], "name": unit["name"],
                                                      "level": unit["level"], "path": unit["path"]},
            "verified_minutes": verified, "manual_minutes": manual,
            "lines": [{"title": t, "category": c, **line} for (t, c), line in sorted(lines.items())
                      if line["minutes"] > 0],
            "period_start": start, "period_end": end, "issued_at": now, "issued_by": principal.subject,
            "idempotency_key": key,
        }
        for _ in range(3):
            document["number"] = self._next_number(principal.district_id, now)
            event = self.events.new(
                events_pb2.CertificateIssued(number=document["number"], volunteer_id=volunteer_id,
                                             volunteer_number=holder.volunteer_number, issuer_unit_id=unit["_id"],
                                             verified_minutes=verified, manual_minutes=manual,
                                             issued_at=to_timestamp(now)),
                district_id=principal.district_id, aggregate_type="certificate", aggregate_id=document["_id"],
                version=1, actor_id=principal.subject)
            try:
                insert_with_events(self.certificates, document, [event])
                ISSUED.inc()
                return self._shown(document)
            except DuplicateKeyError:
                # FerretDB does not name the index: a concurrent retry with the key, or a number clash
                existing = self.certificates.find_one({"district_id": principal.district_id,
                                                       "issuer_unit_id": unit["_id"], "idempotency_key": key},
                                                      {"outbox": 0})
                if existing is not None:
                    return self._shown(self._replayed(existing, volunteer_id))
        raise Unavailable("could not allocate a certificate number; retry")

    def _shown(self, cert: dict) -> dict:
        """The certificate as read: its stored facts and the volunteer's commendations not revoked now."""
        return {**cert, "commendations": self.commendations.on_certificate(cert["district_id"], cert["volunteer_id"])}

    @staticmethod
    def _replayed(existing: dict, volunteer_id: str) -> dict:
        if existing["volunteer_id"] != volunteer_id:
            raise InvalidArgument.field("idempotency_key", "was already used for another volunteer's certificate")
        return existing

    def _next_number(self, district_id: str, now: dt.datetime) -> str:
        year = now.astimezone(CHINA).year
        counter = self.counters.find_one_and_update({"_id": f"{district_id}:certificate:{year}"}, {"$inc": {"seq": 1}},
                                                    upsert=True, return_document=ReturnDocument.AFTER)
        check = "".join(secrets.choice(CODE_ALPHABET) for _ in range(4))  # numbers cannot be enumerated
        return f"ZM-{year}-{counter['seq']:06d}-{check}"

    def _by_number(self, number: str) -> dict:
        v = Validator()
        number = v.regex("number", (number or "").strip().upper(), NUMBER,
                         "must look like ZM-2026-000123-K7QX")
        v.check()
        found = self.certificates.find_one({"number": number}, {"outbox": 0})
        if found is None:
            raise NotFound("certificate", number)
        return found

    def get(self, principal: Principal, number: str) -> dict:
        cert = self._by_number(number)
        if principal.district_id != cert["district_id"]:
            raise PermissionDenied("that certificate belongs to another district")
        if principal.role == Role.ROLE_VOLUNTEER and principal.subject == cert["volunteer_id"]:
            return self._shown(cert)
        if principal.role in (Role.ROLE_UNIT_ADMIN, Role.ROLE_SERVICE) and principal.manages(cert["issuer"]["path"]):
            return self._shown(cert)
        raise PermissionDenied("only the volunteer or an admin of the issuing unit may open this certificate")

    def list_for(self, principal: Principal, req: pb.ListCertificatesRequest) -> tuple[list[dict], str]:
        """A volunteer's certificates, newest first: their own, or for admins those their subtree
        issued (to another volunteer, an admin of neither the volunteer nor an issuer is refused)."""
        v = Validator()
        volunteer_id = v.ident("volunteer_id", req.volunteer_id, required=False)
        size = v.page_size("page.page_size", req.page.page_size)
        after = decode_page_token(req.page.page_token)
        v.check()
        query: dict = {"district_id": principal.district_id}
        if principal.role == Role.ROLE_VOLUNTEER:
            if volunteer_id not in ("", principal.subject):
                raise PermissionDenied("a volunteer sees their own certificates only")
            query["volunteer_id"] = principal.subject
        elif principal.role in (Role.ROLE_UNIT_ADMIN, Role.ROLE_SERVICE):
            if not volunteer_id:
                raise InvalidArgument.field("volunteer_id", "must be set: your token has no certificates of its own")
            query["volunteer_id"] = volunteer_id
            if principal.role == Role.ROLE_UNIT_ADMIN:
                query["issuer.path"] = principal.unit_id
            self._require_reach(principal, volunteer_id, query)
        else:
            raise PermissionDenied("certificates are listed for the volunteer themself or an admin of an issuing unit")
        if after:
            query["_id"] = {"$lt": after}
        found = list(self.certificates.find(query, {"outbox": 0}).sort("_id", -1).limit(size + 1))
        token = encode_page_token(found[size - 1]["_id"]) if len(found) > size else ""
        commendations = self.commendations.on_certificate(principal.district_id, query["volunteer_id"]) if found \
            else []
        return [{**cert, "commendations": commendations} for cert in found[:size]], token

    def _require_reach(self, principal: Principal, volunteer_id: str, issued_here: dict) -> None:
        holder = self.directory.holder(principal.district_id, volunteer_id)
        if holder is None or holder.kind != pb.ACCOUNT_KIND_VOLUNTEER:
            raise NotFound("volunteer", volunteer_id)
        if any(principal.manages(path) for path in holder.unit_paths):
            return
        if self.certificates.find_one(issued_here, {"_id": 1}) is None:
            raise PermissionDenied("that volunteer is outside your unit's subtree and has no certificate issued "
                                   "in it")

    def verify(self, number: str) -> dict:
        return self._shown(self._by_number(number))


def facts_msg(cert: dict) -> pb.CertificateFacts:
    issuer = cert["issuer"]
    return pb.CertificateFacts(
        number=cert["number"], volunteer_number=cert["volunteer_number"],
        issuer=common_pb2.UnitRef(unit_id=issuer["unit_id"], level=issuer["level"], name=issuer["name"],
                                  path=issuer["path"]),
        verified_minutes=cert["verified_minutes"], manual_minutes=cert["manual_minutes"],
        lines=[pb.ServiceLine(title=line["title"], category=line["category"], times=line["times"],
                              minutes=line["minutes"], first_at=to_timestamp(line["first_at"]),
                              last_at=to_timestamp(line["last_at"])) for line in cert["lines"]],
        **dict(zip(("period_start", "period_end"), map(to_timestamp, period_of(cert)), strict=True)),
        issued_at=to_timestamp(cert["issued_at"]),
        commendations=[pb.CertificateCommendation(**line) for line in cert.get("commendations", ())])


def period_of(cert: dict) -> tuple[dt.datetime | None, dt.datetime | None]:
    """The time a certificate covers: the period asked for at issue, or else the real span of the
    service it lists (first and last service dates). Never a made-up 1970."""
    if cert.get("period_start") or cert.get("period_end"):
        return cert.get("period_start"), cert.get("period_end")
    firsts = [line["first_at"] for line in cert["lines"] if line["first_at"]]
    lasts = [line["last_at"] for line in cert["lines"] if line["last_at"]]
    return (min(firsts) if firsts else None), (max(lasts) if lasts else None)


def certificate_msg(cert: dict) -> pb.Certificate:
    return pb.Certificate(facts=facts_msg(cert), volunteer_id=cert["volunteer_id"],
                          volunteer_name=cert["volunteer_name"], issued_by=cert["issued_by"])


def certificate_view(cert: dict) -> dict:
    """The certificate as printed (the page and the PDF): hours as hours, dates as Chinese dates,
    categories by name; `period` is empty when the certificate covers no span."""
    start, end = period_of(cert)
    if end and cert.get("period_end"):
        # a period asked for ends before period_end (entries are counted while < end): a month's
        # certificate reads 11月01日至11月30日, not 至12月01日
        end = end - dt.timedelta(microseconds=1)
    return {
        "period": f"{_day(start) if start else ''}至{_day(end) if end else '今'}" if start or end else "",
        "number": cert["number"], "volunteer_number": cert["volunteer_number"], "issuer": cert["issuer"]["name"],
        "total_hours": _hours(cert["verified_minutes"] + cert["manual_minutes"]),
        "verified_hours": _hours(cert["verified_minutes"]), "manual_hours": _hours(cert["manual_minutes"]),
        "issued_on": _day(cert["issued_at"]),
        "lines": [{"title": line["title"] or "志愿服务", "category": CATEGORY_LABEL.get(line["category"], "其他"),
                   "times": line["times"], "hours": _hours(line["minutes"]),
                   "span": f"{_day(line['first_at'])}—{_day(line['last_at'])}" if line["first_at"] else ""}
                  for line in cert["lines"]],
        "commendations": cert.get("commendations", ()),
    }


def render_html(cert: dict, *, with_name: bool) -> str:
    """The printable certificate (Chinese). Without the name it is the public verification page."""
    view = certificate_view(cert)
    return _TEMPLATE.render(c=view, name=cert["volunteer_name"] if with_name else "", period=view["period"])


def blueprint(certificates: Certificates) -> Blueprint:
    """GET /certificates/<number> (JSON facts) and ?format=html (printable verification page)."""
    bp = Blueprint("certificates", __name__)

    @bp.get("/certificates/<number>")
    def verify(number: str):
        try:
            cert = certificates.verify(number)
        except InvalidArgument as exc:
            return from_domain_error(exc)
        except NotFound:
            return json_error(404, "NOT_FOUND", "没有这个编号的证明 (no certificate with this number)")
        if request.args.get("format") == "html":
            return Response(render_html(cert, with_name=False), mimetype="text/html")
        return json_response(200, MessageToDict(facts_msg(cert)))

    return bp
