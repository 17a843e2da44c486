"""Gateway: REST/JSON for mini-programs and browsers in front of the gRPC services, and the
operations dashboard (指挥调度中心)."""
