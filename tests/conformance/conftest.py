"""Every service running at once, for the checks that hold across all of them (reflection, health,
/metrics, error answers, topics).

They are extra replicas of the session's deployment (same databases, same consumer groups) on
ports of their own, started for this package and stopped after it, so they leave nothing behind
that the other tests could trip over.
"""

from __future__ import annotations

import json

import pytest

from tests.support.registration import District
from tests.support.stack import KAFKA_PREFIX

GRPC_SERVICES = ("ordering", "points", "training", "media", "notification", "rollup")
# the roll-up needs regions to start: one of a district nobody creates (docs/rollup.md)
REGIONS = {"regions": [{"region_id": "conformance-city", "name": "测试市", "districts": [
    {"district_id": "conformance-district", "name": "测试区", "kafka_prefix": KAFKA_PREFIX}]}]}
SETTINGS = {"rollup": {"ROLLUP_REGIONS": json.dumps(REGIONS)}}
PORT_OFFSET = 2  # below 3: TEST_SLOT n+1 starts 300 ports higher


@pytest.fixture(scope="package")
def fleet(stack, registration) -> dict:
    """name -> running process, registration (the session's) and the gateway included."""
    procs = {}
    try:
        for name in GRPC_SERVICES:
            procs[name] = stack.start_service(name, port_offset=PORT_OFFSET, log_name=f"{name}-conformance",
                                              extra_env=SETTINGS.get(name))
        upstreams = {f"{name.upper()}_GRPC_TARGET": proc.grpc_target for name, proc in procs.items()}
        # behind one proxy of the deployment's own (an ingress), as in the cluster
        procs["gateway"] = stack.start_service("gateway", port_offset=PORT_OFFSET, log_name="gateway-conformance",
                                               extra_env={"REGISTRATION_GRPC_TARGET": registration.grpc_target,
                                                          "TRUSTED_PROXY_HOPS": "1", **upstreams})
        yield {"registration": registration, **procs}
    finally:
        for proc in procs.values():
            proc.stop()


@pytest.fixture(scope="package")
def fleet_district(registration) -> District:
    d = District(registration.grpc_target, registration.env)
    yield d
    d.close()
