"""The bench harness: closed-loop load from several processes, floors, and results.

A bench module `tests/bench/bench_<name>.py` exposes `run(ctx: BenchContext) -> list[Measurement]`.
"""

from __future__ import annotations

import collections
import importlib
import multiprocessing
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from dataclasses import asdict, dataclass, field

from tests.support.stack import Stack


@dataclass
class LoadResult:
    calls: int
    errors: int
    seconds: float
    latencies_ms: list[float] = field(repr=False, default_factory=list)

    @property
    def per_second(self) -> float:
        return self.calls / self.seconds if self.seconds else 0.0

    def percentile(self, p: float) -> float:
        if not self.latencies_ms:
            return float("nan")
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]

    def summary(self) -> dict:
        return {"calls": self.calls, "errors": self.errors, "per_second": round(self.per_second, 1),
                "p50_ms": round(self.percentile(50), 2), "p95_ms": round(self.percentile(95), 2),
                "p99_ms": round(self.percentile(99), 2)}


@dataclass
class Measurement:
    """One number, the floor it is compared with, and the budget it must meet."""

    name: str
    value: float
    unit: str
    floor_name: str = ""
    floor_value: float | None = None
    budget: str = ""
    ok: bool | None = None
    details: dict = field(default_factory=dict)

    @property
    def ratio(self) -> float | None:
        if not self.floor_value:
            return None
        return self.value / self.floor_value

    def as_dict(self) -> dict:
        return {**asdict(self), "ratio": self.ratio}


def _worker(factory_path: str, args: tuple, seconds: float, threads: int, start_at: float, queue) -> None:
    module_name, _, function = factory_path.partition(":")
    factory = getattr(importlib.import_module(module_name), function)
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()

    def loop() -> None:
        call = factory(*args)
        own: list[float] = []
        while time.time() < start_at:
            time.sleep(0.001)
        deadline = start_at + seconds
        while time.time() < deadline:
            began = time.perf_counter()
            try:
                call()
            except Exception:
                with lock:
                    errors[0] += 1
                continue
            own.append((time.perf_counter() - began) * 1000)
        with lock:
            latencies.extend(own)

    pool = [threading.Thread(target=loop) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    queue.put((latencies, errors[0]))


def closed_loop(factory_path: str, args: tuple = (), *, seconds: float = 10.0, processes: int = 2,
                threads: int = 8) -> LoadResult:
    """Runs `factory(*args)()` as fast as answers come, from processes × threads callers.

    `factory_path` is "module:function"; the function runs in each caller thread and returns
    the zero-argument callable to time (so each caller builds its own stub/connection).
    """
    ctx = multiprocessing.get_context("spawn")  # fork and gRPC's threads do not mix
    queue = ctx.Queue()
    start_at = time.time() + 3.0  # time for every process to import and connect
    workers = [ctx.Process(target=_worker, args=(factory_path, args, seconds, threads, start_at, queue))
               for _ in range(processes)]
    return _gather(workers, queue, seconds, wait=seconds + 120)


def _paced_worker(factory_path: str, args: tuple, rate: float, seconds: float, threads: int, start_at: float,
                  queue) -> None:
    """`rate` calls a second from `threads` callers, each call at its scheduled time; its latency
    counts from that time, so a slow answer delays the next one's start and shows in both."""
    module_name, _, function = factory_path.partition(":")
    factory = getattr(importlib.import_module(module_name), function)
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()
    total = int(rate * seconds)

    def loop(k: int) -> None:
        call = factory(*args)
        own: list[float] = []
        for n in range(k, total, threads):
            scheduled = start_at + n / rate
            while (wait := scheduled - time.time()) > 0:
                time.sleep(wait)
            try:
                call()
            except Exception:
                with lock:
                    errors[0] += 1
                continue
            own.append((time.time() - scheduled) * 1000)
        with lock:
            latencies.extend(own)

    pool = [threading.Thread(target=loop, args=(k,)) for k in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    queue.put((latencies, errors[0]))


def paced(factory_path: str, args: tuple = (), *, rate: float, seconds: float = 10.0, processes: int = 2,
          threads: int = 16) -> LoadResult:
    """Open-loop load: `rate` calls a second in all (not as fast as answers come), for latency at a
    given throughput; `calls` may fall short of rate × seconds when answers fall behind."""
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    start_at = time.time() + 3.0
    workers = [ctx.Process(target=_paced_worker, args=(factory_path, args, rate / processes, seconds, threads,
                                                       start_at + i / rate, queue)) for i in range(processes)]
    return _gather(workers, queue, seconds, wait=seconds + 300)


def _gather(workers, queue, seconds: float, wait: float) -> LoadResult:
    """Starts the caller processes and sums what each reports."""
    for w in workers:
        w.start()
    latencies: list[float] = []
    errors = 0
    for _ in workers:
        lat, err = queue.get(timeout=wait)
        latencies += lat
        errors += err
    for w in workers:
        w.join(30)
    return LoadResult(calls=len(latencies), errors=errors, seconds=seconds, latencies_ms=latencies)


class BenchContext:
    """Servers, service processes and cached floors for one `make bench` run."""

    def __init__(self, quick: bool = False):
        self.stack = Stack()
        self.quick = quick
        self.seconds = 5.0 if quick else 15.0
        self._procs = []
        self._floors: dict[str, object] = {}

    def service(self, name: str, **options):
        """A started service process on bench ports, stopped when the run ends; with several gRPC
        processes (GRPC_PROCESSES), once every one of them says it is serving."""
        proc = self.stack.service(name, log_name=f"bench-{name}", **options)
        for earlier in self._procs:  # an earlier bench's process on these ports makes way
            if earlier.definition.grpc_port == proc.definition.grpc_port:
                earlier.stop()
        processes = int((options.get("extra_env") or {}).get("GRPC_PROCESSES", "1"))
        serving = self._serving_lines(proc)
        proc.start()
        self._procs.append(proc)
        proc.wait_serving(90)
        deadline = time.monotonic() + 90
        while self._serving_lines(proc) < serving + processes and time.monotonic() < deadline:
            time.sleep(0.2)
        return proc

    @staticmethod
    def _serving_lines(proc) -> int:
        return proc.log_path.read_text().count('"msg": "serving"') if proc.log_path.exists() else 0

    def floor(self, name: str):
        """Bare-floor measurements, each taken once per run (see floors.py)."""
        if name not in self._floors:
            from tests.bench import floors

            self._floors[name] = getattr(floors, name)(self)
        return self._floors[name]

    def close(self) -> None:
        for proc in reversed(self._procs):
            proc.stop()


def cpu_count() -> int:
    return os.cpu_count() or 1


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


class Profile:
    """py-spy sampling a service process and its gRPC workers while a bench loads it (only the
    threads holding the GIL: where its CPU goes). `top()` is what an over-budget figure prints
    beside itself."""

    def __init__(self, pid: int, seconds: float):
        spy = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which("py-spy")
        self._out = Path(tempfile.mkdtemp(prefix="bench-profile-")) / "profile.txt"
        self._proc = None if spy is None else subprocess.Popen(
            [spy, "record", "--pid", str(pid), "--subprocesses", "--duration", str(max(1, int(seconds))), "--rate", "200",
             "--gil",
             "--nonblocking", "--format", "raw", "--output", str(self._out)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def top(self, n: int = 8) -> list[str]:
        """The functions with the most samples of their own, as "12.3% function (file:line)"."""
        if self._proc is None:
            return ["(py-spy not installed: no profile)"]
        self._proc.wait(120)
        own: collections.Counter[str] = collections.Counter()
        for line in self._out.read_text().splitlines() if self._out.exists() else ():
            stack, _, count = line.rpartition(" ")
            own[stack.rsplit(";", 1)[-1]] += int(count)
        total = sum(own.values())
        shutil.rmtree(self._out.parent, ignore_errors=True)
        return [f"{count * 100 / total:4.1f}% {frame}" for frame, count in own.most_common(n)] if total else []
