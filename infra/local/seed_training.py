"""Seeds training for the demo district through its public API: the district's rotation policy,
a Chinese course catalog (应急救护 grants first_aid, 法律服务基础 legal_basic …), the trainer pool,
upcoming sessions at every level with enrollments (some full, with a waitlist), and historical
completions (台账补录) so the rotation report has real numbers.

Called by seed_demo.seed_other_services(ctx) right after registration was seeded; training learns
units and volunteers from registration's events, so the first calls wait for them to arrive.
"""

from __future__ import annotations

import datetime as dt
import time

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from wenming.common.v1 import common_pb2 as c
from wenming.registration.v1 import registration_pb2 as reg
from wenming.training.v1 import training_pb2 as pb
from wenming.training.v1 import training_pb2_grpc
from wenming.training.v1 import types_pb2 as ty


def _q(text: str, options: list[str], *right: int) -> pb.QuizQuestion:
    return pb.QuizQuestion(text=text, options=options, correct_options=list(right))


def _cert(code: str, name: str, months: int) -> ty.CertificationSpec:
    return ty.CertificationSpec(code=code, name=name, valid_months=months)


CATALOG = [
    pb.CourseContent(
        title="志愿服务通识", description="新时代文明实践志愿服务的意义、礼仪、安全与记录规范", category=ty.COURSE_CATEGORY_BASICS,
        level=ty.COURSE_LEVEL_GENERAL, minutes=120, required_for_tiers=[ty.VOLUNTEER_TIER_ALL]),
    pb.CourseContent(
        title="理论宣讲入门", description="用群众语言讲好党的创新理论：选题、提纲、互动与小院讲堂实操",
        category=ty.COURSE_CATEGORY_THEORY, level=ty.COURSE_LEVEL_GENERAL, minutes=180,
        required_for_skills=[c.SKILL_THEORY_LECTURE, c.SKILL_POLICY_EXPLAIN],
        quiz=pb.Quiz(pass_mark=60, questions=[
            _q("面向群众的理论宣讲首先应做到？", ["照本宣科", "通俗易懂、贴近生活", "越长越好"], 1),
            _q("小院讲堂一般多久开展一次？", ["每月至少一次", "每年一次", "随意"], 0),
            _q("宣讲结束后应做哪些工作？", ["收集群众意见", "记录活动台账", "什么都不做"], 0, 1),
        ])),
    pb.CourseContent(
        title="应急救护", description="心肺复苏、AED使用、创伤止血包扎、骨折固定与搬运（红十字救护员标准）",
        category=ty.COURSE_CATEGORY_EMERGENCY, level=ty.COURSE_LEVEL_SPECIALIST, minutes=480,
        required_for_skills=[c.SKILL_EMERGENCY_RESCUE, c.SKILL_MEDICAL_HEALTH],
        quiz=pb.Quiz(pass_mark=80, max_attempts=3, questions=[
            _q("成人胸外按压的频率是每分钟多少次？", ["60-80次", "100-120次", "140-160次"], 1),
            _q("成人胸外按压深度为？", ["2-3厘米", "5-6厘米", "8-10厘米"], 1),
            _q("以下哪些属于常用止血方法？", ["指压止血", "加压包扎止血", "热敷止血"], 0, 1),
            _q("发现有人倒地，第一步应当？", ["立即搬动", "确认现场环境安全", "喂水"], 1),
            _q("AED到达后应当？", ["等医生来再用", "尽快开机按语音提示操作", "只用于儿童"], 1),
        ]),
        certification=_cert("first_aid", "应急救护证书", 36)),
    pb.CourseContent(
        title="法律服务基础", description="民法典常用条款、人民调解流程、法律援助转介与志愿者服务边界",
        category=ty.COURSE_CATEGORY_PROFESSIONAL, level=ty.COURSE_LEVEL_SPECIALIST, minutes=240,
        required_for_skills=[c.SKILL_LEGAL_AID],
        quiz=pb.Quiz(pass_mark=60, questions=[
            _q("群众咨询复杂诉讼问题时，志愿者应当？", ["代为起诉", "转介法律援助中心或律师", "不予理会"], 1),
            _q("人民调解达成的调解协议？", ["具有法律约束力", "没有任何效力", "只能口头达成"], 0),
            _q("普法宣传应坚持哪些原则？", ["准确", "通俗", "夸大其词"], 0, 1),
        ]),
        certification=_cert("legal_basic", "法律服务志愿者资格", 24)),
    pb.CourseContent(
        title="心理疏导技能", description="倾听与共情、情绪识别、危机信号与转介，面向留守老人与青少年",
        category=ty.COURSE_CATEGORY_PROFESSIONAL, level=ty.COURSE_LEVEL_SPECIALIST, minutes=360,
        required_for_skills=[c.SKILL_PSYCH_COUNSEL],
        quiz=pb.Quiz(pass_mark=60, questions=[
            _q("有效倾听的关键是？", ["打断并给建议", "专注、不评判、适时回应", "讲自己的经历"], 1),
            _q("发现服务对象有自伤念头时应？", ["保密不说", "立即按流程转介专业机构", "劝其想开点"], 1),
        ]),
        certification=_cert("psych_support", "心理疏导志愿者证书", 24)),
    pb.CourseContent(
        title="垃圾分类指导", description="四分类标准、入户宣传与定时定点督导", category=ty.COURSE_CATEGORY_ENVIRONMENT,
        level=ty.COURSE_LEVEL_GENERAL, minutes=90, required_for_skills=[c.SKILL_ENVIRONMENT]),
    pb.CourseContent(
        title="助老服务规范", description="上门服务礼仪、安全防护、失能老人照护要点与隐私保护",
        category=ty.COURSE_CATEGORY_CARE, level=ty.COURSE_LEVEL_GENERAL, minutes=120,
        required_for_skills=[c.SKILL_ELDERLY_CARE, c.SKILL_DIGITAL_HELP],
        quiz=pb.Quiz(pass_mark=50, questions=[
            _q("上门服务前应当？", ["提前预约并说明服务内容", "直接敲门", "不用联系"], 0),
            _q("老人的家庭信息应当？", ["发到群里", "严格保密", "告诉邻居"], 1),
        ])),
    pb.CourseContent(
        title="骨干志愿者能力提升", description="队伍建设、项目设计、活动策划与风险管理（三年提升计划）",
        category=ty.COURSE_CATEGORY_MANAGEMENT, level=ty.COURSE_LEVEL_CORE, minutes=480,
        required_for_tiers=[ty.VOLUNTEER_TIER_CORE],
        quiz=pb.Quiz(pass_mark=60, questions=[
            _q("志愿服务项目设计首先要？", ["调研群众需求", "先拍照宣传", "确定预算上限"], 0),
            _q("活动风险管理包括？", ["购买志愿者保险", "制定安全预案", "不需要考虑"], 0, 1),
        ])),
]

TRAINERS = [  # name, title, specialties, bio, served at ("center" or institute index)
    ("王建华", "凉州区人民医院主治医师", [c.SKILL_MEDICAL_HEALTH, c.SKILL_EMERGENCY_RESCUE], "红十字会救护师资，从事急诊工作十五年",
     "center"),
    ("刘文静", "执业律师", [c.SKILL_LEGAL_AID], "凉州区公共法律服务中心驻点律师", "center"),
    ("陈思远", "国家二级心理咨询师", [c.SKILL_PSYCH_COUNSEL], "长期服务留守儿童与空巢老人心理关爱项目", "center"),
    ("马志强", "区委党校讲师", [c.SKILL_THEORY_LECTURE, c.SKILL_POLICY_EXPLAIN], "百姓宣讲团成员，擅长用方言讲政策",
     "center"),
    ("杨丽娟", "环卫所技术员", [c.SKILL_ENVIRONMENT], "垃圾分类示范村创建指导员", 0),
]

SESSIONS = [  # course title, unit ("center" / ("institute", i) / ("station", i)), trainer, days ahead, capacity, enroll
    ("应急救护", "center", "王建华", 5, 40, 24),
    ("骨干志愿者能力提升", "center", "马志强", 12, 30, 14),
    ("法律服务基础", ("institute", 0), "刘文静", 7, 30, 12),
    ("心理疏导技能", ("institute", 2), "陈思远", 9, 20, 10),
    ("理论宣讲入门", ("station", 0), "马志强", 3, 20, 8),
    ("助老服务规范", ("station", 3), "王建华", 4, 6, 9),  # full: three on the waitlist
    ("垃圾分类指导", ("station", 1), "杨丽娟", 6, 25, 8),
]


def _ts(moment: dt.datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(moment)
    return stamp


def _eventually(call, timeout: float = 60.0):
    """Registration's events reach training a moment after the seed created the units and volunteers."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return call()
        except grpc.RpcError as error:
            if error.code() != grpc.StatusCode.NOT_FOUND or time.monotonic() > deadline:
                raise
            time.sleep(0.3)


def seed(ctx) -> None:
    channel = grpc.insecure_channel(ctx.targets["training"])
    stub = training_pb2_grpc.TrainingServiceStub(channel)
    center = ctx.center_admin
    _eventually(lambda: stub.ListTrainers(pb.ListTrainersRequest(unit_id=ctx.courtyards[-1].unit_id),
                                          metadata=center, timeout=10))
    today = dt.datetime.now(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    stub.SetRotationPolicy(pb.SetRotationPolicyRequest(general_cycle_years=5, core_cycle_years=3, notice_days=90,
                                                       effective_from="2021-01-01"), metadata=center, timeout=10)
    courses = {content.title: stub.CreateCourse(pb.CreateCourseRequest(content=content), metadata=center,
                                                timeout=10).course for content in CATALOG}

    trainers = {}
    for name, title, specialties, bio, served in TRAINERS:
        unit = ctx.center_id if served == "center" else ctx.institutes[served % len(ctx.institutes)].unit_id
        trainers[name] = stub.RegisterTrainer(pb.RegisterTrainerRequest(
            name=name, title=title, specialties=specialties, served_unit_ids=[unit], bio=bio,
            availability=c.Availability(weekdays=[c.WEEKDAY_SATURDAY, c.WEEKDAY_SUNDAY],
                                        periods=[c.DAY_PERIOD_MORNING, c.DAY_PERIOD_AFTERNOON])),
            metadata=center, timeout=10).trainer
    active = [v for v in ctx.volunteers if v.status == reg.VOLUNTEER_STATUS_ACTIVE]
    carer = next((v for v in active if c.SKILL_ELDERLY_CARE in v.skills), active[0])
    station_of_carer = carer.service_units[0].path[2]
    _eventually(lambda: stub.RegisterTrainer(pb.RegisterTrainerRequest(
        name=carer.name, title="助老服务志愿者骨干", volunteer_id=carer.volunteer_id,
        specialties=[c.SKILL_ELDERLY_CARE], served_unit_ids=[station_of_carer], bio="从事社区助老服务八年"),
        metadata=center, timeout=10))

    enrollments = waitlisted = 0
    for title, where, trainer, days, capacity, wanted in SESSIONS:
        if where == "center":
            unit_id = ctx.center_id
        else:
            kind, index = where
            units = ctx.institutes if kind == "institute" else ctx.stations
            unit_id = units[index % len(units)].unit_id
        start = today + dt.timedelta(days=days, hours=1)  # 09:00 Beijing time
        online = title == "垃圾分类指导"
        session = stub.ScheduleSession(pb.ScheduleSessionRequest(
            course_id=courses[title].course_id, unit_id=unit_id, trainer_id=trainers[trainer].trainer_id,
            mode=ty.SESSION_MODE_ONLINE if online else ty.SESSION_MODE_OFFLINE,
            location="" if online else "新时代文明实践中心多功能培训室",
            online_url="https://live.wenming.example/liangzhou/lajifenlei" if online else "",
            starts_at=_ts(start), ends_at=_ts(start + dt.timedelta(minutes=max(courses[title].content.minutes, 60))),
            capacity=capacity), metadata=center, timeout=10).session
        eligible = [v for v in active if any(unit_id in u.path for u in v.service_units)]
        for volunteer in eligible[:wanted]:
            trainee = _eventually(lambda v=volunteer, s=session: stub.Enroll(
                pb.EnrollRequest(session_id=s.session_id, volunteer_id=v.volunteer_id), metadata=center,
                timeout=10)).trainee
            enrollments += 1
            waitlisted += trainee.state == ty.TRAINEE_STATE_WAITLISTED

    # 台账补录: training that happened before the platform, so the rotation plan has history
    history = 0
    for n, volunteer in enumerate(active[::3]):
        stub.RecordHistoricalCompletion(pb.RecordHistoricalCompletionRequest(
            volunteer_id=volunteer.volunteer_id, course_id=courses["志愿服务通识"].course_id,
            completed_on=(today - dt.timedelta(days=120 + 37 * n)).date().isoformat(),
            reason="2021年以来线下集中培训台账补录"), metadata=center, timeout=10)
        history += 1
    channel.close()
    print(f"  training: {len(courses)} courses, {len(trainers) + 1} trainers, {len(SESSIONS)} sessions, "
          f"{enrollments} enrollments ({waitlisted} waitlisted), {history} historical completions, "
          "rotation 5/3 years", flush=True)
