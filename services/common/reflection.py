"""gRPC server reflection, v1 and v1alpha, on grpcio-reflection's servicer with full-name lookup.

grpcio-reflection (up to 1.85) serves only v1alpha, and its file_containing_symbol asks the
descriptor pool, which under the upb backend knows top-level symbols only: messages, enums,
services. `grpcurl describe pkg.Service.Method`, `grpcurl describe grpc.health.v1.Health.Check`
and anything else naming a method or a field came back NOT_FOUND (grpc/grpc#34743). Here a
symbol the pool does not know is looked up as a member of its parent: a method of a service, or a
field or oneof of a message.

v1 is the same protocol as v1alpha, promoted: the messages are identical on the wire, so one
servicer answers both, and the v1 file descriptor (for clients that describe the reflection
service itself) is v1alpha's under the v1 package.
"""

from __future__ import annotations

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool
from grpc_reflection.v1alpha import reflection_pb2
from grpc_reflection.v1alpha._base import BaseReflectionServicer
from grpc_reflection.v1alpha.reflection import ReflectionServicer

V1ALPHA = reflection_pb2.DESCRIPTOR.services_by_name["ServerReflection"].full_name
V1 = "grpc.reflection.v1.ServerReflection"
SERVICE_NAMES = (V1, V1ALPHA)


def _add_v1_descriptor(pool: descriptor_pool.DescriptorPool) -> None:
    """grpc/reflection/v1/reflection.proto in `pool`: v1alpha's file under the v1 package."""
    try:
        pool.FindFileByName("grpc/reflection/v1/reflection.proto")
        return
    except KeyError:
        pass
    proto = descriptor_pb2.FileDescriptorProto()
    reflection_pb2.DESCRIPTOR.CopyToProto(proto)
    alpha_package = proto.package
    proto.name, proto.package = "grpc/reflection/v1/reflection.proto", "grpc.reflection.v1"
    for service in proto.service:
        for method in service.method:
            method.input_type = method.input_type.replace(alpha_package, proto.package)
            method.output_type = method.output_type.replace(alpha_package, proto.package)
    for message in proto.message_type:
        for field in message.field:
            if field.HasField("type_name"):
                field.type_name = field.type_name.replace(alpha_package, proto.package)
    pool.Add(proto)


class FullNameReflectionServicer(ReflectionServicer):
    def _file_containing_symbol(self, request: reflection_pb2.ServerReflectionRequest,
                                fully_qualified_name: str) -> reflection_pb2.ServerReflectionResponse:
        parent, _, member = fully_qualified_name.rpartition(".")
        try:
            self._pool.FindFileContainingSymbol(fully_qualified_name)
        except KeyError:
            if self._is_member(parent, member):
                fully_qualified_name = parent
        return BaseReflectionServicer._file_containing_symbol(self, request, fully_qualified_name)

    def _is_member(self, parent: str, member: str) -> bool:
        try:
            return member in self._pool.FindServiceByName(parent).methods_by_name
        except KeyError:
            pass
        try:
            message = self._pool.FindMessageTypeByName(parent)
        except KeyError:
            return False
        return member in message.fields_by_name or member in message.oneofs_by_name


def enable(server: grpc.Server, service_names: tuple[str, ...]) -> None:
    """Serves reflection (v1 and v1alpha) of `service_names` and of itself on `server`."""
    pool = descriptor_pool.Default()
    _add_v1_descriptor(pool)
    servicer = FullNameReflectionServicer(tuple(service_names) + SERVICE_NAMES, pool=pool)
    handler = grpc.stream_stream_rpc_method_handler(
        servicer.ServerReflectionInfo,
        request_deserializer=reflection_pb2.ServerReflectionRequest.FromString,
        response_serializer=reflection_pb2.ServerReflectionResponse.SerializeToString)
    server.add_generic_rpc_handlers(tuple(
        grpc.method_handlers_generic_handler(name, {"ServerReflectionInfo": handler}) for name in SERVICE_NAMES))
