"""python -m tests.bench [name ...] [--quick]: run the benches, print a table, save JSON.

Each bench_<name>.py module measures its numbers against the real broker and database and puts
them beside a bare floor measured in the same run (floors.py).
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import json
import os
import pkgutil
import sys
from pathlib import Path

from tests.bench.harness import BenchContext

ROOT = Path(__file__).resolve().parents[2]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="bench modules to run (default: all)")
    parser.add_argument("--quick", action="store_true", help="shorter runs (smoke check, numbers less stable)")
    args = parser.parse_args()
    available = sorted(m.name[len("bench_"):] for m in pkgutil.iter_modules([str(Path(__file__).parent)])
                       if m.name.startswith("bench_"))
    chosen = args.names or available
    unknown = set(chosen) - set(available)
    if unknown:
        print(f"unknown bench(es): {', '.join(sorted(unknown))}; available: {', '.join(available)}", file=sys.stderr)
        return 2

    ctx = BenchContext(quick=args.quick)
    results = []
    try:
        for name in chosen:
            print(f"== {name}", flush=True)
            module = importlib.import_module(f"tests.bench.bench_{name}")
            for m in module.run(ctx):
                results.append(m)
                ratio = f"{m.ratio:.2f}× floor" if m.ratio is not None else ""
                floor = f"{m.floor_name}={m.floor_value:,.1f}" if m.floor_value is not None else ""
                verdict = {True: "ok", False: "OVER BUDGET", None: ""}[m.ok]
                # the machine's load beside every figure: a busy machine lowers both number and floor
                m.details.setdefault("load_average_1min", round(os.getloadavg()[0], 2))
                print(f"  {m.name:<46} {m.value:>12,.2f} {m.unit:<10} {floor:<32} {ratio:<14} "
                      f"{m.budget:<24} {verdict:<12} load {m.details['load_average_1min']:.2f}", flush=True)
                if m.ok is False:  # never hidden: where the time went, beside the figure
                    for entry in m.details.get("profile", []):
                        print(f"      {entry}", flush=True)
    finally:
        ctx.close()
    out = ROOT / "bench-results"
    out.mkdir(exist_ok=True)
    path = out / f"bench-{dt.datetime.now().strftime('%Y%m%d-%H%M%S')}.json"
    load = os.getloadavg()
    print(f"load average: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} (1, 5, 15 min) on {os.cpu_count()} cores")
    path.write_text(json.dumps({"cpus": os.cpu_count(), "quick": args.quick, "load_average": load,
                                "results": [m.as_dict() for m in results]}, indent=2, ensure_ascii=False))
    print(f"\nsaved {path.relative_to(ROOT)}")
    return 0 if all(m.ok is not False for m in results) else 1


if __name__ == "__main__":
    sys.exit(main())
