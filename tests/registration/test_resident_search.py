"""问需台: staff find a resident of their subtree by a name's beginning, the full mobile number or
its last four digits; only masked phones come back; another subtree is refused."""

from __future__ import annotations

import grpc
import pytest

from tests.support.grpc_helpers import bearer, expect_error
from wenming.common.v1 import common_pb2 as c
from wenming.registration.v1 import registration_pb2 as reg


@pytest.fixture(scope="module")
def town(module_district):
    """Residents in three courtyards: two under station 0, one under station 1."""
    tree = module_district.small_tree()
    people = {}
    for name, yard, phone in [("张三丰", 0, "13912340001"), ("张小凡", 1, "13812345678"), ("李四", 0, "13712349999"),
                              ("张无忌", 2, "15012345678"), ("王五", 1, "18605675678")]:
        resident, token = module_district.resident(tree.courtyards[yard].unit_id, phone=phone, name=name)
        people[name] = (resident, token, phone)
    return module_district, tree, people


def _search(district, token: str, query: str, unit_id: str = "", page_size: int = 0, page_token: str = ""):
    return district.stub.SearchResidents(reg.SearchResidentsRequest(
        unit_id=unit_id, query=query, page=c.PageRequest(page_size=page_size, page_token=page_token)),
        metadata=bearer(token), timeout=10)


def _names(reply) -> list[str]:
    return sorted(r.name for r in reply.residents)


def test_a_station_finds_its_residents_by_name_phone_or_last_four_digits(town):
    district, tree, people = town
    station = tree.admins[tree.stations[0].unit_id]
    assert _names(_search(district, station, "张")) == ["张三丰", "张小凡"]  # not 张无忌 of station 1
    assert _names(_search(district, station, "张三")) == ["张三丰"]
    assert _names(_search(district, station, "三")) == []  # the beginning of a name, not any part
    found = _search(district, station, "138 1234 5678").residents
    assert [r.name for r in found] == ["张小凡"] and found[0].courtyard.unit_id == tree.courtyards[1].unit_id
    assert found[0].phone_masked == "138****5678"
    assert _names(_search(district, station, "5678")) == ["张小凡", "王五"]  # 150…5678 is station 1's
    assert _names(_search(district, station, "15012345678")) == []        # in station 1: not found here
    # the center sees the whole district; a courtyard only itself (its unit by default)
    assert _names(_search(district, district.center_admin_token, "5678")) == sorted(["张无忌", "张小凡", "王五"])
    assert _names(_search(district, tree.admins[tree.courtyards[0].unit_id], "张")) == ["张三丰"]
    # only masked phones ever leave
    every = _search(district, district.center_admin_token, "张").SerializeToString()
    for _, _, phone in people.values():
        assert phone.encode() not in every


def test_results_come_in_keyset_pages(town):
    district, tree, _ = town
    center = district.center_admin_token
    seen, token = [], ""
    while True:
        reply = _search(district, center, "张", page_size=1, page_token=token)
        seen += [r.resident_id for r in reply.residents]
        token = reply.page.next_page_token
        if not token:
            break
    assert len(seen) == len(set(seen)) == 3


@pytest.mark.parametrize("query, why", [
    ("", "must not be empty"),
    ("张" * 21, "at most 20"),
    ("12345", "full 11-digit"),
    ("1381234567", "full 11-digit"),
    ("12812345678", "full 11-digit"),
])
def test_a_bad_query_is_refused_naming_the_field(town, query, why):
    district, tree, _ = town
    with expect_error(grpc.StatusCode.INVALID_ARGUMENT, field="query", contains=why):
        _search(district, tree.admins[tree.stations[0].unit_id], query)


def test_another_subtree_and_people_who_are_not_staff_are_refused(town):
    district, tree, people = town
    station0 = tree.admins[tree.stations[0].unit_id]
    with expect_error(grpc.StatusCode.INVALID_ARGUMENT, field="page.page_size"):
        _search(district, station0, "张", page_size=101)
    with expect_error(grpc.StatusCode.PERMISSION_DENIED):
        _search(district, station0, "张", unit_id=tree.stations[1].unit_id)
    with expect_error(grpc.StatusCode.PERMISSION_DENIED):
        _search(district, tree.admins[tree.courtyards[0].unit_id], "张", unit_id=tree.courtyards[1].unit_id)
    with expect_error(grpc.StatusCode.PERMISSION_DENIED):
        _search(district, people["张三丰"][1], "张")  # a resident
    volunteer_phone = "13600001111"
    district.volunteer(tree.courtyards[0].unit_id, phone=volunteer_phone)
    with expect_error(grpc.StatusCode.PERMISSION_DENIED):
        _search(district, district.volunteer_token(volunteer_phone), "张")
    with expect_error(grpc.StatusCode.NOT_FOUND):
        _search(district, station0, "张", unit_id="unit_nope")
    with expect_error(grpc.StatusCode.UNAUTHENTICATED):
        district.stub.SearchResidents(reg.SearchResidentsRequest(query="张"), timeout=5)
