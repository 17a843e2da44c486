"""An error never echoes the caller's input: a field of 100,000 characters is refused with
INVALID_ARGUMENT and a short message, on the default client (whose trailer limit a whole echo
would exceed, turning the answer into RESOURCE_EXHAUSTED)."""

from __future__ import annotations

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from tests.support.grpc_helpers import bearer
from wenming.media.v1 import media_pb2, media_pb2_grpc
from wenming.points.v1 import points_pb2, points_pb2_grpc
from wenming.registration.v1 import registration_pb2, registration_pb2_grpc
from wenming.training.v1 import training_pb2, training_pb2_grpc

HUGE = "长" * 50_000 + "x" * 50_000
EXCERPT_LIMIT = 41  # at most 40 characters of a value, then "…"


def _calls(fleet, token):
    metadata = bearer(token)
    channels = {name: grpc.insecure_channel(fleet[name].grpc_target) for name in ("registration", "points",
                                                                                   "training", "media")}
    registration = registration_pb2_grpc.RegistrationServiceStub(channels["registration"])
    points = points_pb2_grpc.PointsServiceStub(channels["points"])
    training = training_pb2_grpc.TrainingServiceStub(channels["training"])
    media = media_pb2_grpc.MediaServiceStub(channels["media"])

    def upload(header):
        return media.UploadAsset(iter([media_pb2.UploadAssetRequest(header=header),
                                       media_pb2.UploadAssetRequest(chunk=b"x")]), metadata=metadata, timeout=10)

    calls = {
        "UpdateVolunteer.update_fields": lambda: registration.UpdateVolunteer(registration_pb2.UpdateVolunteerRequest(
            volunteer_id="vol_missing", update_fields=[HUGE]), metadata=metadata, timeout=10),
        "UpdateStoreItem.update_fields": lambda: points.UpdateStoreItem(points_pb2.UpdateStoreItemRequest(
            item_id="item_missing", update_fields=[HUGE]), metadata=metadata, timeout=10),
        "UpdateStoreItem.name": lambda: points.UpdateStoreItem(points_pb2.UpdateStoreItemRequest(
            item_id="item_missing", update_fields=["name"], name=HUGE), metadata=metadata, timeout=10),
        "UpdateTrainer.update_fields": lambda: training.UpdateTrainer(training_pb2.UpdateTrainerRequest(
            trainer_id="trn_missing", update_fields=[HUGE]), metadata=metadata, timeout=10),
        "UpdateTrainer.bio": lambda: training.UpdateTrainer(training_pb2.UpdateTrainerRequest(
            trainer_id="trn_missing", update_fields=["bio"], bio=HUGE), metadata=metadata, timeout=10),
        "UploadAsset.declared_content_type": lambda: upload(media_pb2.UploadHeader(
            file_name="a.jpg", declared_size_bytes=1, declared_content_type=HUGE)),
        "UploadAsset.file_name": lambda: upload(media_pb2.UploadHeader(file_name=HUGE, declared_size_bytes=1)),
    }
    return calls, channels


@pytest.fixture(scope="module")
def calls(fleet, fleet_district):
    calls, channels = _calls(fleet, fleet_district.center_admin_token)
    yield calls
    for channel in channels.values():
        channel.close()


@pytest.mark.parametrize("call", ["UpdateVolunteer.update_fields", "UpdateStoreItem.update_fields",
                                  "UpdateStoreItem.name", "UpdateTrainer.update_fields", "UpdateTrainer.bio",
                                  "UploadAsset.declared_content_type", "UploadAsset.file_name"])
def test_a_huge_field_is_refused_with_a_short_message(calls, call):
    with pytest.raises(grpc.RpcError) as caught:
        calls[call]()
    error = caught.value
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, f"{error.code()}: {(error.details() or '')[:200]}"
    texts = [error.details()]
    status = rpc_status.from_call(error)
    for detail in status.details if status else ():
        bad = error_details_pb2.BadRequest()
        assert detail.Unpack(bad)
        texts += [f"{v.field} {v.description}" for v in bad.field_violations]
    assert len(error.details()) < 500
    for text in texts:
        assert "长" * EXCERPT_LIMIT not in text and "x" * EXCERPT_LIMIT not in text, text[:200]
