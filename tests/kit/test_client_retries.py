"""The kit's channels retry what the service config says, and nothing else: against a real gRPC
server that answers the first attempts of each call as a stopping server would, a read and an
idempotency-keyed write get through on a later attempt, and a write without a key is tried once."""

from __future__ import annotations

from collections import Counter
from concurrent import futures

import grpc
import pytest

from services.common.grpc_client import client_channel
from wenming.points.v1 import points_pb2 as pb
from wenming.points.v1 import points_pb2_grpc


class GoingAway(points_pb2_grpc.PointsServiceServicer):
    """Answers the first `failures` attempts of every call with `code`, then OK."""

    def __init__(self, code: grpc.StatusCode, failures: int):
        self.code, self.failures = code, failures
        self.attempts: Counter[str] = Counter()

    def _answer(self, method: str, context, response):
        self.attempts[method] += 1
        if self.attempts[method] <= self.failures:
            context.abort(self.code, "the server is going away")
        return response

    def GetAccount(self, request, context):
        return self._answer("GetAccount", context, pb.GetAccountResponse())

    def AdjustPoints(self, request, context):
        return self._answer("AdjustPoints", context, pb.AdjustPointsResponse())

    def CreateStoreItem(self, request, context):
        return self._answer("CreateStoreItem", context, pb.CreateStoreItemResponse())


@pytest.fixture(params=[grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED], ids=lambda c: c.name)
def server(request):
    servicer = GoingAway(request.param, failures=2)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    points_pb2_grpc.add_PointsServiceServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield servicer, f"127.0.0.1:{port}"
    server.stop(None)


def test_reads_and_keyed_writes_are_retried_other_writes_are_not(server):
    servicer, target = server
    channel = client_channel(target, default_timeout=10)
    try:
        stub = points_pb2_grpc.PointsServiceStub(channel)
        stub.GetAccount(pb.GetAccountRequest(account_id="vol_x"))
        stub.AdjustPoints(pb.AdjustPointsRequest(account_id="vol_x", amount=1, idempotency_key="k-1"))
        with pytest.raises(grpc.RpcError) as refused:
            stub.CreateStoreItem(pb.CreateStoreItemRequest(unit_id="unit_x", name="肥皂"))
        assert refused.value.code() == servicer.code
    finally:
        channel.close()
    assert servicer.attempts == {"GetAccount": 3, "AdjustPoints": 3, "CreateStoreItem": 1}
