"""gRPC servicer: translates requests to the domain and results back. No rules live here."""

from __future__ import annotations

import grpc

from services.common.auth import current_principal
from services.common.clock import clock
from services.common.errors import InvalidArgument
from wenming.common.v1 import common_pb2
from wenming.media.v1 import media_pb2 as pb
from wenming.media.v1 import media_pb2_grpc

from .app import Media
from .translate import article_msg, asset_msg, honor_msg, live_course_msg, policy_msg
from .uploads import UploadInterrupted

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["MediaService"].full_name


def _page(token: str) -> common_pb2.PageResponse:
    return common_pb2.PageResponse(next_page_token=token)


def _chunks(request_iterator, context):
    """The chunk messages after the header, as bytes."""
    try:
        for message in request_iterator:
            if message.WhichOneof("part") != "chunk":
                raise InvalidArgument.field("header", "only the first message may carry the header")
            yield message.chunk
    except grpc.RpcError:
        raise UploadInterrupted() from None
    if not context.is_active():  # a cancel can look like the end of the stream
        raise UploadInterrupted()


class MediaServicer(media_pb2_grpc.MediaServiceServicer):
    def __init__(self, media: Media):
        self.assets = media.assets
        self.uploader = media.uploader
        self.publishing = media.publishing
        self.honor_rolls = media.honor_rolls
        self.screening = media.screening
        self.live = media.live_courses

    # ---- assets ----

    def UploadAsset(self, request_iterator, context):
        try:
            first = next(request_iterator, None)
        except grpc.RpcError:
            raise UploadInterrupted() from None
        if first is None or first.WhichOneof("part") != "header":
            raise InvalidArgument.field("header", "the first message must carry the header")
        principal = current_principal()
        asset, deduplicated = self.uploader.upload(principal, first.header, _chunks(request_iterator, context),
                                                   header_prefix="header.", content_field="chunk")
        return pb.UploadAssetResponse(asset=asset_msg(asset, with_audit=True), deduplicated=deduplicated)

    def DownloadAsset(self, request, context):
        principal = current_principal()
        target = self.assets.download_target(principal, request.asset_id, request.variant)
        start, end = target.byte_range(request.offset, request.length)
        yield pb.DownloadAssetResponse(asset=asset_msg(target.asset, self.assets.may_manage(principal, target.asset)),
                                       offset=start)
        offset = start
        for piece in self.assets.stream(target, start, end, "grpc"):
            yield pb.DownloadAssetResponse(offset=offset, data=piece)
            offset += len(piece)

    def GetAsset(self, request, context):
        principal = current_principal()
        asset = self.assets.get(principal, request.asset_id)
        return pb.GetAssetResponse(asset=asset_msg(asset, self.assets.may_manage(principal, asset)))

    def ListAssets(self, request, context):
        principal = current_principal()
        assets, token = self.assets.list(principal, request)
        return pb.ListAssetsResponse(assets=[asset_msg(a, self.assets.may_manage(principal, a)) for a in assets],
                                     page=_page(token))

    def LinkAsset(self, request, context):
        return pb.LinkAssetResponse(asset=asset_msg(self.assets.link(current_principal(), request), True))

    def DeleteAsset(self, request, context):
        asset = self.assets.delete(current_principal(), request.asset_id, request.reason)
        return pb.DeleteAssetResponse(asset=asset_msg(asset, True))

    # ---- publishing ----

    def CreateArticle(self, request, context):
        return pb.CreateArticleResponse(article=article_msg(self.publishing.create(current_principal(), request)))

    def UpdateArticle(self, request, context):
        return pb.UpdateArticleResponse(article=article_msg(self.publishing.update(current_principal(), request)))

    def SubmitArticle(self, request, context):
        article = self.publishing.submit(current_principal(), request.article_id)
        return pb.SubmitArticleResponse(article=article_msg(article))

    def ReviewArticle(self, request, context):
        return pb.ReviewArticleResponse(article=article_msg(self.publishing.review(current_principal(), request)))

    def WithdrawArticle(self, request, context):
        article = self.publishing.withdraw(current_principal(), request.article_id, request.reason)
        return pb.WithdrawArticleResponse(article=article_msg(article))

    def GetArticle(self, request, context):
        return pb.GetArticleResponse(article=article_msg(self.publishing.get(current_principal(), request.article_id)))

    def ListArticles(self, request, context):
        articles, token = self.publishing.list(current_principal(), request)
        return pb.ListArticlesResponse(articles=[article_msg(a, full=False) for a in articles], page=_page(token))

    def ListPublished(self, request, context):
        articles, token = self.publishing.feed(current_principal(), request)
        return pb.ListPublishedResponse(articles=[article_msg(a, full=False) for a in articles], page=_page(token))

    def CreateHonorRoll(self, request, context):
        return pb.CreateHonorRollResponse(article=article_msg(self.honor_rolls.create(current_principal(), request)))

    def UpdateHonorRoll(self, request, context):
        return pb.UpdateHonorRollResponse(article=article_msg(self.honor_rolls.update(current_principal(), request)))

    def ListHonors(self, request, context):
        honors, token = self.honor_rolls.honors(current_principal(), request)
        return pb.ListHonorsResponse(honors=[honor_msg(a, e) for a, e in honors], page=_page(token))

    def GetScreeningPolicy(self, request, context):
        return pb.GetScreeningPolicyResponse(policy=policy_msg(self.screening.read(current_principal())))

    def SetScreeningPolicy(self, request, context):
        return pb.SetScreeningPolicyResponse(policy=policy_msg(self.screening.set(current_principal(), request)))

    # ---- live courses ----

    def _course(self, course):
        return live_course_msg(course, current_principal(), clock.now())

    def ScheduleLiveCourse(self, request, context):
        return pb.ScheduleLiveCourseResponse(live_course=self._course(self.live.schedule(current_principal(), request)))

    def GetLiveCourse(self, request, context):
        course = self.live.get(current_principal(), request.live_course_id)
        return pb.GetLiveCourseResponse(live_course=self._course(course))

    def ListLiveCourses(self, request, context):
        courses, token = self.live.list(current_principal(), request)
        return pb.ListLiveCoursesResponse(live_courses=[self._course(c) for c in courses], page=_page(token))

    def SignUpLiveCourse(self, request, context):
        course = self.live.sign_up(current_principal(), request.live_course_id)
        return pb.SignUpLiveCourseResponse(live_course=self._course(course))

    def CancelLiveCourseSignUp(self, request, context):
        course = self.live.cancel_sign_up(current_principal(), request.live_course_id)
        return pb.CancelLiveCourseSignUpResponse(live_course=self._course(course))

    def CancelLiveCourse(self, request, context):
        course = self.live.cancel(current_principal(), request.live_course_id, request.reason)
        return pb.CancelLiveCourseResponse(live_course=self._course(course))

    def AttachReplay(self, request, context):
        course = self.live.attach_replay(current_principal(), request.live_course_id, request.asset_id)
        return pb.AttachReplayResponse(live_course=self._course(course))
