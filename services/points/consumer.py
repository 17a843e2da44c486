"""The ledger consumer: ordering's and training's events in, ledger entries and balances out,
a whole batch at a time (the hot path; see ledger.Ledger.apply_consumed)."""

from __future__ import annotations

from services.common.consumer import ConsumedEvent, EventConsumer, Outcome
from services.common.events import PoisonEvent

from .earning import BUILDERS
from .ledger import Consumed, Ledger
from .rulebook import RuleBook


def partition_source(topic: str, partition: int) -> str:
    """"[prefix]wenming.ordering.v1.events", 3 -> "ordering-3": the key of an account's mark."""
    return f"{topic.split('.')[-3]}-{partition}"


class LedgerConsumer(EventConsumer):
    def __init__(self, ledger: Ledger, rules: RuleBook, *, dlq_producer, **options):
        super().__init__(dlq_producer=dlq_producer, **options)
        self.ledger = ledger
        self.rules = rules
        self.producer = dlq_producer  # the service's idempotent acks=all producer

    def apply_batch(self, events: list[ConsumedEvent]) -> list[Outcome | Exception]:
        outcomes: list[Outcome | Exception] = [Outcome.SKIPPED] * len(events)
        items: list[Consumed] = []
        for i, event in enumerate(events):
            build = BUILDERS.get(event.envelope.event_type)
            if build is None:
                continue
            try:
                specs = build(event, self.rules.for_district(event.envelope.district_id))
            except (ValueError, PoisonEvent) as exc:
                outcomes[i] = exc
                continue
            if specs:
                items.append(Consumed(i, partition_source(event.topic, event.partition), event.offset,
                                      event.envelope.district_id, specs))
        if items:
            for index, outcome in self.ledger.apply_consumed(items, self.producer).items():
                outcomes[index] = outcome
        return outcomes
