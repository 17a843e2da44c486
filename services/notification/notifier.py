"""The consumer side: ordering's events become messages, handed to the inbox and then to the
other channels.

Idempotent like every consumer here: the inbox stores a message once per recipient and dedup key,
so a re-delivered event stores nothing and reaches no channel again. An event older than the
configured age makes no message: a service installed into a running district (or back after a
long outage) reads the topics from their start, and messages about last month's orders would
only bury the current ones.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence

from services.common.clock import clock
from services.common.consumer import ConsumedEvent, Outcome

from .channels import Channel
from .messages import Delivery, order_of


class Notifier:
    def __init__(self, builders: dict[str, Callable[[ConsumedEvent], list[Delivery]]], inbox: Channel,
                 channels: Sequence[Channel], max_age: dt.timedelta):
        self._builders = builders
        self._inbox = inbox
        self._channels = channels
        self._max_age = max_age

    def handlers(self) -> dict:
        return {name: (lambda event, build=build: self.notify(event, build)) for name, build in self._builders.items()}

    def notify(self, event: ConsumedEvent, build: Callable[[ConsumedEvent], list[Delivery]]) -> Outcome:
        if not order_of(event).order_id:
            raise ValueError(f"{event.envelope.event_type} without an order id")
        if clock.now() - event.envelope.occurred_at.ToDatetime(dt.UTC) > self._max_age:
            return Outcome.SKIPPED
        # the messages' own events carry the trace of the event that caused them (the kit's
        # consumer runs every handler inside it)
        deliveries = build(event)
        stored = [self._deliver(*delivery) for delivery in deliveries]
        if not deliveries:
            return Outcome.SKIPPED
        return Outcome.APPLIED if any(stored) else Outcome.DUPLICATE

    def _deliver(self, recipient, message) -> bool:
        if not self._inbox.deliver(recipient, message):
            return False  # stored before: this is a re-delivered event
        for channel in self._channels:
            channel.deliver(recipient, message)
        return True
