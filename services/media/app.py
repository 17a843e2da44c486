"""Builds the media domain from settings."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from pymongo.database import Database

from services.common.config import Env
from services.common.events import EventSource
from services.common.readmodels import RegistrationReadModels

from .articles import Publishing
from .assets import AssetLibrary
from .blobs import BlobStore
from .commendations import CommendationRefs
from .honor_rolls import HonorRolls
from .images import ImageLimits, ImageProcessor
from .live_courses import LiveCourses
from .models import AGGREGATES
from .screening import Screening
from .storage import LAYOUTS, DatabaseStorage, detect_layout
from .units import Units
from .uploads import MAX_PIECE, UploadCaps, Uploader
from .work import WorkRefs

MIB = 1024 * 1024


def extra_settings(env: Env) -> dict:
    layout = env.str("MEDIA_CHUNK_LAYOUT", "auto")
    if layout not in LAYOUTS:
        env.problems.append(f"MEDIA_CHUNK_LAYOUT={layout!r} must be one of {', '.join(LAYOUTS)}")
    chunk_bytes = env.int("MEDIA_CHUNK_BYTES", 512 * 1024, minimum=64 * 1024)
    if chunk_bytes > MAX_PIECE:
        env.problems.append(f"MEDIA_CHUNK_BYTES={chunk_bytes} must be at most {MAX_PIECE} (gRPC message size)")
    return {
        "max_image_bytes": env.int("MEDIA_MAX_IMAGE_BYTES", 20 * MIB, minimum=1),
        "max_video_bytes": env.int("MEDIA_MAX_VIDEO_BYTES", 512 * MIB, minimum=1),
        "max_document_bytes": env.int("MEDIA_MAX_DOCUMENT_BYTES", 50 * MIB, minimum=1),
        "document_max_unpacked_bytes": env.int("MEDIA_DOCUMENT_MAX_UNPACKED_BYTES", 200 * MIB, minimum=1),
        "image_max_pixels": env.int("MEDIA_IMAGE_MAX_PIXELS", 40_000_000, minimum=1),
        "image_max_edge": env.int("MEDIA_IMAGE_MAX_EDGE", 4096, minimum=64),
        "thumbnail_edge": env.int("MEDIA_THUMBNAIL_EDGE", 320, minimum=16),
        "image_workers": env.int("MEDIA_IMAGE_WORKERS", 2, minimum=1),
        "chunk_bytes": chunk_bytes,
        "chunk_layout": layout,
        "spool_dir": env.str("MEDIA_SPOOL_DIR", "") or None,
        "orphan_minutes": env.int("MEDIA_ORPHAN_MINUTES", 30, minimum=1),
        "cleanup_interval_seconds": env.float("MEDIA_CLEANUP_INTERVAL_SECONDS", 300.0),
    }


@dataclass
class Media:
    registry: RegistrationReadModels
    work: WorkRefs
    blobs: BlobStore
    assets: AssetLibrary
    uploader: Uploader
    screening: Screening
    publishing: Publishing
    honor_rolls: HonorRolls
    commendations: CommendationRefs
    live_courses: LiveCourses

    def ensure_indexes(self) -> None:
        for model in AGGREGATES:
            model.ensure_indexes()
        self.registry.ensure_indexes()
        self.work.ensure_indexes()
        self.blobs.ensure_indexes()


def build(settings, db: Database) -> Media:
    extra = settings.extra
    events = EventSource("media")
    registry = RegistrationReadModels(db)
    work = WorkRefs(db)
    units = Units(registry)
    storage = DatabaseStorage(db, extra["chunk_bytes"], detect_layout(db, extra["chunk_layout"]))
    blobs = BlobStore(db, storage, dt.timedelta(minutes=extra["orphan_minutes"]))
    assets = AssetLibrary(blobs, units, work, events)
    images = ImageProcessor(ImageLimits(extra["image_max_pixels"], extra["image_max_edge"], extra["thumbnail_edge"]),
                            extra["image_workers"])
    caps = UploadCaps(extra["max_image_bytes"], extra["max_video_bytes"], extra["max_document_bytes"],
                      extra["document_max_unpacked_bytes"], extra["spool_dir"])
    screening = Screening(events)
    publishing = Publishing(units, assets, screening, events)
    commendations = CommendationRefs(db)
    return Media(
        registry=registry, work=work, blobs=blobs, assets=assets,
        uploader=Uploader(assets, blobs, units, images, caps), screening=screening, publishing=publishing,
        honor_rolls=HonorRolls(publishing, units, registry, commendations), commendations=commendations,
        live_courses=LiveCourses(units, assets, events),
    )
