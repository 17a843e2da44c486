"""Seeds the demo district's volunteer service projects (志愿服务项目库) through ordering's API: the
first station's brand project (一站一特色), reviewed by its institute and linked to the station's
served orders and held activities, so its outcome shows real figures; an approved one beside it;
and projects in the other states — proposed to the center, under review, rejected.

Called by seed_ordering.seed() once the orders and activities exist (projects are ordering's).
"""

from __future__ import annotations

import datetime as dt

from services.common.clock import CHINA
from wenming.common.v1 import common_pb2 as c
from wenming.ordering.v1 import ordering_pb2 as pb
from wenming.ordering.v1 import types_pb2

P = types_pb2.ProjectStatus
S = types_pb2.OrderStatus
SERVED = (S.ORDER_STATUS_HOURS_CONFIRMED, S.ORDER_STATUS_RATED, S.ORDER_STATUS_CLOSED)
TO_BRAND = (P.PROJECT_STATUS_UNDER_REVIEW, P.PROJECT_STATUS_APPROVED, P.PROJECT_STATUS_INCUBATING,
            P.PROJECT_STATUS_BRANDED)
LINKS = 50  # what one LinkProjectWork takes


def seed(ctx, stub, admin, orders: list[pb.Order], activities: list[pb.Activity]) -> None:
    """`admin(unit_id)`: the metadata of that unit's admin."""
    station = ctx.stations[0]
    institute = admin(station.parent_unit_id)

    def propose(unit, name: str, category: int, target_group: str, plan: str, budget: str) -> pb.Project:
        return stub.ProposeProject(pb.ProposeProjectRequest(
            unit_id=unit.unit_id, name=name, category=category, target_group=target_group, plan=plan,
            budget_source=budget), metadata=admin(unit.unit_id), timeout=10).project

    def decide(project: pb.Project, steps, reviewer, comment: str = "同意") -> pb.Project:
        for to in steps:
            project = stub.MoveProject(pb.MoveProjectRequest(project_id=project.project_id, to_status=to,
                                                             comment=comment), metadata=reviewer, timeout=10).project
        return project

    brand = decide(propose(station, "银龄互助·结对帮扶", c.SERVICE_CATEGORY_CARE_FOR_OTHERS, "辖区独居、空巢老人",
                           "志愿者与老人一对一结对，每月两次入户探访，提供理发、代购、数字助老等服务",
                           "镇财政专项经费 + 爱心企业捐赠"), TO_BRAND, institute, "群众口碑好，评为本站特色品牌")
    in_station = station.unit_id
    served = [o.order_id for o in orders if o.status in SERVED and in_station in o.origin_courtyard.path]
    held = [a.activity_id for a in activities if in_station in a.unit.path]
    stub.LinkProjectWork(pb.LinkProjectWorkRequest(project_id=brand.project_id, order_ids=served[:LINKS],
                                                   activity_ids=held[:LINKS]),
                         metadata=admin(in_station), timeout=10)
    stub.ReportProjectProgress(pb.ReportProjectProgressRequest(
        project_id=brand.project_id, period=f"{dt.datetime.now(CHINA):%Y-%m}",
        summary="本月结对老人 36 户，入户探访 72 次，开展数字助老课堂 2 场"), metadata=admin(in_station), timeout=10)
    decide(propose(station, "小院讲堂·身边人讲身边事", c.SERVICE_CATEGORY_LECTURE_ROLE_MODELS, "各小院群众",
                   "每月在小院请道德模范、身边好人讲自己的故事", "村集体经费"),
           TO_BRAND[:2], institute)
    made = 2
    if len(ctx.stations) > 1:
        other = ctx.stations[1]
        other_institute = admin(other.parent_unit_id)
        decide(propose(other, "护河志愿行", c.SERVICE_CATEGORY_CARE_FOR_NATURE, "沿河村民",
                       "每周巡河一次，劝导乱倒垃圾，春秋两季组织清理河道", "河长制专项经费"),
               TO_BRAND[:1], other_institute)
        decide(propose(other, "广场舞大赛", c.SERVICE_CATEGORY_CARE_FOR_SOCIETY, "中老年群众",
                       "组织一次广场舞比赛", "自筹"),
               (P.PROJECT_STATUS_UNDER_REVIEW, P.PROJECT_STATUS_REJECTED), other_institute,
               "属于文体比赛，不是志愿服务项目，建议并入文化活动安排")
        made += 2
    first_institute = next(u for u in ctx.institutes if u.unit_id == station.parent_unit_id)
    propose(first_institute, "乡村振兴·农技服务队", c.SERVICE_CATEGORY_LECTURE_SCIENCE, "种植、养殖户",
            "组织农技志愿者春耕、秋收前下村指导", "农业农村局项目资金")
    print(f"  projects: {made + 1}, the brand project of {station.name} linked to {len(served[:LINKS])} served "
          f"orders and {len(held[:LINKS])} activities", flush=True)
