"""MongoDB connection: one client per process, shared by mongoengine models and raw pymongo."""

from __future__ import annotations

import mongoengine
from pymongo.database import Database


def connect(uri: str, database: str, app_name: str) -> Database:
    """Connects the default mongoengine alias and returns the raw pymongo database.

    Short server-selection timeouts turn an unreachable database into a quick UNAVAILABLE
    instead of a request hanging for 30 s.
    """
    mongoengine.disconnect()
    mongoengine.connect(
        db=database, host=uri, alias="default", appname=app_name, tz_aware=True,
        uuidRepresentation="standard", serverSelectionTimeoutMS=5000, connectTimeoutMS=5000,
        socketTimeoutMS=30000, maxPoolSize=64,
    )
    return mongoengine.get_db()


def ping(db: Database) -> bool:
    try:
        return db.client.admin.command("ping").get("ok") == 1
    except Exception:  # any failure means "not reachable now"
        return False
