"""The gRPC services behind the gateway and generic unary calls to them.

Every unary RPC of every upstream service is reachable as `POST /api/v1/<service>/<Method>` with
the request message as JSON (proto3 JSON mapping) — the services validate and authorize, the
gateway only translates. Streaming RPCs are not proxied here: browsers use the media service's
own HTTP endpoints for uploads and downloads, and notification's WatchInbox is served as
Server-Sent Events by streams.py. DownloadExport, where a service has it, is served as a file
by downloads.py.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, cast

import grpc
from google.protobuf import message_factory
from google.protobuf.message import Message

from services.common.config import GrpcTls
from services.common.grpc_client import client_channel
from wenming.common.v1 import common_pb2

# upstream name -> (proto module, service name)
KNOWN_SERVICES = {
    "registration": ("wenming.registration.v1.registration_pb2", "RegistrationService"),
    "ordering": ("wenming.ordering.v1.ordering_pb2", "OrderingService"),
    "points": ("wenming.points.v1.points_pb2", "PointsService"),
    "training": ("wenming.training.v1.training_pb2", "TrainingService"),
    "media": ("wenming.media.v1.media_pb2", "MediaService"),
    "notification": ("wenming.notification.v1.notification_pb2", "NotificationService"),
    # a city's release (docs/rollup.md): its gateway, in front of its registration, routes it
    "rollup": ("wenming.rollup.v1.rollup_pb2", "RollupService"),
}


class ExportFileReply(Protocol):
    """Any service's DownloadExportResponse: one part of an export's file (downloads.py)."""

    @property
    def part(self) -> common_pb2.ExportFilePart: ...


# what a call carries besides the request: (header, value) pairs, as grpcio takes them
Metadata = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Method:
    upstream: str
    name: str
    path: str  # /package.Service/Method
    request_class: type[Message]
    response_class: type[Message]


class Upstream:
    def __init__(self, name: str, target: str, timeout_seconds: float, tls: GrpcTls | None = None):
        module_name, service_name = KNOWN_SERVICES[name]
        descriptor = importlib.import_module(module_name).DESCRIPTOR.services_by_name[service_name]
        self.name = name
        self.target = target
        self.full_name = descriptor.full_name
        self.channel = client_channel(target, default_timeout=timeout_seconds, tls=tls)
        self.methods: dict[str, Method] = {}
        for method in descriptor.methods:
            if method.client_streaming or method.server_streaming:
                continue
            self.methods[method.name] = Method(
                upstream=name, name=method.name, path=f"/{descriptor.full_name}/{method.name}",
                request_class=message_factory.GetMessageClass(method.input_type),
                response_class=message_factory.GetMessageClass(method.output_type))
        self._callables: dict[str, grpc.UnaryUnaryMultiCallable] = {
            m.name: self.channel.unary_unary(m.path, request_serializer=m.request_class.SerializeToString,
                                             response_deserializer=m.response_class.FromString)
            for m in self.methods.values()
        }

        # the export files of the service, if it has any (downloads.py)
        download = descriptor.methods_by_name.get("DownloadExport")
        # the service's DownloadExportRequest class, called with job_id=...; both None without exports
        self.download_request: Callable[..., Message] | None = None
        self.download_export: grpc.UnaryStreamMultiCallable[Message, ExportFileReply] | None = None
        if download is not None:
            request_class = message_factory.GetMessageClass(download.input_type)
            # built from the descriptor, so typed as a bare Message: every service's DownloadExportResponse
            # holds the file's part as `part` (the contract's common ExportFilePart)
            read_reply = cast(Callable[[bytes], ExportFileReply],
                              message_factory.GetMessageClass(download.output_type).FromString)
            self.download_request = request_class
            self.download_export = self.channel.unary_stream(
                f"/{descriptor.full_name}/DownloadExport", request_serializer=request_class.SerializeToString,
                response_deserializer=read_reply)

    def call(self, method: str, request: Message, metadata: Metadata) -> Message:
        return self._callables[method](request, metadata=metadata)

    def close(self) -> None:
        self.channel.close()


