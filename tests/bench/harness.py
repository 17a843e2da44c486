"""The bench harness: closed-loop load from several processes, floors, and results.

A bench module `tests/bench/bench_<name>.py` exposes `run(ctx: BenchContext) -> list[Measurement]`.
"""

from __future__ import annotations

import importlib
import multiprocessing
import os
import statistics
import threading
import time
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
    for w in workers:
        w.start()
    latencies: list[float] = []
    errors = 0
    for _ in workers:
        lat, err = queue.get(timeout=seconds + 120)
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
        """A started service process on bench ports, stopped when the run ends."""
        proc = self.stack.service(name, log_name=f"bench-{name}", **options)
        proc.start()
        self._procs.append(proc)
        proc.wait_serving(90)
        return proc

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
