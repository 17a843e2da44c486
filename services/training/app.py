"""Builds the training domain from settings."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from services.common.checkin import CheckinCodes
from services.common.config import Env
from services.common.events import EventSource
from services.common.readmodels import RegistrationReadModels

from .attendance import Attendance
from .catalog import CourseCatalog
from .certifications import CertificationRegistry
from .directory import Directory
from .enrollment import Enrollment
from .models import ALL_MODELS
from .quiz import Quizzes
from .records import TrainingRecords
from .rotation import Rotation
from .sessions import SessionBook
from .trainers import TrainerPool


def extra_settings(env: Env) -> dict:
    return {
        "checkin_code_key": env.key_bytes("CHECKIN_CODE_KEY"),
        "checkin_period_seconds": env.int("CHECKIN_CODE_PERIOD_SECONDS", 60, minimum=10),
        "quiz_window_hours": env.int("TRAINING_QUIZ_WINDOW_HOURS", 72, minimum=1),
        "close_sessions_interval_seconds": env.float("TRAINING_CLOSE_SESSIONS_INTERVAL_SECONDS", 60.0),
        "expire_certifications_interval_seconds": env.float("TRAINING_EXPIRE_CERTIFICATIONS_INTERVAL_SECONDS", 60.0),
        "rotation_metrics_interval_seconds": env.float("TRAINING_ROTATION_METRICS_INTERVAL_SECONDS", 300.0),
    }


@dataclass
class Training:
    catalog: CourseCatalog
    trainers: TrainerPool
    sessions: SessionBook
    enrollment: Enrollment
    attendance: Attendance
    quizzes: Quizzes
    certifications: CertificationRegistry
    rotation: Rotation
    records: TrainingRecords


def build(settings, registry: RegistrationReadModels) -> Training:
    extra = settings.extra
    events = EventSource("training")
    directory = Directory(registry)
    catalog = CourseCatalog(directory, events)
    trainers = TrainerPool(directory, events)
    sessions = SessionBook(directory, catalog, trainers, events, dt.timedelta(hours=extra["quiz_window_hours"]))
    certifications = CertificationRegistry(directory, events)
    rotation = Rotation(directory, events)
    return Training(
        catalog=catalog, trainers=trainers, sessions=sessions, enrollment=Enrollment(sessions, directory),
        attendance=Attendance(sessions, CheckinCodes(extra["checkin_code_key"], extra["checkin_period_seconds"])),
        quizzes=Quizzes(sessions), certifications=certifications, rotation=rotation,
        records=TrainingRecords(directory, catalog, certifications, rotation, events),
    )


def ensure_indexes(registry: RegistrationReadModels) -> None:
    registry.ensure_indexes()
    for model in ALL_MODELS:
        model.ensure_indexes()
