"""Builds the ordering domain from settings."""

from __future__ import annotations

from dataclasses import dataclass

from pymongo.database import Database

from services.common.checkin import CheckinCodes
from services.common.config import Env, pii_vault
from services.common.events import EventSource

from .activities import ActivityBoard
from .credit import CreditBook
from .index import OrderIndex
from .matching import Matcher
from .menu import MenuBook
from .models import ALL_MODELS
from .orders import OrderDesk
from .plans import ActivityPlans
from .policy import Policies
from .projects import CompetitionDesk, ProjectDesk
from .queries import OrderQueries
from .readmodels import Certifications, Registry
from .taxonomy import Taxonomies
from .trends import OrderTrends


def extra_settings(env: Env) -> dict:
    return {
        "checkin_code_key": env.key_bytes("CHECKIN_CODE_KEY"),
        # orders' addresses and contact numbers are encrypted with the platform's personal-data keys
        "pii_vault": pii_vault(env),
        "checkin_code_period_seconds": env.int("CHECKIN_CODE_PERIOD_SECONDS", 60, minimum=10),
        # on-site time beyond the planned duration that still counts (then the hours are capped)
        "hours_tolerance_minutes": env.int("HOURS_TOLERANCE_MINUTES", 30, minimum=0),
        "rating_window_days": env.int("RATING_WINDOW_DAYS", 7, minimum=1),
        # how often the SLA escalation and auto-close jobs look for due orders
        "scheduler_interval_seconds": env.float("SCHEDULER_INTERVAL_SECONDS", 10.0),
    }


@dataclass
class Ordering:
    index: OrderIndex
    registry: Registry
    certifications: Certifications
    taxonomies: Taxonomies
    menu: MenuBook
    policies: Policies
    orders: OrderDesk
    queries: OrderQueries
    trends: OrderTrends
    activities: ActivityBoard
    projects: ProjectDesk
    competitions: CompetitionDesk
    credit: CreditBook
    plans: ActivityPlans


def build(settings, db: Database) -> Ordering:
    extra = settings.extra
    events = EventSource("ordering")
    codes = CheckinCodes(extra["checkin_code_key"], extra["checkin_code_period_seconds"])
    tolerance = extra["hours_tolerance_minutes"]
    registry = Registry(db)
    certifications = Certifications(db)
    taxonomies = Taxonomies(events)
    menu = MenuBook(registry, taxonomies, events)
    policies = Policies(extra["rating_window_days"])
    credit = CreditBook(registry, menu, events)
    matcher = Matcher(registry, certifications, credit)
    index = OrderIndex(db)
    orders = OrderDesk(registry, menu, policies, matcher, codes, events, tolerance, extra["pii_vault"], index)
    trends = OrderTrends(menu, index)
    return Ordering(index=index, registry=registry, certifications=certifications, taxonomies=taxonomies, menu=menu,
                    policies=policies,
                    orders=orders, queries=OrderQueries(orders, menu, matcher, index, trends), trends=trends,
                    activities=ActivityBoard(registry, menu, codes, events, tolerance, index),
                    projects=ProjectDesk(registry, menu, events), competitions=CompetitionDesk(registry, menu, events),
                    credit=credit, plans=ActivityPlans(registry, menu, events))


def ensure_indexes(domain: Ordering) -> None:
    for model in ALL_MODELS:
        model.ensure_indexes()
    domain.registry.ensure_indexes()
    domain.certifications.ensure_indexes()
    domain.index.ensure_indexes()
    domain.trends.ensure_indexes()
