"""The raw ID number appears in no database field, no log line and no event."""

from __future__ import annotations

import re

from bson import BSON

from tests.support.grpc_helpers import bearer
from tests.support.registration import PASSWORD, new_national_id, new_phone
from wenming.registration.v1 import registration_pb2 as reg


def test_raw_id_number_and_phone_are_nowhere_but_encrypted(district, registration, registration_db,
                                                           registration_events):
    tree = district.small_tree()
    national_id, phone = new_national_id(region="620602", year=1985), new_phone()
    volunteer = district.stub.RegisterVolunteer(reg.RegisterVolunteerRequest(
        district_id=district.id, name="赵志强", national_id=national_id, phone=phone, password=PASSWORD,
        political_status=reg.POLITICAL_STATUS_MASSES, service_unit_ids=[tree.courtyards[0].unit_id]),
        timeout=10).volunteer
    token = district.volunteer_token(phone)
    district.stub.GetVolunteer(reg.GetVolunteerRequest(volunteer_id=volunteer.volunteer_id), metadata=bearer(token),
                               timeout=5)
    # a refused duplicate must not leak it either (error messages are logged)
    try:
        district.stub.RegisterVolunteer(reg.RegisterVolunteerRequest(
            district_id=district.id, name="赵志强", national_id=national_id, phone=new_phone(), password=PASSWORD,
            political_status=reg.POLITICAL_STATUS_MASSES, service_unit_ids=[tree.courtyards[0].unit_id]), timeout=10)
    except Exception as exc:  # ALREADY_EXISTS expected; its text is checked below
        assert national_id not in str(exc)

    # the API shows it masked only
    assert volunteer.national_id_masked == national_id[:3] + "*" * 11 + national_id[-4:]
    assert volunteer.phone_masked == phone[:3] + "****" + phone[-4:]

    # database: every document of every collection, as raw BSON bytes
    for name in registration_db.list_collection_names():
        for doc in registration_db[name].find({}):
            raw = BSON.encode(doc)
            assert national_id.encode() not in raw, f"raw ID number stored in {name}"
            assert phone.encode() not in raw, f"raw phone number stored in {name}"
    stored = registration_db.volunteers.find_one({"_id": volunteer.volunteer_id})
    assert stored["id_cipher"] and stored["id_index"] and national_id not in repr(stored)

    # events
    registration_events.events(district.id, at_least=1, timeout=15, settle=1.5)
    for value in registration_events.raw_values():
        assert national_id.encode() not in value and phone.encode() not in value

    # logs (the service logs every RPC error; INFO level in tests)
    log_text = registration.log_path.read_text(encoding="utf-8", errors="replace")
    assert national_id not in log_text and phone not in log_text
    assert not re.search(r"620602\\d{11}[\\dX]", log_text)
