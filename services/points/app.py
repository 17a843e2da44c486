"""Builds the points domain from settings."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import Gauge

from services.common.config import Env, pii_vault
from services.common.events import EventSource
from services.common.exports import ExportJobs
from services.common.fonts import CjkFont, cjk_font
from services.common.pii import PiiVault

from . import crashpoints
from .certificate_export import START_CERTIFICATES_EXPORT, CertificatesSource
from .certificates import Certificates
from .commendations import Commendations
from .directory import Directory
from .exports import START_HOURS_EXPORT, HoursSource
from .grading import Grading, GradingFacts
from .ledger import BOOK_FIELD, OWNER_DEADLINE_SECONDS, Ledger
from .models import ALL_MODELS, Account
from .monthly_report import START_MONTHLY_REPORT_EXPORT, MonthlyReports, MonthlyReportSource
from .owners import Owners
from .perks import Perks
from .rulebook import RuleBook
from .scorecard_export import START_SCORECARD_EXPORT, ScorecardSource
from .scorecards import Boards, Facts
from .store import Store

SERVICE_TIME_BALANCE = Gauge("points_service_time_balance_seconds", "Service time held in the accounts of a district, by book "
                      "(verified, manual, training)", ["district_id", "book"])
POINTS_BALANCE = Gauge("points_balance_points", "Points held in the accounts of a district", ["district_id"])


def extra_settings(env: Env) -> dict:
    recovery_after = env.float("POINTS_RECOVERY_AFTER_SECONDS", 4 * OWNER_DEADLINE_SECONDS)
    if recovery_after < 2 * OWNER_DEADLINE_SECONDS:
        # recovery must never act on a posting or redemption whose owner may still be working on it
        env.problems.append(f"POINTS_RECOVERY_AFTER_SECONDS={recovery_after:g} must be at least "
                            f"{2 * OWNER_DEADLINE_SECONDS:g} (twice a request's deadline)")
    crash_at = env.str(crashpoints.ENV, "")
    if crash_at and crash_at not in crashpoints.STEPS:
        env.problems.append(f"{crashpoints.ENV}={crash_at!r} is none of {', '.join(crashpoints.STEPS)}")
    return {
        "job_interval_seconds": env.float("POINTS_JOB_INTERVAL_SECONDS", 30.0),
        "recovery_interval_seconds": env.float("POINTS_RECOVERY_INTERVAL_SECONDS", 2.0),
        "recovery_after_seconds": recovery_after,
        "ledger_batch_records": env.int("POINTS_LEDGER_BATCH_RECORDS", 2000, minimum=1),
        "ledger_group": env.str("POINTS_LEDGER_GROUP", "points-ledger"),
        # certificates and scorecards as PDF: the font is checked now, not at the first export
        "cjk_font": cjk_font(env),
        # where the app is served: a certificate's QR code opens its 证明核验 page there
        "public_app_url": env.str("PUBLIC_APP_URL", "http://127.0.0.1:8080/app"),
        # 爱心商家' contact numbers are encrypted with the platform's personal-data keys
        "pii_vault": pii_vault(env),
    }


@dataclass
class Points:
    directory: Directory
    rules: RuleBook
    ledger: Ledger
    store: Store
    facts: Facts
    boards: Boards
    certificates: Certificates
    commendations: Commendations
    exports: ExportJobs
    grading_facts: GradingFacts
    grading: Grading
    monthly: MonthlyReports
    perks: Perks

    def recover(self, older_than_seconds: float) -> int:
        """Ledger postings first: the store's recovery reads their outcome. Once a dead process's
        work is ended, its lease goes, and holds it left are dropped."""
        done = self.ledger.recover_postings(older_than_seconds) + self.store.recover(older_than_seconds)
        if self.ledger.owners.bury_dead():
            done += self.store.drop_stale_holds()
        return done


def build(db, font: CjkFont, public_app_url: str, vault: PiiVault) -> Points:
    events = EventSource("points")
    directory = Directory(db)
    rules = RuleBook()
    ledger = Ledger(rules, directory, events, Owners(db["ledger_owners"]))
    facts = Facts(directory)
    boards = Boards(directory, rules, facts)
    grading_facts = GradingFacts()
    grading = Grading(directory, rules, boards, grading_facts, events)
    commendations = Commendations(directory, events)
    certificates = Certificates(directory, events, commendations)
    monthly = MonthlyReports(directory, facts)
    perks = Perks(directory, events, vault, ledger, rules)
    exports = ExportJobs(db, "points", [HoursSource(directory), ScorecardSource(directory, grading, font),
                                        MonthlyReportSource(monthly),
                                        CertificatesSource(directory, certificates, font, public_app_url)],
                         {HoursSource.kind: START_HOURS_EXPORT, ScorecardSource.kind: START_SCORECARD_EXPORT,
                          MonthlyReportSource.kind: START_MONTHLY_REPORT_EXPORT,
                          CertificatesSource.kind: START_CERTIFICATES_EXPORT})
    return Points(directory=directory, rules=rules, ledger=ledger, store=Store(ledger, directory, events, perks),
                  facts=facts, boards=boards, certificates=certificates,
                  commendations=commendations, exports=exports, grading_facts=grading_facts, grading=grading,
                  monthly=monthly, perks=perks)


def ensure_indexes(db, directory: Directory) -> None:
    for model in ALL_MODELS:
        model.ensure_indexes()
    directory.ensure_indexes()
    ExportJobs.ensure_indexes(db)


def publish_balance_totals() -> int:
    """Balance totals per district and book, for /metrics in base units: hours books in seconds
    (stored as minutes), points as points (one $sum per aggregation: FerretDB computes only the
    first accumulator of a $group)."""
    accounts = Account.collection()
    for field in BOOK_FIELD.values():
        for row in accounts.aggregate([{"$group": {"_id": "$district_id", "total": {"$sum": f"${field}"}}}]):
            if field == "points":
                POINTS_BALANCE.labels(row["_id"]).set(row["total"])
            else:
                SERVICE_TIME_BALANCE.labels(row["_id"], field.removesuffix("_minutes")).set(row["total"] * 60)
    return 0
