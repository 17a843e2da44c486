"""表彰/嘉许 in memory: what a commendation may say (every field, table-driven), who records and
revokes one, the revoke transition (once, never deleting), a retry's sameness, and what a
certificate shows."""

from __future__ import annotations

import datetime as dt

import pytest

from services.common.auth import Principal, Role
from services.common.errors import FailedPrecondition, PermissionDenied
from services.common.validation import Validator
from services.points import commendation_rules as rules
from wenming.points.v1 import points_pb2 as pb

L = pb.CommendationLevel
TODAY = dt.date(2026, 12, 7)
NOW = dt.datetime(2026, 12, 7, 8, 0, tzinfo=dt.UTC)
GOOD = dict(volunteer_id="vol_1", year=2025, level=L.COMMENDATION_LEVEL_DISTRICT, title="优秀志愿者", issuer="区文明办",
            awarded_on="2025-12-05", idempotency_key="cmd-1")
STATION = ("unt_c", "unt_i", "unt_s1")


def _validate(**changes) -> tuple[list[tuple[str, str]], rules.CommendationInput, str]:
    v = Validator()
    asked, key = rules.validate(v, pb.RecordCommendationRequest(**{**GOOD, **changes}), TODAY)
    return v.violations, asked, key


def test_a_well_formed_commendation_passes_trimmed():
    violations, asked, key = _validate(title="  优秀志愿者 ", issuer=" 区文明办")
    assert violations == []
    assert asked == rules.CommendationInput("vol_1", 2025, L.COMMENDATION_LEVEL_DISTRICT, "优秀志愿者", "区文明办",
                                            "2025-12-05")
    assert key == "cmd-1"


@pytest.mark.parametrize(("changes", "field"), [
    (dict(volunteer_id=""), "volunteer_id"),
    (dict(volunteer_id="not an id!"), "volunteer_id"),
    (dict(year=1948, awarded_on="1948-10-01"), "year"),
    (dict(year=0), "year"),
    (dict(year=2027, awarded_on="2027-01-01"), "year"),       # next year
    (dict(level=L.COMMENDATION_LEVEL_UNSPECIFIED), "level"),
    (dict(level=9), "level"),                                 # unknown
    (dict(title=""), "title"),
    (dict(title="优"), "title"),                               # under 2 characters
    (dict(title="优" * 31), "title"),                          # over 30
    (dict(title="优秀\n志愿者"), "title"),
    (dict(issuer=""), "issuer"),
    (dict(issuer="区" * 31), "issuer"),
    (dict(awarded_on=""), "awarded_on"),
    (dict(awarded_on="2025/12/05"), "awarded_on"),
    (dict(awarded_on="2025-02-30"), "awarded_on"),            # no such day
    (dict(awarded_on="2024-12-31"), "awarded_on"),            # outside the year
    (dict(year=2026, awarded_on="2026-12-08"), "awarded_on"),  # tomorrow
    (dict(idempotency_key=""), "idempotency_key"),
    (dict(idempotency_key="带空格 的键"), "idempotency_key"),
])
def test_each_bad_field_is_named(changes, field):
    violations, _, _ = _validate(**changes)
    assert [f for f, _ in violations] == [field], violations


@pytest.mark.parametrize(("year", "awarded_on"), [
    (1949, "1949-10-01"), (2026, "2026-12-07"), (2026, "2026-01-01"), (2000, "2000-02-29")])
def test_the_edges_of_the_years_and_days_pass(year, awarded_on):
    assert _validate(year=year, awarded_on=awarded_on)[0] == []


def test_every_bad_field_is_reported_at_once():
    violations, _, _ = _validate(volunteer_id="", year=3000, level=0, title="", issuer="", awarded_on="x",
                                 idempotency_key="")
    assert {f for f, _ in violations} == {"volunteer_id", "year", "level", "title", "issuer", "awarded_on",
                                          "idempotency_key"}


def test_every_level_has_its_chinese_label():
    assert [rules.LEVEL_LABEL[level] for level in (L.COMMENDATION_LEVEL_DISTRICT, L.COMMENDATION_LEVEL_CITY,
                                                   L.COMMENDATION_LEVEL_PROVINCE, L.COMMENDATION_LEVEL_NATIONAL)] \
        == ["区县级", "市级", "省级", "国家级"]
    assert set(rules.LEVEL_LABEL) == set(L.values()) - {L.COMMENDATION_LEVEL_UNSPECIFIED}


@pytest.mark.parametrize(("commendation_id", "reason", "fields"), [
    ("comm_1", "评选材料不实", []),
    ("", "评选材料不实", ["commendation_id"]),
    ("comm_1", "", ["reason"]),
    ("comm_1", "撤", ["reason"]),
    ("comm_1", "撤" * 201, ["reason"]),
])
def test_a_revocation_needs_an_id_and_a_reason(commendation_id, reason, fields):
    v = Validator()
    rules.validate_revocation(v, commendation_id, reason)
    assert [f for f, _ in v.violations] == fields


def _principal(role: int, unit_path: tuple[str, ...] = STATION, subject: str = "acc_1") -> Principal:
    return Principal(subject=subject, district_id="dst_1", role=role, unit_id=unit_path[-1] if unit_path else "",
                     unit_path=unit_path)


ADMIN = Role.ROLE_UNIT_ADMIN
VOLUNTEER_PATHS = [("unt_c", "unt_i", "unt_s1", "unt_y1")]


@pytest.mark.parametrize(("principal", "allowed"), [
    (_principal(ADMIN), True),                                        # the volunteer's station
    (_principal(ADMIN, ("unt_c", "unt_i")), True),                    # above it
    (_principal(ADMIN, ("unt_c",)), True),                            # the center
    (_principal(ADMIN, ("unt_c", "unt_i", "unt_s1", "unt_y1")), True),  # the courtyard itself
    (_principal(ADMIN, ("unt_c", "unt_i", "unt_s2")), False),         # another station
    (_principal(Role.ROLE_VOLUNTEER, (), subject="vol_1"), False),    # the volunteer themself
    (_principal(Role.ROLE_RESIDENT, ()), False),
    (_principal(Role.ROLE_INSPECTOR, ()), False),
])
def test_who_records(principal, allowed):
    if allowed:
        rules.require_recorder(principal, VOLUNTEER_PATHS)
    else:
        with pytest.raises(PermissionDenied):
            rules.require_recorder(principal, VOLUNTEER_PATHS)


def _stored(**changes) -> dict:
    return {"_id": "comm_1", "volunteer_id": "vol_1", "year": 2025, "level": L.COMMENDATION_LEVEL_DISTRICT,
            "title": "优秀志愿者", "issuer": "区文明办", "awarded_on": "2025-12-05", "unit_path": list(STATION),
            "revoked": False, "revoke_reason": "", **changes}


@pytest.mark.parametrize(("principal", "stored", "outcome"), [
    (_principal(ADMIN), _stored(), None),                                         # the recording station
    (_principal(ADMIN, ("unt_c", "unt_i")), _stored(), None),                     # above it
    (_principal(ADMIN, ("unt_c", "unt_i", "unt_s2")), _stored(), PermissionDenied),  # another station
    (_principal(ADMIN, ("unt_c", "unt_i", "unt_s1", "unt_y1")), _stored(), PermissionDenied),  # below the recorder
    (_principal(Role.ROLE_VOLUNTEER, (), subject="vol_1"), _stored(), PermissionDenied),
    (_principal(ADMIN), _stored(revoked=True, revoke_reason="重复登记"), FailedPrecondition),  # only once
])
def test_the_revoke_transition(principal, stored, outcome):
    if outcome is None:
        assert rules.revoke(stored, principal, "评选材料不实", NOW) == {
            "revoked": True, "revoke_reason": "评选材料不实", "revoked_by": principal.subject, "revoked_at": NOW}
    else:
        with pytest.raises(outcome):
            rules.revoke(stored, principal, "评选材料不实", NOW)


def test_a_retry_is_the_same_request_only_when_it_asks_for_the_same_record():
    _, asked, _ = _validate()
    assert rules.same_request(_stored(), asked)
    for changed in (dict(title="优秀志愿服务组织者"), dict(year=2024), dict(volunteer_id="vol_2"),
                    dict(level=L.COMMENDATION_LEVEL_CITY), dict(issuer="市文明办"), dict(awarded_on="2025-12-06")):
        assert not rules.same_request(_stored(**changed), asked), changed


def test_newest_first_and_a_certificate_shows_only_those_not_revoked():
    older = _stored(_id="comm_1", year=2023, awarded_on="2023-12-01", title="优秀志愿者")
    revoked = _stored(_id="comm_2", year=2024, awarded_on="2024-12-01", title="最美志愿者", revoked=True)
    newer = _stored(_id="comm_3", year=2025, awarded_on="2025-03-05", title="学雷锋志愿服务先进个人",
                    level=L.COMMENDATION_LEVEL_CITY, issuer="市文明办")
    same_day = _stored(_id="comm_4", year=2025, awarded_on="2025-03-05", title="优秀志愿者")
    assert [c["_id"] for c in rules.newest_first([older, revoked, newer, same_day])] == \
        ["comm_4", "comm_3", "comm_2", "comm_1"]
    assert rules.certificate_lines([older, revoked, newer, same_day]) == [
        {"year": 2025, "level": L.COMMENDATION_LEVEL_DISTRICT, "level_label": "区县级", "title": "优秀志愿者",
         "issuer": "区文明办"},
        {"year": 2025, "level": L.COMMENDATION_LEVEL_CITY, "level_label": "市级", "title": "学雷锋志愿服务先进个人",
         "issuer": "市文明办"},
        {"year": 2023, "level": L.COMMENDATION_LEVEL_DISTRICT, "level_label": "区县级", "title": "优秀志愿者",
         "issuer": "区文明办"},
    ]
    assert rules.certificate_lines([revoked]) == []
