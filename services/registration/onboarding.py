"""District onboarding from a spreadsheet (docs/onboarding.md): what each kind's columns mean, and
the check of a filled-in file, row by row, that a dry run reports and an import starts from.

A row is checked as RegisterVolunteer / RegisterResident would check it (the ID number's check
digit, the mobile number, the units named inside the caller's subtree), and against the other
rows of the file and the people of the district: whoever is in it twice, or registered already,
is marked. Reasons are in Chinese (the people who read them fill in the sheet) and never repeat a
personal value; only unit names and the sheet's own words are quoted, shortened.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from services.common.auth import Principal, Role, require_role
from services.common.errors import InvalidArgument, excerpt
from services.common.exports import UNIT_LEVEL_NAMES
from services.common.pii import PiiVault, parse_national_id, validate_mobile
from services.common.validation import Validator
from wenming.common.v1 import common_pb2 as c
from wenming.registration.v1 import registration_pb2 as pb

from .models import Resident, Team, Unit, Volunteer
from .sheets import Column, Marked, SheetRow, error_workbook, read_rows, template_csv, template_xlsx
from .units import MAX_NAME as MAX_UNIT_NAME
from .volunteers import MAX_UNITS

MAX_NAME = 50
MAX_FILE_NAME = 200
MAX_ISSUES = 200
# an error workbook stays well inside a response (8 MiB): 20,000 marked rows are about 1.2 MB
MAX_WORKBOOK_ROWS = 20_000
LOOKUP_BATCH = 1000
POLITICAL = {"中共党员": pb.POLITICAL_STATUS_CPC_MEMBER, "中共预备党员": pb.POLITICAL_STATUS_CPC_PROBATIONARY,
             "共青团员": pb.POLITICAL_STATUS_CYL_MEMBER, "民主党派": pb.POLITICAL_STATUS_DEMOCRATIC_PARTY,
             "群众": pb.POLITICAL_STATUS_MASSES}
SKILLS = {"理论宣讲": c.SKILL_THEORY_LECTURE, "政策解读": c.SKILL_POLICY_EXPLAIN, "文化文艺": c.SKILL_CULTURE_ART,
          "科学普及": c.SKILL_SCIENCE_POP, "法律服务": c.SKILL_LEGAL_AID, "医疗健康": c.SKILL_MEDICAL_HEALTH,
          "环境保护": c.SKILL_ENVIRONMENT, "应急救援": c.SKILL_EMERGENCY_RESCUE, "助老服务": c.SKILL_ELDERLY_CARE,
          "关爱未成年人": c.SKILL_CHILD_CARE, "心理疏导": c.SKILL_PSYCH_COUNSEL, "数字助老": c.SKILL_DIGITAL_HELP,
          "家电维修": c.SKILL_APPLIANCE_REPAIR, "义务理发": c.SKILL_HAIRCUT, "农技推广": c.SKILL_AGRI_TECH,
          "体育健身": c.SKILL_SPORTS_FITNESS}
DAYS = "一二三四五六日"
WEEKDAYS = {**{f"周{d}": i for i, d in enumerate(DAYS, 1)}, **{f"星期{d}": i for i, d in enumerate(DAYS, 1)},
            "周天": 7, "星期天": 7}
PERIODS = {"上午": c.DAY_PERIOD_MORNING, "下午": c.DAY_PERIOD_AFTERNOON, "晚上": c.DAY_PERIOD_EVENING}
LIST = re.compile(r"[、,，;；\s]+")
UNIT_LIST = re.compile(r"[、,，;；\n]+")
UNIT_PATH = re.compile(r"\s*[/／>＞]\s*")
NATIONAL_ID_REASONS = {  # services.common.pii.parse_national_id's reasons, as the sheet's readers read them
    "must be 18 characters: 17 digits and a digit or X": "应为18位：17位数字加一位数字或X",
    "contains an impossible birth date": "其中的出生日期不成立",
    "check digit does not match (GB 11643)": "校验位不正确（GB 11643）",
}
MOBILE_REASON = "应为11位大陆手机号（13–19开头）"
REGISTERED = "已在本区登记，导入时跳过"
UNIT_EXISTS = "该单位已存在，导入时跳过"
TEAM_EXISTS = "该单位已有同名队伍，导入时跳过"
MEMBER_EXISTS = "已是该队伍成员，导入时跳过"
MAX_TEAM_NAME = 60


def _quote(text: str) -> str:
    return f"「{excerpt(text, 20)}」"


class Units:
    """The units of the caller's subtree, found by what a sheet writes for one: its full path of
    names from the center (中心/某某所/某某站/某某小院), the end of that path as long as it is
    unambiguous (某某站/某某小院, or just 某某小院), or its id. Each unit is a dict with its `_id`,
    `level` and `names` (the path of names)."""

    def __init__(self, principal: Principal):
        found = list(Unit.collection().find({"district_id": principal.district_id, "path": principal.unit_id},
                                            {"name": 1, "path": 1, "level": 1}))
        above = Unit.collection().find({"_id": {"$in": list(principal.unit_path)},
                                        "district_id": principal.district_id}, {"name": 1})
        names = {u["_id"]: u["name"] for u in [*found, *above]}
        self.district_id = principal.district_id
        self._volunteers: dict[str, dict | None] = {}
        self._teams: dict[tuple[str, str], dict | None] = {}
        self.seen: dict[tuple, int] = {}  # what earlier rows of a file named: the row it was first named in
        self.by_id: dict[str, dict] = {}
        self.by_path: dict[tuple[str, ...], dict] = {}
        self.by_name: dict[str, list[dict]] = defaultdict(list)
        for unit in found:
            self.add({"_id": unit["_id"], "level": unit["level"], "path": unit["path"],
                      "names": tuple(names.get(i, "") for i in unit["path"])})

    def volunteer(self, number: str) -> dict | None:
        """The district's volunteer with this 志愿者编号 (id, status, units), looked up once."""
        if number not in self._volunteers:
            self._volunteers[number] = Volunteer.collection().find_one(
                {"district_id": self.district_id, "volunteer_number": number}, {"status": 1, "unit_ids": 1})
        return self._volunteers[number]

    def team(self, unit_id: str, name: str) -> dict | None:
        """The team of that name at that unit (its id and members), looked up once."""
        if (unit_id, name) not in self._teams:
            self._teams[(unit_id, name)] = Team.collection().find_one(
                {"district_id": self.district_id, "unit_id": unit_id, "name": name}, {"member_ids": 1})
        return self._teams[(unit_id, name)]

    def add(self, unit: dict) -> None:
        """A unit found, created, or (a dry run) to be created by an earlier row."""
        self.by_id[unit["_id"]] = unit
        self.by_path[unit["names"]] = unit
        self.by_name[unit["names"][-1]].append(unit)

    def resolve(self, text: str) -> tuple[dict | None, str]:
        """(the unit, "") or (None, why not)."""
        if text in self.by_id:
            return self.by_id[text], ""
        wanted = tuple(part for part in UNIT_PATH.split(text) if part)
        matches = [unit for unit in self.by_name.get(wanted[-1], []) if unit["names"][-len(wanted):] == wanted] \
            if wanted else []
        if not matches:
            return None, f"在您管辖的单位中找不到{_quote(text)}"
        if len(matches) > 1:
            return None, f"{_quote(text)}有{len(matches)}个同名单位，请写出上级单位（如 某某站/某某小院）"
        return matches[0], ""


class RowReader:
    """One row's cells into a request row, with the reason of each bad cell."""

    def __init__(self, number: int, cells: dict[str, str], units: Units):
        self.number = number
        self.cells = cells
        self.units = units
        self.reasons: dict[str, str] = {}
        self.registered: set[str] = set()  # cells of what the district holds already

    def fail(self, key: str, reason: str) -> None:
        self.reasons.setdefault(key, reason)

    def exists(self, key: str, reason: str = REGISTERED) -> None:
        self.fail(key, reason)
        self.registered.add(key)

    def required(self, key: str) -> str:
        value = self.cells.get(key, "")
        if not value:
            self.fail(key, "不能为空")
        return value

    def name(self, key: str = "name", most: int = MAX_NAME, required: bool = True) -> str:
        value = self.required(key) if required else self.cells.get(key, "")
        check = Validator()
        check.text(key, value, max_len=most)
        if value and not check.ok():
            self.fail(key, f"不能超过{most}个字，不能换行或含控制字符")
        return value

    def national_id(self, key: str = "national_id") -> str:
        value = self.required(key)
        if value:
            try:
                return parse_national_id(value).number
            except ValueError as exc:
                self.fail(key, NATIONAL_ID_REASONS.get(str(exc), "不是有效的身份证号"))
        return ""

    def mobile(self, key: str = "phone", required: bool = True) -> str:
        value = self.required(key) if required else self.cells.get(key, "")
        if value:
            try:
                return validate_mobile(value)
            except ValueError:
                self.fail(key, MOBILE_REASON)
        return ""

    def choice(self, key: str, choices: dict[str, int], required: bool = True) -> int:
        value = self.required(key) if required else self.cells.get(key, "")
        if value and value not in choices:
            self.fail(key, f"应为以下之一：{'、'.join(choices)}")
        return choices.get(value, 0)

    def choices(self, key: str, choices: dict[str, int]) -> list[int]:
        picked: list[int] = []
        for word in (w for w in LIST.split(self.cells.get(key, "")) if w):
            if word not in choices:
                self.fail(key, f"{_quote(word)}不在可选项中（{'、'.join(choices)}）")
            elif choices[word] not in picked:
                picked.append(choices[word])
        return picked

    def volunteer(self, key: str, unit_id: str) -> str:
        """A volunteer of the district by 志愿者编号, ACTIVE and serving inside `unit_id` (what a
        team's leader and members must be); their id."""
        number = self.required(key).upper()
        if not number or not unit_id:
            return ""
        found = self.units.volunteer(number)
        if found is None:
            self.fail(key, f"本区没有志愿者编号{_quote(number)}")
        elif found["status"] != pb.VOLUNTEER_STATUS_ACTIVE:
            self.fail(key, "该志愿者不在服务状态（待审核或已暂停）")
        elif not any(unit_id in self.units.by_id.get(u, {}).get("path", ()) for u in found["unit_ids"]):
            self.fail(key, "该志愿者不在这个单位的范围内服务")
        else:
            return found["_id"]
        return ""

    def first_time(self, key: str, what: tuple) -> bool:
        """Whether no earlier row of the file named `what`; marks this row's cell if one did."""
        earlier = self.units.seen.setdefault(what, self.number)
        if earlier != self.number:
            self.fail(key, f"与第{earlier}行重复")
        return earlier == self.number

    def units_named(self, key: str, most: int, level: int = 0) -> list[str]:
        texts = [t.strip() for t in UNIT_LIST.split(self.required(key)) if t.strip()]
        if len(texts) > most:
            self.fail(key, f"最多填写{most}个单位")
        found: list[str] = []
        for text in texts:
            unit, reason = self.units.resolve(text)
            if unit is None:
                self.fail(key, reason)
            elif level and unit["level"] != level:
                self.fail(key, f"{_quote(text)}不是小院")
            elif unit["_id"] not in found:
                found.append(unit["_id"])
        return found


@dataclass(frozen=True)
class Unique:
    """A column holding one person's value: in a file once, and in the district once."""

    key: str
    model: type
    stored: str   # the document's blind-index field
    blind: str    # the blind index's field name (PiiVault)


@dataclass(frozen=True)
class Kind:
    kind: int
    title: str
    columns: tuple[Column, ...]
    unique: tuple[Unique, ...]
    read: Callable[[RowReader], object]  # the row as its import takes it
    identity: str                          # the column that says someone (something) is registered already
    exists: str = REGISTERED               # and what it says


def _volunteer(r: RowReader) -> pb.VolunteerImportRow:
    return pb.VolunteerImportRow(
        name=r.name(), national_id=r.national_id(), phone=r.mobile(),
        political_status=r.choice("political_status", POLITICAL),
        service_unit_ids=r.units_named("units", MAX_UNITS), skills=r.choices("skills", SKILLS),
        availability=c.Availability(weekdays=r.choices("weekdays", WEEKDAYS), periods=r.choices("periods", PERIODS)))


def _resident(r: RowReader) -> pb.ResidentImportRow:
    units = r.units_named("courtyard", 1, c.UNIT_LEVEL_COURTYARD)
    return pb.ResidentImportRow(name=r.name(), phone=r.mobile(), courtyard_unit_id=units[0] if units else "")


def _unit(r: RowReader) -> dict:
    """A unit under one of the subtree's units or of an earlier row's; the parent is kept by its
    path of names, since it may not exist before the import reaches it."""
    level = r.choice("level", LEVELS)
    name = r.name("name", MAX_UNIT_NAME)
    head_name, head_phone = r.name("head_name", required=False), r.mobile("head_phone", required=False)
    parent_text = r.required("parent")
    parent, reason = r.units.resolve(parent_text) if parent_text else (None, "")
    if parent is None:
        if parent_text:
            r.fail("parent", reason)
    elif level and parent["level"] + 1 != level:
        child = next((n for n, v in LEVELS.items() if v == parent["level"] + 1), "")
        r.fail("level", f"上级单位是{UNIT_LEVEL_NAMES[parent['level']]}，" + (f"下级应为{child}" if child else "小院之下没有单位"))
    if parent is not None and name and not r.reasons:
        path = (*parent["names"], name)
        earlier = r.units.by_path.get(path)
        if earlier is None:
            r.units.add({"_id": f"row{r.number}", "level": level, "names": path})
        elif earlier["_id"].startswith("row"):
            r.fail("name", f"与第{earlier['_id'][3:]}行重复")
        else:
            r.exists("name", UNIT_EXISTS)
    return {"parent": list(parent["names"]) if parent else [], "name": name, "level": level,
            "head_name": head_name, "head_phone": head_phone}


def _team(r: RowReader) -> dict:
    units = r.units_named("unit", 1)
    name = r.name("name", MAX_TEAM_NAME)
    specialty = r.choice("specialty", SKILLS, required=False)
    leader = r.volunteer("leader", units[0] if units else "")
    if units and name and r.first_time("name", ("team", units[0], name)) and r.units.team(units[0], name):
        r.exists("name", TEAM_EXISTS)
    return {"unit_id": units[0] if units else "", "name": name, "specialty": specialty, "leader_volunteer_id": leader}


def _member(r: RowReader) -> dict:
    units = r.units_named("unit", 1)
    name = r.required("team")
    volunteer = r.volunteer("volunteer", units[0] if units else "")
    team = r.units.team(units[0], name) if units and name else None
    if units and name and team is None:
        r.fail("team", f"该单位没有队伍{_quote(name)}（先导入队伍）")
    if team and volunteer and r.first_time("volunteer", ("member", team["_id"], volunteer)) \
            and volunteer in team["member_ids"]:
        r.exists("volunteer", MEMBER_EXISTS)
    return {"team_id": team["_id"] if team else "", "volunteer_id": volunteer}


# the levels a sheet may create (the center exists already), by their names
LEVELS = {name: level for level, name in UNIT_LEVEL_NAMES.items() if level != c.UNIT_LEVEL_CENTER}
UNIT_HINT = ("单位的完整路径（中心/实践所/实践站/小院，用 / 分隔），或路径末尾能唯一确定单位的部分（如 某某站/某某小院，"
             "或只写小院名）；必须在您管辖的范围内")
KINDS = {
    pb.IMPORT_KIND_VOLUNTEERS: Kind(pb.IMPORT_KIND_VOLUNTEERS, "志愿者", (
        Column("姓名", "name", True, f"真实姓名，不超过{MAX_NAME}个字"),
        Column("身份证号", "national_id", True, "18位居民身份证号，最后一位可为X；加密保存，只显示打码后的号码", text=True),
        Column("手机号", "phone", True, "11位大陆手机号；本区每人一个", text=True),
        Column("政治面貌", "political_status", True, "、".join(POLITICAL), choices=tuple(POLITICAL)),
        Column("服务单位", "units", True, f"{UNIT_HINT}；最多{MAX_UNITS}个，用；或、分隔"),
        Column("技能特长", "skills", False, "可多选，用、分隔：" + "、".join(SKILLS)),
        Column("可服务日", "weekdays", False, "可多选，用、分隔：周一、周二……周日"),
        Column("可服务时段", "periods", False, "可多选，用、分隔：" + "、".join(PERIODS)),
    ), (Unique("national_id", Volunteer, "id_index", "national_id"),
        Unique("phone", Volunteer, "phone_index", "volunteer.phone")), _volunteer, "national_id"),
    pb.IMPORT_KIND_RESIDENTS: Kind(pb.IMPORT_KIND_RESIDENTS, "群众", (
        Column("姓名", "name", True, f"真实姓名，不超过{MAX_NAME}个字"),
        Column("手机号", "phone", True, "11位大陆手机号；本区每人一个", text=True),
        Column("所属小院", "courtyard", True, UNIT_HINT.replace("单位", "小院", 1)),
    ), (Unique("phone", Resident, "phone_index", "resident.phone"),), _resident, "phone"),
    pb.IMPORT_KIND_UNITS: Kind(pb.IMPORT_KIND_UNITS, "单位", (
        Column("上级单位", "parent", True, UNIT_HINT.replace("单位", "上级单位", 1) + "；也可以是本表前面各行新建的单位"),
        Column("单位名称", "name", True, f"不超过{MAX_UNIT_NAME}个字；同一上级单位下不重名"),
        Column("级别", "level", True, "、".join(LEVELS) + "：比上级单位低一级", choices=tuple(LEVELS)),
        Column("负责人", "head_name", False, f"负责人姓名，不超过{MAX_NAME}个字"),
        Column("负责人手机号", "head_phone", False, "11位大陆手机号；加密保存，只显示打码后的号码", text=True),
    ), (), _unit, "name", UNIT_EXISTS),
    pb.IMPORT_KIND_TEAMS: Kind(pb.IMPORT_KIND_TEAMS, "队伍", (
        Column("所属单位", "unit", True, UNIT_HINT + "；队伍的级别随单位：中心为总队、所为分队、站为小队、小院为小组"),
        Column("队伍名称", "name", True, f"不超过{MAX_TEAM_NAME}个字；同一单位下不重名"),
        Column("专长", "specialty", False, "、".join(SKILLS) + " 之一", choices=tuple(SKILLS)),
        Column("队长志愿者编号", "leader", True, "队长的志愿者编号（如 ZY00000123）：在服务状态、在该单位范围内服务"),
    ), (), _team, "name", TEAM_EXISTS),
    pb.IMPORT_KIND_TEAM_MEMBERS: Kind(pb.IMPORT_KIND_TEAM_MEMBERS, "队员", (
        Column("所属单位", "unit", True, "队伍所属的单位，" + UNIT_HINT),
        Column("队伍名称", "team", True, "已有的队伍（可先导入队伍）"),
        Column("志愿者编号", "volunteer", True, "队员的志愿者编号（如 ZY00000123）：在服务状态、在该单位范围内服务"),
    ), (), _member, "volunteer", MEMBER_EXISTS),
}
# a row's request field -> the column it came from (the units columns carry ids after reading)
FIELD_COLUMNS = {"service_unit_ids": "units", "courtyard_unit_id": "courtyard"}


@dataclass
class Checked:
    """A file checked row by row: the rows to register, and the rows with errors."""

    kind: Kind
    rows: int
    valid: list[tuple[int, object]]   # (row number, request row)
    marked: list[Marked]
    registered: set[tuple[int, str]]  # (row number, column key) of people registered already

    def issues(self, limit: int = MAX_ISSUES) -> list[pb.ImportIssue]:
        issues = [pb.ImportIssue(row=m.row.number, column=col.header, reason=m.reasons[col.key],
                                 already_registered=(m.row.number, col.key) in self.registered)
                  for m in self.marked for col in self.kind.columns if col.key in m.reasons]
        return issues[:limit]

    @property
    def marked_cells(self) -> int:
        return sum(len(m.reasons) for m in self.marked)

    def workbook(self) -> bytes:
        return error_workbook(f"{self.kind.title}（错误行）", self.kind.columns,
                              self.marked[:MAX_WORKBOOK_ROWS]) if self.marked else b""


def kind_of(v: Validator, kind: int) -> Kind:
    v.enum("kind", kind, pb.ImportKind)
    return KINDS.get(kind)


def file_of(v: Validator, file: pb.ImportFile) -> str:
    return v.text("file.file_name", file.file_name, max_len=MAX_FILE_NAME)


class Onboarding:
    def __init__(self, vault: PiiVault):
        self.vault = vault

    @staticmethod
    def template(principal: Principal, req: pb.GetImportTemplateRequest) -> pb.GetImportTemplateResponse:
        v = Validator()
        kind = kind_of(v, req.kind)
        v.enum("format", req.format, pb.ImportFormat)
        v.check()
        require_role(principal, Role.ROLE_UNIT_ADMIN)
        xlsx = req.format == pb.IMPORT_FORMAT_XLSX
        content = template_xlsx(kind.title, kind.columns) if xlsx else template_csv(kind.columns)
        return pb.GetImportTemplateResponse(file_name=f"{kind.title}导入模板.{'xlsx' if xlsx else 'csv'}",
                                            content=content, headers=[col.header for col in kind.columns])

    def check(self, principal: Principal, kind_value: int, file: pb.ImportFile, *, against_district: bool) -> Checked:
        """Every row of the file checked; `against_district`: also whether its people are registered
        (a dry run says so; an import finds out as it writes, chunk by chunk)."""
        v = Validator()
        kind = kind_of(v, kind_value)
        file_of(v, file)
        v.check()
        require_role(principal, Role.ROLE_UNIT_ADMIN)
        rows = read_rows(file.content, kind.columns)
        if not rows:
            raise InvalidArgument.field("file.content", "holds no rows under the header")
        units = Units(principal)
        read: list[tuple[SheetRow, object, dict[str, str]]] = []
        registered: set[tuple[int, str]] = set()
        for row in rows:
            reader = RowReader(row.number, row.cells, units)
            read.append((row, kind.read(reader), reader.reasons))
            registered |= {(row.number, key) for key in reader.registered}
        registered |= self._duplicates(principal.district_id, kind, read, against_district)
        valid = [(row.number, request) for row, request, reasons in read if not reasons]
        marked = [Marked(row, reasons) for row, _, reasons in read if reasons]
        return Checked(kind, len(rows), valid, marked, registered)

    def _duplicates(self, district: str, kind: Kind, read: Sequence[tuple[SheetRow, object, dict[str, str]]],
                    against_district: bool) -> set[tuple[int, str]]:
        """Marks a person's value seen in an earlier row, and (`against_district`) one the district
        holds already; returns the cells of the latter."""
        registered: set[tuple[int, str]] = set()
        for unique in kind.unique:
            first: dict[str, int] = {}
            blind: dict[str, tuple[int, dict[str, str]]] = {}
            for row, request, reasons in read:
                value = getattr(request, unique.key)
                if unique.key in reasons or not value:
                    continue
                if value in first:
                    reasons[unique.key] = f"与第{first[value]}行重复"
                    continue
                first[value] = row.number
                if against_district:
                    for index in self.vault.blind_indexes(value, district_id=district, field=unique.blind):
                        blind[index] = (row.number, reasons)
            indexes = list(blind)
            for at in range(0, len(indexes), LOOKUP_BATCH):
                for doc in unique.model.collection().find(
                        {"district_id": district, unique.stored: {"$in": indexes[at:at + LOOKUP_BATCH]}},
                        {unique.stored: 1}):
                    number, reasons = blind[doc[unique.stored]]
                    reasons.setdefault(unique.key, REGISTERED)
                    registered.add((number, unique.key))
        return registered
