"""Completion photos are proof of service: linked to their order (at upload, by LinkAsset, or
by ordering's OrderCompleted event) and visible in that order's history to its resident, its
volunteers and the admins it passed — to nobody else."""

from __future__ import annotations

import uuid

import grpc
import pytest

from tests.support.events import RelayPublisher
from tests.support.grpc_helpers import bearer, expect_error
from wenming.common.v1 import common_pb2 as c
from wenming.media.v1 import events_pb2 as media_events_pb2
from wenming.media.v1 import media_pb2 as pb
from wenming.ordering.v1 import events_pb2 as oev
from wenming.ordering.v1 import types_pb2 as otypes

from .helpers import jpeg
from tests.support.waiting import wait_until



@pytest.fixture(scope="module")
def ordering(stack):
    """Publishes events on ordering's topic exactly as ordering's outbox relay does."""
    relay = RelayPublisher(stack.kafka, "ordering")

    def publish(payload, district_id: str, order_id: str, version: int) -> dict:
        return relay.publish(payload, district_id=district_id, aggregate_type="order", aggregate_id=order_id,
                             version=version)

    publish.send = relay.send
    yield publish
    relay.close()


def order_snapshot(world, order_id: str, status: int) -> otypes.OrderSnapshot:
    yard = world.tree.courtyards[0]
    return otypes.OrderSnapshot(
        order_id=order_id, item_name="助老理发", category=c.SERVICE_CATEGORY_CARE_FOR_OTHERS,
        handling_level=c.UNIT_LEVEL_COURTYARD, status=status, resident_id=world.resident_id,
        volunteer_ids=[world.volunteer_id],
        origin_courtyard=c.UnitRef(unit_id=yard.unit_id, level=yard.level, name=yard.name, path=list(yard.path)),
        current_unit=c.UnitRef(unit_id=yard.unit_id, level=yard.level, name=yard.name, path=list(yard.path)))


def list_for_order(media_client, order_id: str, token: str) -> list[pb.Asset]:
    return list(media_client.stub.ListAssets(pb.ListAssetsRequest(linked_order_id=order_id),
                                             metadata=bearer(token), timeout=10).assets)


def test_completion_photos_are_visible_in_the_orders_history(media_client, world, ordering, media_events):
    order_id = f"ord_{uuid.uuid4().hex[:12]}"
    volunteer = world.volunteer_token
    before_service = media_client.upload(volunteer, jpeg(320, 240, (1, 2, 3)), "服务前.jpg",
                                         linked_order_id=order_id).asset
    during = media_client.upload(volunteer, jpeg(320, 240, (4, 5, 6)), "服务中.jpg").asset
    after_service = media_client.upload(volunteer, jpeg(320, 240, (7, 8, 9)), "服务后.jpg").asset
    link = pb.LinkAssetRequest(asset_id=during.asset_id, order_id=order_id)
    with expect_error(grpc.StatusCode.PERMISSION_DENIED):  # only the uploader or an admin of its unit links it
        media_client.stub.LinkAsset(link, metadata=bearer(world.other_volunteer_token), timeout=10)
    with expect_error(grpc.StatusCode.INVALID_ARGUMENT, field="order_id"):
        media_client.stub.LinkAsset(pb.LinkAssetRequest(asset_id=during.asset_id), metadata=bearer(volunteer),
                                    timeout=10)
    linked = media_client.stub.LinkAsset(link, metadata=bearer(volunteer), timeout=10).asset
    assert list(linked.linked_order_ids) == [order_id] and linked.audit[-1].action == "linked"

    # before ordering has said anything about the order, a resident sees nothing of it
    assert list_for_order(media_client, order_id, world.resident_token) == []

    # ordering: the volunteer accepted, then completed with three photos as proof of service
    ordering(oev.OrderAccepted(order=order_snapshot(world, order_id, otypes.ORDER_STATUS_ACCEPTED),
                               volunteer_id=world.volunteer_id), world.district.id, order_id, 5)
    completed = ordering(oev.OrderCompleted(
        order=order_snapshot(world, order_id, otypes.ORDER_STATUS_COMPLETED), report="理发完成，老人很满意",
        photo_asset_ids=[before_service.asset_id, during.asset_id, after_service.asset_id]),
        world.district.id, order_id, 8)
    wanted = {before_service.asset_id, during.asset_id, after_service.asset_id}
    wait_until(lambda: {a.asset_id for a in list_for_order(media_client, order_id, world.resident_token)} == wanted,
               what="the order's completion photos to reach the resident")

    for party in (volunteer, world.admin(world.tree.stations[0]), world.admin(world.tree.institute),
                  world.district.center_admin_token):
        assert {a.asset_id for a in list_for_order(media_client, order_id, party)} == wanted
    for outsider in (world.other_resident_token, world.other_volunteer_token, world.admin(world.tree.stations[1])):
        with expect_error(grpc.StatusCode.PERMISSION_DENIED):
            list_for_order(media_client, order_id, outsider)
        with expect_error(grpc.StatusCode.PERMISSION_DENIED):
            media_client.stub.GetAsset(pb.GetAssetRequest(asset_id=after_service.asset_id),
                                       metadata=bearer(outsider), timeout=10)
    # the resident opens the photos in the order's history
    status, headers, body = media_client.http("GET", f"/v1/assets/{after_service.asset_id}/thumbnail",
                                              world.resident_token)
    assert status == 200 and headers["Content-Type"] == "image/jpeg" and body[:3] == b"\xff\xd8\xff"

    # a redelivered OrderCompleted changes nothing
    versions = {a.asset_id: a.version for a in list_for_order(media_client, order_id, volunteer)}
    ordering.send(completed)
    linked_events = [p for _, p, _ in media_events.events(world.district.id, at_least=5, timeout=20, settle=2.0)
                     if isinstance(p, media_events_pb2.AssetLinked)]
    assert sorted(p.asset_id for p in linked_events) == sorted([during.asset_id, after_service.asset_id])
    assert {a.asset_id: a.version for a in list_for_order(media_client, order_id, volunteer)} == versions
