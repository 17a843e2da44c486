"""python -m services.rollup: a region's (市/省) read-only roll-up of its districts' months, kept
from the events of the districts' releases (docs/rollup.md)."""

from services.common.runtime import ServiceApp
from wenming.rollup.v1 import rollup_pb2_grpc

from .facts import DistrictFacts
from .regions import extra_settings
from .reports import RegionReports
from .servicer import SERVICE_NAME, RollupServicer


def main() -> None:
    app = ServiceApp("rollup", extra_settings)
    regions = app.settings.extra["regions"]
    facts = DistrictFacts(app.db, regions)
    facts.ensure_indexes()
    app.add_grpc(rollup_pb2_grpc.add_RollupServiceServicer_to_server, RollupServicer(RegionReports(facts, regions)),
                 SERVICE_NAME)
    # one consumer group over every district release's topics: the group (and its offsets) is the
    # roll-up's own, under its own KAFKA_PREFIX
    app.add_event_consumer("districts", regions.topics(), facts.handlers())
    app.run()


if __name__ == "__main__":
    main()
