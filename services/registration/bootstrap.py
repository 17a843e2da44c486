"""python -m services.registration.bootstrap: create a district's center and its first admin.

Every other unit and account is created through the API by an admin; this is the one door in.
Idempotent: running it again with the same district keeps the existing center and reports an
existing admin instead of failing.

    python -m services.registration.bootstrap --district liangzhou \\
        --center-name 凉州区新时代文明实践中心 --admin-username center-admin --admin-password '...'
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from services.common import mongo
from services.common.config import ConfigError, load_settings
from services.common.errors import AlreadyExists, DomainError
from services.common.events import set_kafka_prefix
from wenming.registration.v1 import registration_pb2 as pb

from .app import build, ensure_indexes, extra_settings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--district", required=True, help="district id, e.g. liangzhou")
    parser.add_argument("--center-name", required=True)
    parser.add_argument("--admin-username", required=True)
    secret = parser.add_mutually_exclusive_group(required=True)
    secret.add_argument("--admin-password", help="the first admin's password (visible in the process list)")
    secret.add_argument("--admin-password-file", help="a file holding it (a mounted Secret)")
    parser.add_argument("--admin-name", default="中心管理员")
    args = parser.parse_args(argv)
    if args.admin_password_file:
        try:
            args.admin_password = Path(args.admin_password_file).read_text(encoding="utf-8").strip()
        except OSError as exc:
            print(f"cannot read --admin-password-file: {exc.strerror}", file=sys.stderr)
            return 2
    try:
        settings = load_settings("registration", extra=extra_settings)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    set_kafka_prefix(settings.kafka_prefix)  # the outbox entries it writes name the release's topic
    mongo.connect(settings.mongodb_uri, settings.mongodb_database, "registration-bootstrap", tls=settings.mongodb_tls)
    ensure_indexes()
    domain = build(settings)
    try:
        center = domain.units.create_center(args.district, args.center_name)
        print(f"center {center.id} ({center.name}) in district {args.district}")
        try:
            domain.accounts.create_admin(None, pb.CreateAdminAccountRequest(
                unit_id=center.id, username=args.admin_username, password=args.admin_password,
                display_name=args.admin_name), district_id=args.district)
            print(f"admin account {args.admin_username!r} created")
        except AlreadyExists:
            print(f"admin account {args.admin_username!r} already exists; left unchanged")
    except DomainError as exc:
        print(f"bootstrap refused: {exc.message}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
