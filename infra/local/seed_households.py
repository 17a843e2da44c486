"""Seeds the demo courtyard's households (户) and their 十星文明户 ratings through registration's API:
the demo resident's household earned all ten stars this year (十星文明户), a neighbour's eight, a
third six this year after ten last year, so the admin's page and the resident's own view have
something to show. The courtyard's admin registers the extra members on their behalf (问需台).

Called by seed_demo.seed() after the venues (households are registration's too).
"""

from __future__ import annotations

import datetime as dt

from services.common.clock import CHINA
from wenming.registration.v1 import registration_pb2 as reg

STARS = ("爱国守法星", "诚信友善星", "勤劳致富星", "孝老爱亲星", "移风易俗星",
         "清洁卫生星", "学习进取星", "邻里互助星", "热心公益星", "平安和谐星")
# (extra members' names, stars earned this year, stars earned last year, address)
HOUSEHOLDS = [
    (["张桂兰"], 10, 9, "幸福路12号"),
    (["李秀英", "李建国"], 8, 0, "幸福路18号"),
    (["王德福", "赵玉珍"], 6, 10, "和谐巷3号"),
]
NOTES = {"孝老爱亲星": "照顾年迈父母，邻里称道", "清洁卫生星": "庭院整洁，垃圾分类到位"}


def _decisions(earned: int) -> list[reg.StarDecision]:
    return [reg.StarDecision(star=star, awarded=i < earned, note=NOTES.get(star, "") if i < earned else "")
            for i, star in enumerate(STARS)]


def seed(ctx) -> None:
    stub = ctx.registration.stub
    yard = ctx.courtyards[0]
    admin = ctx.login_admin(yard.unit_id)
    this_year = dt.datetime.now(CHINA).year
    own = [resident.resident_id for resident, _ in ctx.residents if resident.courtyard.unit_id == yard.unit_id]
    # the extra members, registered by the courtyard's admin (no password: they need not log in)
    rows = [reg.ResidentImportRow(name=name, phone=f"1370932{n}{k:03d}", courtyard_unit_id=yard.unit_id)
            for n, (extra, *_) in enumerate(HOUSEHOLDS) for k, name in enumerate(extra)]
    imported = iter(row.id for row in stub.ImportResidents(reg.ImportResidentsRequest(rows=rows), metadata=admin,
                                                           timeout=30).rows)
    made = rated = 0
    for n, (extra, earned, last_year, address) in enumerate(HOUSEHOLDS):
        members = own[n:n + 1] + [next(imported) for _ in extra]
        household = stub.CreateHousehold(reg.CreateHouseholdRequest(
            unit_id=yard.unit_id, name=f"{extra[0][0]}家", address=address,
            idempotency_key=f"seed-household-{n}"), metadata=admin, timeout=10).household
        made += 1
        for resident_id in members:
            stub.AddHouseholdMember(reg.AddHouseholdMemberRequest(household_id=household.household_id,
                                                                  resident_id=resident_id), metadata=admin, timeout=10)
        for year, stars in ((this_year, earned), (this_year - 1, last_year)):
            if stars:
                stub.RateHousehold(reg.RateHouseholdRequest(household_id=household.household_id, year=year,
                                                            decisions=_decisions(stars)), metadata=admin, timeout=10)
                rated += 1
    print(f"  households: {made} in {yard.name}, {rated} yearly ratings", flush=True)
