"""Seeds media for the demo district through its public gRPC API (called by seed_demo.py):
per institute a published activity report (活动报道) and notice (通知公告), each with a generated
cover photo; one article waiting for review; one live course scheduled by the center; and a
published 善行义举榜 of the demo volunteer's institute naming the demo volunteer (shown under
我的善行义举) and a resident."""

from __future__ import annotations

import datetime as dt
import io
import random
import time

import grpc
from google.protobuf.timestamp_pb2 import Timestamp
from PIL import Image, ImageDraw

from wenming.media.v1 import media_pb2 as pb
from wenming.media.v1 import media_pb2_grpc

CHUNK = 256 * 1024
REPORTS = [
    ("“理论宣讲进万家”志愿服务活动走进村社",
     "宣讲志愿者用群众听得懂的方言讲政策、拉家常。",
     "近日，{town}新时代文明实践所组织理论宣讲志愿服务队走进村社院落，围绕乡村振兴、惠民政策等群众关心的话题，"
     "以“板凳会”“院坝会”的形式开展宣讲。志愿者用群众听得懂的语言把政策讲透，现场答疑二十余条。"
     "活动结束后，志愿者还为行动不便的老人送去了米面油。"),
    ("“邻里守望·关爱老人”上门服务",
     "义务理发、量血压、检查家电，一上午服务老人四十余人次。",
     "{town}新时代文明实践所联合卫生院、家电维修志愿服务队，在辖区开展“邻里守望·关爱老人”志愿服务活动。"
     "志愿者为老人义务理发、测量血压、讲解用药常识，并上门检查电路和家用电器，排除安全隐患。"),
    ("“文明乡风”小院讲堂开讲",
     "移风易俗、孝老爱亲，身边好人讲身边事。",
     "本周，{town}新时代文明实践所在各小院讲堂开展“文明乡风”主题活动，邀请身边好人讲述孝老爱亲故事，"
     "倡导婚事新办、丧事简办，引导群众自觉抵制高价彩礼和铺张浪费。"),
]
NOTICES = [
    ("关于招募“文明交通”志愿者的通知",
     "招募对象：身体健康、热心公益的辖区居民。服务时间：工作日早晚高峰。报名方式：到所在村（社区）新时代文明实践站登记，"
     "或在“文明云”小程序报名。"),
    ("关于开展冬季取暖安全宣传的通知",
     "各实践站要组织志愿者入户宣传煤炉取暖安全知识，重点关注独居老人、留守儿童家庭，发现隐患及时上报。"),
    ("关于做好“我们的节日·春节”志愿服务的通知",
     "各实践站结合实际，开展写春联、送年画、慰问困难群众等志愿服务活动，活动照片请于节后一周内上传至成果展示栏目。"),
]
PENDING = ("“清洁家园”环境整治志愿服务", "志愿者清理房前屋后垃圾，助力人居环境整治。",
           "{town}新时代文明实践所组织环保志愿服务队开展“清洁家园”行动，清理卫生死角，倡导垃圾分类。")


HONOR_DEEDS = [
    "每周为村里的独居老人上门理发、量血压，三年来从未间断。",
    "冬季夜里巡查取暖安全，及时发现并排除一户煤炉隐患。",
    "组织院坝读书会，带动二十多名留守儿童每周读书。",
]
RESIDENT_HONOR = ("王秀兰", "拾到村民遗失的三千元现金，原封不动交还失主。")


def cover_image(rng: random.Random) -> bytes:
    """A 1200×675 poster-like cover (sky, sun, fields, a courtyard roof) as JPEG."""
    width, height = 1200, 675
    image = Image.new("RGB", (width, height))
    draw = ImageDraw.Draw(image)
    top, bottom = (rng.randint(150, 200), rng.randint(40, 70), 40), (250, rng.randint(170, 210), 90)
    for y in range(height):
        t = y / height
        draw.line([(0, y), (width, y)], fill=tuple(int(a + (b - a) * t) for a, b in zip(top, bottom, strict=True)))
    sun_x = rng.randint(150, 1050)
    draw.ellipse([sun_x - 70, 90, sun_x + 70, 230], fill=(255, 230, 120))
    for i in range(5):
        y = 470 + i * 45
        draw.rectangle([0, y, width, y + 30], fill=(60 + i * 15, 120 + i * 10, 50))
    roof_x = rng.randint(250, 750)
    draw.polygon([(roof_x, 420), (roof_x + 180, 320), (roof_x + 360, 420)], fill=(150, 30, 30))
    draw.rectangle([roof_x + 40, 420, roof_x + 320, 520], fill=(235, 225, 205))
    draw.rectangle([roof_x + 150, 450, roof_x + 210, 520], fill=(120, 60, 30))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=85)
    return out.getvalue()


def _ts(value: dt.datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(value)
    return stamp


class MediaSeeder:
    def __init__(self, target: str):
        self.channel = grpc.insecure_channel(target)
        self.stub = media_pb2_grpc.MediaServiceStub(self.channel)

    def upload(self, metadata, data: bytes, file_name: str, unit_id: str) -> pb.Asset:
        def messages():
            yield pb.UploadAssetRequest(header=pb.UploadHeader(file_name=file_name, declared_size_bytes=len(data),
                                                               declared_content_type="image/jpeg", unit_id=unit_id))
            for start in range(0, len(data), CHUNK):
                yield pb.UploadAssetRequest(chunk=data[start:start + CHUNK])

        return self.stub.UploadAsset(messages(), metadata=metadata, timeout=60).asset

    def article(self, author, unit_id: str, kind: int, title: str, summary: str, body: str, cover_id: str = ""):
        content = pb.ArticleContent(kind=kind, title=title, summary=summary, body=body, cover_asset_id=cover_id)
        article = self.stub.CreateArticle(pb.CreateArticleRequest(unit_id=unit_id, content=content),
                                          metadata=author, timeout=10).article
        self.stub.SubmitArticle(pb.SubmitArticleRequest(article_id=article.article_id), metadata=author, timeout=10)
        return article

    def approve(self, reviewer, article_id: str) -> None:
        self.stub.ReviewArticle(pb.ReviewArticleRequest(article_id=article_id, decision=pb.REVIEW_DECISION_APPROVE),
                                metadata=reviewer, timeout=10)


def honor_roll(seeder: MediaSeeder, ctx, timeout: float = 60.0) -> pb.Article | None:
    """A published 善行义举榜 of the demo volunteer's institute: the demo volunteer and the institute's
    next volunteers, and a resident by name (published masked). Media learns volunteers from
    registration's events: the roll is retried until it knows them."""
    institute = ctx.institutes[0]
    volunteers = []
    if ctx.volunteers:
        institute_id = next((u.path[1] for u in ctx.demo_volunteer.service_units if len(u.path) > 1), institute.unit_id)
        institute = next((i for i in ctx.institutes if i.unit_id == institute_id), institute)
        volunteers = [v for v in ctx.volunteers if any(institute.unit_id in u.path for u in v.service_units)][:2]
    entries = [pb.HonorRollEntry(volunteer_id=v.volunteer_id, deed=deed)
               for v, deed in zip(volunteers, HONOR_DEEDS, strict=False)]
    entries.append(pb.HonorRollEntry(resident_name=RESIDENT_HONOR[0], deed=RESIDENT_HONOR[1]))
    author = ctx.login_admin(institute.unit_id)
    request = pb.CreateHonorRollRequest(unit_id=institute.unit_id, period=f"{dt.date.today().year}年第四季度",
                                        summary="身边好人好事，凝聚向上向善力量。", entries=entries,
                                        idempotency_key="demo-honor-roll-1")
    deadline = time.monotonic() + timeout
    while True:
        try:
            roll = seeder.stub.CreateHonorRoll(request, metadata=author, timeout=10).article
            break
        except grpc.RpcError as exc:
            if exc.code() != grpc.StatusCode.INVALID_ARGUMENT or time.monotonic() > deadline:
                print(f"  media: no 善行义举榜 ({exc.code().name}: {exc.details()})", flush=True)
                return None
            time.sleep(1)
    seeder.stub.SubmitArticle(pb.SubmitArticleRequest(article_id=roll.article_id), metadata=author, timeout=10)
    seeder.approve(ctx.center_admin, roll.article_id)
    return roll


def seed(ctx) -> None:
    seeder = MediaSeeder(ctx.targets["media"])
    center = ctx.center_admin
    if seeder.stub.ListPublished(pb.ListPublishedRequest(), metadata=center, timeout=10).articles:
        print("  media: already seeded", flush=True)
        return
    rng = random.Random(2026)
    published = 0
    for i, institute in enumerate(ctx.institutes):
        town = institute.name.removesuffix("新时代文明实践所")
        author = ctx.login_admin(institute.unit_id)
        title, summary, body = REPORTS[i % len(REPORTS)]
        cover = seeder.upload(author, cover_image(rng), f"{town}活动封面.jpg", institute.unit_id)
        report = seeder.article(author, institute.unit_id, pb.ARTICLE_KIND_ACTIVITY_REPORT, f"{town}{title}", summary,
                                body.format(town=town), cover.asset_id)
        seeder.approve(center, report.article_id)
        notice_title, notice_body = NOTICES[i % len(NOTICES)]
        notice_cover = seeder.upload(author, cover_image(rng), f"{town}通知配图.jpg", institute.unit_id)
        notice = seeder.article(author, institute.unit_id, pb.ARTICLE_KIND_NOTICE, notice_title, "",
                                f"{town}各村（社区）新时代文明实践站：\n{notice_body}", notice_cover.asset_id)
        seeder.approve(center, notice.article_id)
        published += 2
    first = ctx.institutes[0]
    title, summary, body = PENDING
    town = first.name.removesuffix("新时代文明实践所")
    seeder.article(ctx.login_admin(first.unit_id), first.unit_id, pb.ARTICLE_KIND_ACTIVITY_REPORT, f"{town}{title}",
                   summary, body.format(town=town))
    starts = (dt.datetime.now(dt.UTC) + dt.timedelta(days=3)).replace(hour=11, minute=30, second=0, microsecond=0)
    course = seeder.stub.ScheduleLiveCourse(pb.ScheduleLiveCourseRequest(
        unit_id=ctx.center_id, title="“学习新思想 奋进新征程”直播课堂", lecturer="区委宣讲团成员",
        description="面向全区志愿者和群众的线上理论宣讲，课后可在“直播课程”栏目观看回放。",
        starts_at=_ts(starts), ends_at=_ts(starts + dt.timedelta(minutes=90)),
        stream_url="https://live.wenming.example.cn/liangzhou/xuexi-2026", capacity=2000),
        metadata=center, timeout=10).live_course
    roll = honor_roll(seeder, ctx)
    seeder.channel.close()
    if roll is not None:
        print(f"  media: 善行义举榜《{roll.title}》 published, {len(roll.honor_entries)} people", flush=True)
    print(f"  media: {published} published articles with covers ({len(ctx.institutes)} 活动报道, "
          f"{len(ctx.institutes)} 通知公告), 1 waiting for review, live course 《{course.title}》 "
          f"on {starts.astimezone(dt.timezone(dt.timedelta(hours=8))):%Y-%m-%d %H:%M} (UTC+8)", flush=True)
