"""善行义举榜 in memory: what a roll may say (table-driven, each refusal naming its field), who
compiles one (role × unit level × subtree), who may be named and how (masked volunteers of the
unit subtree, masked residents, a commendation only of that volunteer and not revoked), the body
the entries make, and a retry's sameness."""

from __future__ import annotations

import pytest

from services.common.auth import Principal, Role
from services.common.errors import FailedPrecondition, InvalidArgument, PermissionDenied
from services.common.validation import Validator
from services.media import honor_roll_rules as rules
from wenming.common.v1 import common_pb2 as c
from wenming.media.v1 import media_pb2 as pb

DEED = "连续三年每周为独居老人送餐，风雨无阻。"
STATION = ("unt_c", "unt_i", "unt_s1")
VOLUNTEERS = {"vol_1": {"name": "王建华", "units": [{"path": ["unt_c", "unt_i", "unt_s1", "unt_y1"]}]},
              "vol_far": {"name": "李四", "units": [{"path": ["unt_c", "unt_i", "unt_s2"]}]}}
COMMENDATIONS = {"comm_1": {"volunteer_id": "vol_1", "year": 2026, "level": 1, "title": "优秀志愿者", "revoked": False},
                 "comm_other": {"volunteer_id": "vol_far", "year": 2026, "level": 2, "title": "最美志愿者",
                                "revoked": False},
                 "comm_revoked": {"volunteer_id": "vol_1", "year": 2025, "level": 1, "title": "优秀志愿者",
                                  "revoked": True}}


def entry(**fields) -> pb.HonorRollEntry:
    return pb.HonorRollEntry(**{"deed": DEED, **fields})


def validate(period="2026年第四季度", title="", summary="", entries=None):
    v = Validator()
    asked = rules.validate(v, period, title, summary, entries if entries is not None else [entry(volunteer_id="vol_1")])
    return v.violations, asked


def resolve(*entries: pb.HonorRollEntry, unit_id: str = "unt_s1") -> list[dict]:
    violations, asked = validate(entries=list(entries))
    assert violations == []
    return rules.resolve_entries(asked, unit_id, VOLUNTEERS.get, COMMENDATIONS.get)


def test_a_well_formed_roll_passes_and_masks_a_resident_at_once():
    violations, asked = validate(period=" 2026年第四季度 ", entries=[
        entry(volunteer_id="vol_1", commendation_id="comm_1"), entry(resident_name="欧阳娜娜", deed=" 拾金不昧，归还失主。 ")])
    assert violations == []
    assert asked.period == "2026年第四季度"
    assert asked.entries == (rules.EntryInput("vol_1", "", DEED, "comm_1"),
                             rules.EntryInput("", "欧**娜", "拾金不昧，归还失主。", ""))


@pytest.mark.parametrize(("changes", "field"), [
    (dict(period=""), "period"),
    (dict(period="年"), "period"),
    (dict(period="年" * 31), "period"),
    (dict(title="榜" * 101), "title"),
    (dict(summary="好" * 301), "summary"),
    (dict(entries=[]), "entries"),
    (dict(entries=[entry(resident_name="张三")] * 51), "entries"),
    (dict(entries=[entry()]), "entries[0].volunteer_id"),                                  # nobody named
    (dict(entries=[entry(volunteer_id="vol_1", resident_name="张三")]), "entries[0].volunteer_id"),  # both
    (dict(entries=[entry(volunteer_id="vol_1"), entry(volunteer_id="vol_1")]), "entries[1].volunteer_id"),
    (dict(entries=[entry(volunteer_id="not an id!")]), "entries[0].volunteer_id"),
    (dict(entries=[entry(resident_name="张" * 21)]), "entries[0].resident_name"),
    (dict(entries=[entry(resident_name="张三", deed="好人")]), "entries[0].deed"),          # under 5
    (dict(entries=[entry(resident_name="张三", deed="好" * 201)]), "entries[0].deed"),
    (dict(entries=[entry(resident_name="张三", deed="第一句。\n第二句。")]), "entries[0].deed"),
    (dict(entries=[entry(resident_name="张三", commendation_id="comm_1")]), "entries[0].commendation_id"),
])
def test_each_refusal_names_its_field(changes, field):
    violations, _ = validate(**changes)
    assert field in [f for f, _ in violations], violations


@pytest.mark.parametrize(("role", "admin_of", "unit_level", "allowed"), [
    (Role.ROLE_UNIT_ADMIN, STATION, c.UNIT_LEVEL_STATION, True),
    (Role.ROLE_UNIT_ADMIN, ("unt_c", "unt_i"), c.UNIT_LEVEL_STATION, True),           # the institute above
    (Role.ROLE_UNIT_ADMIN, ("unt_c",), c.UNIT_LEVEL_CENTER, True),
    (Role.ROLE_UNIT_ADMIN, ("unt_c", "unt_i", "unt_s2"), c.UNIT_LEVEL_STATION, False),  # another station
    (Role.ROLE_UNIT_ADMIN, STATION + ("unt_y1",), c.UNIT_LEVEL_STATION, False),       # a courtyard below
    (Role.ROLE_UNIT_ADMIN, STATION, c.UNIT_LEVEL_COURTYARD, False),                   # courtyards do not compile
    (Role.ROLE_VOLUNTEER, STATION, c.UNIT_LEVEL_STATION, False),
    (Role.ROLE_RESIDENT, STATION, c.UNIT_LEVEL_STATION, False),
])
def test_who_compiles_a_roll(role, admin_of, unit_level, allowed):
    principal = Principal(subject="p", district_id="dst_1", role=role, unit_id=admin_of[-1], unit_path=admin_of)
    path = STATION + (("unt_y1",) if unit_level == c.UNIT_LEVEL_COURTYARD else ())
    if allowed:
        rules.require_compiler(principal, unit_level, path)
    else:
        with pytest.raises(PermissionDenied):
            rules.require_compiler(principal, unit_level, path)


def test_named_people_are_masked_and_a_commendation_reads_as_its_title():
    resolved = resolve(entry(volunteer_id="vol_1", commendation_id="comm_1"), entry(resident_name="张三"))
    assert resolved == [
        {"volunteer_id": "vol_1", "shown_name": "王*华", "deed": DEED, "commendation_id": "comm_1",
         "commendation_title": "2026年区县级优秀志愿者"},
        {"volunteer_id": "", "shown_name": "张*", "deed": DEED, "commendation_id": "", "commendation_title": ""}]
    assert "王建华" not in rules.body_of(resolved) and "张三" not in rules.body_of(resolved)
    assert rules.body_of(resolved).splitlines() == [f"1. 王*华（志愿者）：{DEED}（2026年区县级优秀志愿者）", f"2. 张*：{DEED}"]


def test_masking_a_masked_name_changes_nothing_so_an_edit_can_send_it_back():
    _, asked = validate(entries=[entry(resident_name="欧**娜")])
    assert asked.entries[0].shown_name == "欧**娜"


@pytest.mark.parametrize(("volunteer_id", "commendation_id", "error"), [
    ("vol_far", "", InvalidArgument),        # serves under another station
    ("vol_none", "", InvalidArgument),       # unknown here
    ("vol_1", "comm_other", InvalidArgument),  # someone else's commendation
    ("vol_1", "comm_revoked", FailedPrecondition),
    ("vol_1", "comm_unknown", FailedPrecondition),  # not (yet) known from points' events
])
def test_who_may_be_named(volunteer_id, commendation_id, error):
    with pytest.raises(error):
        resolve(entry(volunteer_id=volunteer_id, commendation_id=commendation_id))


def test_the_institute_may_name_volunteers_of_its_stations():
    assert resolve(entry(volunteer_id="vol_far"), unit_id="unt_i")[0]["shown_name"] == "李*"


def test_a_retry_is_the_same_request_only_when_it_asks_the_same():
    _, asked = validate()
    _, other_period = validate(period="2026年第三季度")
    assert rules.request_digest("unt_s1", asked) == rules.request_digest("unt_s1", validate()[1])
    assert rules.request_digest("unt_s1", asked) != rules.request_digest("unt_s2", asked)
    assert rules.request_digest("unt_s1", asked) != rules.request_digest("unt_s1", other_period)


def test_a_volunteers_honours_on_a_roll():
    resolved = resolve(entry(volunteer_id="vol_1"), entry(resident_name="张三"))
    assert rules.honors_of("vol_1", resolved) == [resolved[0]]
    assert rules.honors_of("vol_far", resolved) == []


def test_the_default_title_names_the_unit_then_the_period():
    assert rules.default_title("幸福实践站", "2026年第四季度") == "幸福实践站善行义举榜（2026年第四季度）"
