"""Builds the notification domain from settings."""

from __future__ import annotations

import datetime as dt
import urllib.parse
from dataclasses import dataclass

from pymongo.database import Database

from services.common.auth import TokenVerifier
from services.common.config import Env, Settings
from services.common.events import EventSource

from .admins import UnitAdmins
from .channels import ExternalChannel, WebhookChannel
from .inbox import Inbox
from .messages import OrderMessages
from .models import AGGREGATES
from .notifier import Notifier
from .watch import WatchHub, Watching

CHANNELS = ("inbox", "webhook")
# gRPC workers kept free for unary calls however many streams are open
WORKERS_FOR_CALLS = 8


def extra_settings(env: Env) -> dict:
    channels = [c.strip() for c in env.str("NOTIFY_CHANNELS", "inbox").split(",") if c.strip()]
    unknown = sorted(set(channels) - set(CHANNELS))
    if unknown:
        env.problems.append(f"NOTIFY_CHANNELS: unknown channel(s) {', '.join(unknown)}; known: {', '.join(CHANNELS)}")
    if "inbox" not in channels:
        env.problems.append("NOTIFY_CHANNELS must include inbox: the other channels deliver what the inbox stored")
    webhook_url = env.str("NOTIFY_WEBHOOK_URL", "")
    if "webhook" in channels and urllib.parse.urlsplit(webhook_url).scheme not in ("http", "https"):
        env.problems.append("NOTIFY_WEBHOOK_URL must be an http(s) URL when NOTIFY_CHANNELS includes webhook")
    workers = env.int("GRPC_WORKERS", Settings.grpc_workers, minimum=1)
    max_streams = env.int("NOTIFY_MAX_STREAMS", max(1, workers - WORKERS_FOR_CALLS), minimum=1)
    if max_streams > workers - WORKERS_FOR_CALLS:
        env.problems.append(f"NOTIFY_MAX_STREAMS={max_streams} leaves too few of GRPC_WORKERS={workers} for calls: "
                            f"at most GRPC_WORKERS - {WORKERS_FOR_CALLS}")
    return {
        "channels": channels,
        "webhook_url": webhook_url,
        # a deadline per attempt, and how many attempts after the first
        "webhook_timeout_seconds": env.float("NOTIFY_WEBHOOK_TIMEOUT_SECONDS", 3.0),
        "webhook_retries": env.int("NOTIFY_WEBHOOK_RETRIES", 2, minimum=0),
        "webhook_queue_size": env.int("NOTIFY_WEBHOOK_QUEUE_SIZE", 1000, minimum=1),
        # live streams: the heartbeat (unread count) interval and how many one process serves
        "heartbeat_seconds": env.float("NOTIFY_HEARTBEAT_SECONDS", 20.0),
        "max_streams": max_streams,
        # events older than this make no message (a first install reads the topics from their start)
        "max_event_age_hours": env.int("NOTIFY_MAX_EVENT_AGE_HOURS", 72, minimum=1),
    }


@dataclass
class Notification:
    admins: UnitAdmins
    inbox: Inbox
    channels: list[ExternalChannel]
    notifier: Notifier
    hub: WatchHub
    watching: Watching


def external_channels(extra: dict) -> list[ExternalChannel]:
    """The configured channels besides the inbox."""
    channels: list[ExternalChannel] = []
    if "webhook" in extra["channels"]:
        channels.append(WebhookChannel(extra["webhook_url"], timeout_seconds=extra["webhook_timeout_seconds"],
                                       retries=extra["webhook_retries"], queue_size=extra["webhook_queue_size"]))
    return channels


def build(settings: Settings, db: Database, verifier: TokenVerifier) -> Notification:
    extra = settings.extra
    admins = UnitAdmins(db)
    inbox = Inbox(EventSource("notification"))
    channels = external_channels(extra)
    messages = OrderMessages(admins.of_unit, inbox.dispatched_to)
    notifier = Notifier(messages.builders(), inbox, channels, dt.timedelta(hours=extra["max_event_age_hours"]))
    hub = WatchHub(extra["max_streams"])
    return Notification(admins=admins, inbox=inbox, channels=channels, notifier=notifier, hub=hub,
                        watching=Watching(hub, verifier, inbox.unread, extra["heartbeat_seconds"]))


def ensure_indexes(domain: Notification) -> None:
    for model in AGGREGATES:
        model.ensure_indexes()
    domain.admins.ensure_indexes()
