"""Starts, watches and stops the Wenming Cloud service processes on one machine.

    python infra/local/launcher.py run     # foreground: start all, seed the demo district, Ctrl-C stops
    python infra/local/launcher.py start   # background: returns once every service is SERVING
    python infra/local/launcher.py stop
    python infra/local/launcher.py status

Tests import this module to start services on their own ports and databases.
Expects KAFKA_BOOTSTRAP_SERVERS and MONGODB_URI in the environment (stack.sh env prints them).
"""

from __future__ import annotations

import argparse
import base64
import fcntl
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PYTHON = sys.executable


@dataclass(frozen=True)
class ServiceDef:
    name: str
    grpc_port: int
    http_port: int

    @property
    def http_only(self) -> bool:
        """The gateway serves HTTP only; its readiness is /readyz (every upstream SERVING)."""
        return self.name == "gateway"

    @property
    def module(self) -> str:
        return f"services.{self.name}"

    @property
    def built(self) -> bool:
        return (ROOT / "services" / self.name / "__main__.py").exists()


# Local ports from docs/design.md §4; each overridable by <NAME>_GRPC_PORT / <NAME>_HTTP_PORT.
SERVICES = [
    ServiceDef("registration", 50051, 8081),
    ServiceDef("ordering", 50052, 8082),
    ServiceDef("points", 50053, 8083),
    ServiceDef("training", 50054, 8084),
    ServiceDef("media", 50055, 8085),
    ServiceDef("notification", 50056, 8086),
    ServiceDef("rollup", 50057, 8087),
    ServiceDef("gateway", 50050, 8080),
]


def with_env_ports(defs: list[ServiceDef]) -> list[ServiceDef]:
    out = []
    for d in defs:
        prefix = d.name.upper()
        out.append(ServiceDef(d.name, int(os.environ.get(f"{prefix}_GRPC_PORT", d.grpc_port)),
                              int(os.environ.get(f"{prefix}_HTTP_PORT", d.http_port))))
    return out


def ensure_secrets(secrets_dir: Path) -> dict[str, str]:
    """Development keys, created once per data directory. Production keys come from Secrets."""
    sys.path.insert(0, str(ROOT))
    from services.common.auth import generate_keypair_pem

    secrets_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(secrets_dir, 0o700)
    private, public = secrets_dir / "jwt-private.pem", secrets_dir / "jwt-public.pem"
    env = {"JWT_PRIVATE_KEY_FILE": str(private), "JWT_PUBLIC_KEY_FILE": str(public)}
    # the test workers all start at once on a fresh data directory: without the lock, two of them
    # could each write half of a key pair, and every token would be refused
    with open(secrets_dir / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not private.exists():
            private_pem, public_pem = generate_keypair_pem()
            public.write_text(public_pem)
            private.write_text(private_pem)
            os.chmod(private, 0o600)
        for name in ("PII_ENCRYPTION_KEY", "PII_BLIND_INDEX_KEY", "CHECKIN_CODE_KEY"):
            path = secrets_dir / name.lower()
            if not path.exists():
                path.write_text(base64.b64encode(os.urandom(32)).decode())
                os.chmod(path, 0o600)
            env[f"{name}_FILE"] = str(path)
    return env


@dataclass
class ServiceProcess:
    definition: ServiceDef
    env: dict[str, str]
    log_path: Path
    process: subprocess.Popen | None = field(default=None, repr=False)

    @property
    def grpc_target(self) -> str:
        return f"127.0.0.1:{self.definition.grpc_port}"

    @property
    def http_base(self) -> str:
        return f"http://127.0.0.1:{self.definition.http_port}"

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [PYTHON, "-m", self.definition.module], cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,  # Ctrl-C in the terminal reaches the launcher, which stops us in order
            )

    def serving(self) -> bool:
        if self.definition.http_only:
            import urllib.error
            import urllib.request

            try:
                with urllib.request.urlopen(f"{self.http_base}/readyz", timeout=1) as reply:
                    return reply.status == 200
            except (urllib.error.URLError, OSError):
                return False
        import grpc
        from grpc_health.v1 import health_pb2, health_pb2_grpc

        from services.common.config import Env, grpc_tls
        from services.common.grpc_client import channel_credentials

        tls = grpc_tls(Env(self.env))  # a service serving TLS (GRPC_TLS_*) is asked over TLS, as its own client
        options = [("grpc.ssl_target_name_override", tls.server_name)] if tls and tls.server_name else []
        opened = grpc.insecure_channel(self.grpc_target) if tls is None else \
            grpc.secure_channel(self.grpc_target, channel_credentials(tls), options=options)
        with opened as channel:
            try:
                reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=""), timeout=1)
            except grpc.RpcError:
                return False
        return reply.status == health_pb2.HealthCheckResponse.SERVING

    def wait_serving(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"{self.definition.name} exited with {self.process.returncode}; "
                                   f"see {self.log_path}:\n{tail(self.log_path)}")
            if self.serving():
                return
            time.sleep(0.2)
        raise RuntimeError(f"{self.definition.name} not SERVING after {timeout:.0f}s; see {self.log_path}:\n"
                           f"{tail(self.log_path)}")

    def stop(self, timeout: float = 15) -> int | None:
        """SIGTERM (graceful: NOT_SERVING, in-flight calls finish), SIGKILL if it lingers."""
        if self.process is None or self.process.poll() is not None:
            return None if self.process is None else self.process.returncode
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait(5)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(5)


def tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def service_env(definition: ServiceDef, *, secrets: dict[str, str], database_prefix: str,
                base: dict[str, str] | None = None, extra: dict[str, str] | None = None,
                peers: list[ServiceDef] | None = None) -> dict[str, str]:
    env = dict(os.environ if base is None else base)
    missing = [k for k in ("MONGODB_URI", "KAFKA_BOOTSTRAP_SERVERS") if not env.get(k)]
    if missing:
        raise SystemExit(f"launcher: {', '.join(missing)} not set (run through make, or eval \"$(infra/local/stack.sh env)\")")
    env.update(secrets)
    env.update(
        GRPC_PORT=str(definition.grpc_port), HTTP_PORT=str(definition.http_port),
        MONGODB_DATABASE=f"{database_prefix}{definition.name}", PYTHONUNBUFFERED="1",
        PYTHONPATH=os.pathsep.join([str(ROOT), str(ROOT / "build" / "protos" / "python")]),
    )
    for peer in peers or ():
        env.setdefault(f"{peer.name.upper()}_GRPC_TARGET", f"127.0.0.1:{peer.grpc_port}")
    if extra:
        env.update(extra)
    return env


# the district `make run` seeds (seed_demo.py), offered on the app's login page
DEMO_APP = {"APP_DISTRICT_ID": "liangzhou", "APP_DISTRICT_NAME": "凉州区"}


# the demo city above it (docs/rollup.md): its 文明办 logs in to the account district `wuwei`, which
# seed_demo bootstraps, and reads 凉州区 through the roll-up
DEMO_REGION = {"region_id": "wuwei", "name": "武威市", "districts": [{"district_id": "liangzhou", "name": "凉州区"}]}


def demo_regions() -> str:
    """ROLLUP_REGIONS of the local stack: the demo district runs in this very release."""
    prefix = os.environ.get("KAFKA_PREFIX", "")
    return json.dumps({"regions": [{**DEMO_REGION, "districts": [{**d, "kafka_prefix": prefix}
                                                                 for d in DEMO_REGION["districts"]]}]},
                      ensure_ascii=False)


def demo_clock_file(data_dir: Path) -> Path:
    """Ordering's clock offset (CLOCK_OFFSET_FILE) in the local stack: only the demo seed writes
    it, to serve orders and hold activities in the past, and removes it when done."""
    return data_dir / "run" / "ordering-clock-offset"


# gRPC processes per service in the local stack (GRPC_PROCESSES; the chart sets the same): one
# Python process serves on one core at most. Notification's streams wait on the network: one.
DEV_GRPC_PROCESSES = {"registration": 2, "ordering": 2, "points": 2, "training": 2, "media": 2}


def processes(data_dir: Path, database_prefix: str = "wenming_") -> list[ServiceProcess]:
    defs = [d for d in with_env_ports(SERVICES) if d.built]
    secrets = ensure_secrets(data_dir / "secrets")
    extra = {name: {"GRPC_PROCESSES": str(n)} for name, n in DEV_GRPC_PROCESSES.items()}
    extra["gateway"] = DEMO_APP
    extra["rollup"] = {"ROLLUP_REGIONS": demo_regions()}
    extra["ordering"]["CLOCK_OFFSET_FILE"] = str(demo_clock_file(data_dir))
    # a PDF certificate's QR code opens the app's 证明核验 page: on this machine, the gateway's port
    gateway = next(d for d in defs if d.name == "gateway")
    extra["points"].setdefault("PUBLIC_APP_URL",
                               os.environ.get("PUBLIC_APP_URL") or f"http://127.0.0.1:{gateway.http_port}/app")
    return [ServiceProcess(d, service_env(d, secrets=secrets, database_prefix=database_prefix, peers=defs,
                                          extra=extra.get(d.name)),
                           data_dir / "logs" / f"{d.name}.log") for d in defs]


# ---- commands ----

def _pidfile(data_dir: Path, name: str) -> Path:
    return data_dir / "run" / f"{name}.pid"


def start_all(data_dir: Path) -> list[ServiceProcess]:
    procs = processes(data_dir)
    for proc in procs:
        pidfile = _pidfile(data_dir, proc.definition.name)
        if pidfile.exists() and _alive(int(pidfile.read_text())):
            raise SystemExit(f"{proc.definition.name} already runs (pid {pidfile.read_text().strip()}); "
                             "'make down' first")
    demo_clock_file(data_dir).unlink(missing_ok=True)  # left by a seed that was interrupted
    print(f"starting {', '.join(p.definition.name for p in procs)} (logs in {data_dir / 'logs'})", flush=True)
    for proc in procs:
        proc.start()
        pidfile = _pidfile(data_dir, proc.definition.name)
        pidfile.parent.mkdir(parents=True, exist_ok=True)
        pidfile.write_text(str(proc.process.pid))
    try:
        for proc in procs:
            proc.wait_serving()
            grpc_part = "" if proc.definition.http_only else f"gRPC {proc.grpc_target}  "
            print(f"  {proc.definition.name:<13} SERVING  {grpc_part}HTTP {proc.http_base}", flush=True)
    except RuntimeError:
        stop_procs(procs, data_dir)
        raise
    return procs


def stop_procs(procs: list[ServiceProcess], data_dir: Path) -> None:
    for proc in reversed(procs):
        proc.stop()
        _pidfile(data_dir, proc.definition.name).unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return True
    except OSError:
        return False


def stop_detached(data_dir: Path) -> None:
    for definition in reversed(SERVICES):
        pidfile = _pidfile(data_dir, definition.name)
        if not pidfile.exists():
            continue
        pid = int(pidfile.read_text())
        if _alive(pid):
            os.kill(pid, signal.SIGTERM)
            for _ in range(150):
                if not _alive(pid):
                    break
                time.sleep(0.1)
            else:
                os.kill(pid, signal.SIGKILL)
            print(f"  {definition.name} stopped")
        pidfile.unlink()


def status(data_dir: Path) -> None:
    for proc in processes(data_dir):
        pidfile = _pidfile(data_dir, proc.definition.name)
        running = pidfile.exists() and _alive(int(pidfile.read_text()))
        state = ("SERVING" if proc.serving() else "NOT SERVING") if running else "stopped"
        print(f"{proc.definition.name:<13} {state:<12} gRPC {proc.grpc_target}  HTTP {proc.http_base}")


def main() -> int:
    parser = argparse.ArgumentParser(description="Run the Wenming Cloud services locally.")
    parser.add_argument("command", choices=["run", "start", "stop", "status"])
    parser.add_argument("--data-dir", default=os.environ.get("WENMING_DATA", str(ROOT / ".data")))
    parser.add_argument("--no-seed", action="store_true", help="do not seed the demo district")
    args = parser.parse_args()
    data_dir = Path(args.data_dir)

    if args.command == "stop":
        stop_detached(data_dir)
        return 0
    if args.command == "status":
        status(data_dir)
        return 0

    procs = start_all(data_dir)
    if not args.no_seed:
        import seed_demo

        seed_demo.seed(procs)
    if args.command == "start":
        return 0
    stopping = []
    signal.signal(signal.SIGINT, lambda *_: stopping.append(1))
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(1))
    print("running; Ctrl-C stops everything", flush=True)
    while not stopping:
        for proc in procs:
            if proc.process.poll() is not None:
                print(f"{proc.definition.name} exited ({proc.process.returncode}); see {proc.log_path}:\n"
                      f"{tail(proc.log_path)}", flush=True)
                stopping.append(1)
        time.sleep(0.5)
    print("\nstopping services…", flush=True)
    stop_procs(procs, data_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
