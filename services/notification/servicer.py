"""gRPC servicer: translates requests to the domain and results back. No rules live here."""

from __future__ import annotations

from services.common.auth import current_principal
from wenming.common.v1 import common_pb2
from wenming.notification.v1 import notification_pb2 as pb
from wenming.notification.v1 import notification_pb2_grpc

from .inbox import Inbox
from .translate import message_msg
from .watch import Watching

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["NotificationService"].full_name


class NotificationServicer(notification_pb2_grpc.NotificationServiceServicer):
    def __init__(self, inbox: Inbox, watching: Watching):
        self.inbox = inbox
        self.watching = watching

    def ListInbox(self, request, context):
        docs, unread, token = self.inbox.page(current_principal(), request)
        return pb.ListInboxResponse(messages=[message_msg(d) for d in docs], unread=unread,
                                    page=common_pb2.PageResponse(next_page_token=token))

    def MarkInboxRead(self, request, context):
        return pb.MarkInboxReadResponse(unread=self.inbox.mark_read(current_principal(), request))

    def WatchInbox(self, request, context):
        yield from self.watching.updates(current_principal(), context.add_callback)
