"""The `make run` seed for media runs against real processes and leaves what it promises."""

from __future__ import annotations

# infra/local is on sys.path through tests.support.stack
import seed_demo
import seed_media
from tests.support.grpc_helpers import bearer
from wenming.common.v1 import common_pb2 as c
from wenming.media.v1 import media_pb2 as pb

from .helpers import build_world


class _Logins:
    """Stands in for seed_demo's Seeder: logs admins of the test district in."""

    def __init__(self, district):
        self.district = district

    def login(self, kind: int, login: str):
        return bearer(self.district.login(kind, login)), None


def test_seed_publishes_articles_with_covers_a_pending_one_an_honour_roll_and_a_live_course(media, media_client, media_db,
                                                                              module_district, capsys):
    world = build_world(module_district, media_db)  # a district of its own: the seed expects an empty one
    district, tree = world.district, world.tree
    ctx = seed_demo.SeedContext(
        targets={"media": media.grpc_target}, center_admin=district.as_center(), center_id=district.center_id,
        institutes=[tree.institute], stations=tree.stations, courtyards=tree.courtyards,
        admin_logins={tree.institute.unit_id: "inst-admin"}, registration=_Logins(district))
    seed_media.seed(ctx)
    printed = capsys.readouterr().out
    assert "media: 2 published articles" in printed and "善行义举榜" in printed

    feed = media_client.stub.ListPublished(pb.ListPublishedRequest(), metadata=bearer(world.resident_token),
                                           timeout=10).articles
    rolls = [a for a in feed if a.kind == pb.ARTICLE_KIND_HONOR_ROLL]
    feed = [a for a in feed if a.kind != pb.ARTICLE_KIND_HONOR_ROLL]
    assert sorted(a.kind for a in feed) == [pb.ARTICLE_KIND_NOTICE, pb.ARTICLE_KIND_ACTIVITY_REPORT]
    assert len(rolls) == 1 and rolls[0].unit.unit_id == tree.institute.unit_id
    roll = media_client.stub.GetArticle(pb.GetArticleRequest(article_id=rolls[0].article_id),
                                        metadata=bearer(world.resident_token), timeout=10).article
    assert [e.shown_name for e in roll.honor_entries] == ["王*兰"]  # the test district has no seeded volunteers
    for article in feed:
        assert article.cover_asset_id and article.unit.unit_id == tree.institute.unit_id
        status, headers, body = media_client.http("GET", f"/v1/assets/{article.cover_asset_id}/thumbnail",
                                                  world.resident_token)
        assert status == 200 and body[:3] == b"\xff\xd8\xff"
    queue = media_client.stub.ListArticles(pb.ListArticlesRequest(status=pb.ARTICLE_STATUS_PENDING_REVIEW),
                                           metadata=district.as_center(), timeout=10).articles
    assert len(queue) == 1
    courses = media_client.stub.ListLiveCourses(pb.ListLiveCoursesRequest(upcoming_only=True),
                                                metadata=bearer(world.resident_token), timeout=10).live_courses
    assert len(courses) == 1 and courses[0].stream_url.startswith("https://")
    assert courses[0].unit.level == c.UNIT_LEVEL_CENTER

    seed_media.seed(ctx)  # a second run keeps what is there
    assert "already seeded" in capsys.readouterr().out
