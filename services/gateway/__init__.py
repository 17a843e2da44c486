"""Gateway: REST/JSON for the app and other systems in front of the gRPC services, and the
people-facing app itself (residents, volunteers, unit heads and the 指挥调度中心) under /app/."""
