"""python -m tests.bench [name ...] [--quick]: run the benches, print a table, save JSON.

Each bench_<name>.py module measures its numbers against the real broker and database and puts
them beside a bare floor measured in the same run (floors.py).
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import json
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
                print(f"  {m.name:<46} {m.value:>12,.2f} {m.unit:<10} {floor:<32} {ratio:<14} "
                      f"{m.budget:<24} {verdict}", flush=True)
    finally:
        ctx.close()
    out = ROOT / "bench-results"
    out.mkdir(exist_ok=True)
    path = out / f"bench-{dt.datetime.now().strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps({"cpus": __import__("os").cpu_count(), "quick": args.quick,
                                "results": [m.as_dict() for m in results]}, indent=2, ensure_ascii=False))
    print(f"\nsaved {path.relative_to(ROOT)}")
    return 0 if all(m.ok is not False for m in results) else 1


if __name__ == "__main__":
    sys.exit(main())
