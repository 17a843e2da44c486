"""The roster export (志愿者花名册, docs/reporting.md): the volunteers of a unit's subtree as a
workbook, through the kit's export jobs (services/common/exports.py).

Pages are read through SearchVolunteers' own path with the starter's rights, and each volunteer
goes through `volunteer_msg`, the translation GetVolunteer and SearchVolunteers answer with: the
file authorizes as the list does and carries exactly the masked ID and phone numbers the API shows
(no role sees them in full; the plain values are encrypted and never leave the service).
"""

from __future__ import annotations

from services.common.auth import Principal, Role, require_role
from services.common.errors import PermissionDenied
from services.common.exports import UNIT_LEVEL_NAMES, ExportJobs, Sheet, WorkbookSource
from services.common.validation import MAX_PAGE_SIZE, Validator
from wenming.common.v1 import common_pb2
from wenming.registration.v1 import registration_pb2 as pb

from .onboarding import POLITICAL, SKILLS
from .translate import volunteer_msg
from .units import UnitDirectory
from .volunteers import VolunteerRegistry

HEADERS = ("志愿者编号", "姓名", "性别", "出生日期", "身份证号", "手机号", "政治面貌", "服务单位", "技能特长", "状态",
           "注册时间")
START_ROSTER_EXPORT = f"/{pb.DESCRIPTOR.services_by_name['RegistrationService'].full_name}/StartRosterExport"
GENDERS = {pb.GENDER_MALE: "男", pb.GENDER_FEMALE: "女"}
STATUSES = {pb.VOLUNTEER_STATUS_PENDING: "待审核", pb.VOLUNTEER_STATUS_ACTIVE: "在册",
            pb.VOLUNTEER_STATUS_SUSPENDED: "已暂停"}
POLITICAL_NAMES = {value: name for name, value in POLITICAL.items()}
SKILL_NAMES = {value: name for name, value in SKILLS.items()}
STATUS_COUNTS = {pb.VOLUNTEER_STATUS_PENDING: "volunteers_pending", pb.VOLUNTEER_STATUS_ACTIVE: "volunteers_active",
                 pb.VOLUNTEER_STATUS_SUSPENDED: "volunteers_suspended"}


def roster_row(volunteer: pb.Volunteer) -> list[str]:
    """One volunteer as the roster shows them (what the API answers, in Chinese words)."""
    registered = volunteer.registered_at.ToDatetime().strftime("%Y-%m-%d") if volunteer.registered_at.seconds else ""
    return [volunteer.volunteer_number, volunteer.name, GENDERS.get(volunteer.gender, ""), volunteer.birth_date,
            volunteer.national_id_masked, volunteer.phone_masked,
            POLITICAL_NAMES.get(volunteer.political_status, ""),
            "；".join(f"{u.name}（{UNIT_LEVEL_NAMES.get(u.level, '')}）" for u in volunteer.service_units),
            "、".join(SKILL_NAMES.get(s, "") for s in volunteer.skills), STATUSES.get(volunteer.status, ""),
            registered]


class RosterSource(WorkbookSource):
    kind = common_pb2.EXPORT_KIND_ROSTER
    title = "志愿者花名册"

    def __init__(self, units: UnitDirectory, volunteers: VolunteerRegistry):
        self.units = units
        self.volunteers = volunteers

    def count(self, principal: Principal, job: dict) -> int:
        _, counts = self.units.stats(principal, job["unit_id"])
        status = job["params"]["status"]
        return sum(counts[name] for s, name in STATUS_COUNTS.items() if not status or s == status)

    def page(self, principal: Principal, job: dict, cursor: str) -> tuple[list[list], str]:
        views, token = self.volunteers.search(principal, pb.SearchVolunteersRequest(
            unit_id=job["unit_id"], status=job["params"]["status"],
            page=common_pb2.PageRequest(page_size=MAX_PAGE_SIZE, page_token=cursor)))
        return [roster_row(volunteer_msg(view)) for view in views], token

    def sheets(self, job: dict, rows: list[list]) -> list[Sheet]:
        return [Sheet("花名册", HEADERS, rows)]


def start_roster(exports: ExportJobs, units: UnitDirectory, principal: Principal,
                 req: pb.StartRosterExportRequest) -> dict:
    """StartRosterExport: unit admins, for a unit of their own subtree."""
    v = Validator()
    unit_id = v.ident("unit_id", req.unit_id, required=False) or principal.unit_id
    v.enum("status", req.status, pb.VolunteerStatus, required=False)
    v.check()
    require_role(principal, Role.ROLE_UNIT_ADMIN)
    unit = units.get(principal.district_id, unit_id)
    if not principal.manages(unit.path):
        raise PermissionDenied("只能导出本单位及下级单位的志愿者花名册")
    return exports.start(principal, RosterSource.kind, {"_id": unit.id, "name": unit.name, "path": list(unit.path),
                                                        "level": unit.level}, {"status": req.status})
