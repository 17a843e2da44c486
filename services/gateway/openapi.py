"""An OpenAPI 3.1 description of the REST gateway, generated from the contract the gateway loads.

Every unary RPC of every upstream is `POST /api/v1/<service>/<Method>`; request and response
schemas follow the proto3 JSON mapping the gateway speaks (lowerCamelCase names, enums by name,
64-bit integers as strings, Timestamp as RFC 3339), so a 小程序 team can generate a client from it.
Nothing here is written by hand: a new RPC or field in protos/ shows up on the next start.
"""

from __future__ import annotations

from typing import cast

from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

from .upstreams import Upstream

F = FieldDescriptor
JsonSchema = dict[str, object]
SCALARS: dict[int, JsonSchema] = {
    F.TYPE_DOUBLE: {"type": "number", "format": "double"},
    F.TYPE_FLOAT: {"type": "number", "format": "float"},
    F.TYPE_INT32: {"type": "integer", "format": "int32"},
    F.TYPE_SINT32: {"type": "integer", "format": "int32"},
    F.TYPE_SFIXED32: {"type": "integer", "format": "int32"},
    F.TYPE_UINT32: {"type": "integer", "format": "int64", "minimum": 0},
    F.TYPE_FIXED32: {"type": "integer", "format": "int64", "minimum": 0},
    # proto3 JSON writes 64-bit integers as strings (JavaScript numbers lose precision past 2^53)
    F.TYPE_INT64: {"type": "string", "format": "int64"},
    F.TYPE_SINT64: {"type": "string", "format": "int64"},
    F.TYPE_SFIXED64: {"type": "string", "format": "int64"},
    F.TYPE_UINT64: {"type": "string", "format": "uint64"},
    F.TYPE_FIXED64: {"type": "string", "format": "uint64"},
    F.TYPE_BOOL: {"type": "boolean"},
    F.TYPE_STRING: {"type": "string"},
    F.TYPE_BYTES: {"type": "string", "contentEncoding": "base64"},
}
WELL_KNOWN: dict[str, JsonSchema] = {
    "google.protobuf.Timestamp": {"type": "string", "format": "date-time"},
    "google.protobuf.Duration": {"type": "string", "pattern": r"^-?\d+(\.\d+)?s$"},
    "google.protobuf.FieldMask": {"type": "string"},
    "google.protobuf.Empty": {"type": "object"},
    "google.protobuf.Struct": {"type": "object"},
    "google.protobuf.Value": {},
    "google.protobuf.Any": {"type": "object", "properties": {"@type": {"type": "string"}}, "required": ["@type"]},
}
ERROR = {
    "type": "object",
    "description": "Google's JSON error model; `status` is the gRPC status name.",
    "properties": {"error": {"type": "object", "required": ["code", "status", "message"], "properties": {
        "code": {"type": "integer", "description": "the HTTP status"},
        "status": {"type": "string", "examples": ["INVALID_ARGUMENT", "PERMISSION_DENIED", "FAILED_PRECONDITION"]},
        "message": {"type": "string"},
        "details": {"type": "array", "items": {"type": "object", "properties": {
            "@type": {"type": "string"},
            "fieldViolations": {"type": "array", "items": {"type": "object", "properties": {
                "field": {"type": "string"}, "description": {"type": "string"}}}}}}},
    }}},
    "required": ["error"],
}


class _Schemas:
    """components.schemas, filled as messages and enums are referred to."""

    def __init__(self) -> None:
        self.components: dict[str, dict] = {}

    def ref(self, descriptor: Descriptor) -> dict:
        if descriptor.full_name in WELL_KNOWN:
            return dict(WELL_KNOWN[descriptor.full_name])
        if descriptor.full_name not in self.components:
            self.components[descriptor.full_name] = {}  # placeholder: messages may refer to themselves
            self.components[descriptor.full_name] = self._message(descriptor)
        return {"$ref": f"#/components/schemas/{descriptor.full_name}"}

    def of(self, message_class: type[Message]) -> dict:
        """The schema of a generated message class (its DESCRIPTOR, typed by protobuf's stubs as
        either implementation's)."""
        return self.ref(cast(Descriptor, message_class.DESCRIPTOR))

    def _message(self, descriptor: Descriptor) -> dict:
        properties = {field.json_name: self._field(field) for field in descriptor.fields}
        return {"type": "object", "properties": properties, "additionalProperties": False}

    def _field(self, field: FieldDescriptor) -> dict:
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            value = field.message_type.fields_by_name["value"]
            return {"type": "object", "additionalProperties": self._single(value)}
        single = self._single(field)
        return {"type": "array", "items": single} if field.is_repeated else single

    def _single(self, field: FieldDescriptor) -> dict:
        if field.type == F.TYPE_MESSAGE:
            assert field.message_type is not None  # a message field has its type
            return self.ref(field.message_type)
        if field.type == F.TYPE_ENUM:
            enum = field.enum_type
            assert enum is not None  # an enum field has its type
            if enum.full_name not in self.components:
                self.components[enum.full_name] = {"type": "string", "enum": [v.name for v in enum.values]}
            return {"$ref": f"#/components/schemas/{enum.full_name}"}
        return dict(SCALARS[field.type])


def openapi_document(upstreams: dict[str, Upstream], server_url: str = "/") -> dict:
    schemas = _Schemas()
    paths: dict[str, dict] = {}
    for name, upstream in sorted(upstreams.items()):
        for method in sorted(upstream.methods.values(), key=lambda m: m.name):
            paths[f"/api/v1/{name}/{method.name}"] = {"post": {
                "operationId": f"{name}.{method.name}",
                "tags": [name],
                "summary": f"{upstream.full_name}/{method.name}",
                "requestBody": {"required": True, "content": {"application/json": {
                    "schema": schemas.of(method.request_class)}}},
                "responses": {
                    "200": {"description": "the reply message", "content": {"application/json": {
                        "schema": schemas.of(method.response_class)}}},
                    "default": {"$ref": "#/components/responses/Error"},
                },
            }}
    if "notification" in upstreams:
        from wenming.notification.v1 import notification_pb2

        update = schemas.of(notification_pb2.InboxUpdate)
        paths["/api/v1/notification/WatchInbox"] = {"get": {
            "operationId": "notification.WatchInbox",
            "tags": ["notification"],
            "summary": "the caller's inbox live, as Server-Sent Events",
            "description": "`event: heartbeat` (the unread count, at once and every 20 s) and `event: inbox` "
                           "(a new message) with proto3 JSON of wenming.notification.v1.InboxUpdate as `data`. "
                           "Send the token in the Authorization header; reconnect when the stream ends.",
            "responses": {
                "200": {"description": "the stream; each event's data is an InboxUpdate", "content": {
                    "text/event-stream": {"schema": {"type": "string"}, "x-event-data": update}}},
                "default": {"$ref": "#/components/responses/Error"},
            },
        }}
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Wenming Cloud REST gateway",
            "version": "v1",
            "description": "Every unary RPC of the Wenming Cloud contract as `POST /api/v1/{service}/{Method}`, "
                           "proto3 JSON in and out, the caller's token in `Authorization: Bearer …`. "
                           "Login, RefreshToken, Logout, self sign-up and VerifyCertificate need no token.",
        },
        "servers": [{"url": server_url}],
        "security": [{"bearer": []}, {}],
        "paths": paths,
        "components": {
            "schemas": dict(sorted(schemas.components.items())),
            "responses": {"Error": {"description": "a refusal or a failure",
                                    "content": {"application/json": {"schema": ERROR}}}},
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}},
        },
    }
