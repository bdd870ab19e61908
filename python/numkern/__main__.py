"""Command line: ``python -m numkern info | bench [FAMILY ...] [--quick] [--json F] [--plot F]
[--threads N,N,... | --under-load] | train ...``."""

from __future__ import annotations

import argparse
import datetime
import importlib
import json
import platform
import sys


def _info(_args) -> int:
    import numkern

    print(json.dumps(numkern.cpu_info(), indent=2, sort_keys=True))
    return 0


def _thread_counts(text: str) -> list[int]:
    try:
        counts = sorted({int(t) for t in text.split(",")})
    except ValueError:
        raise SystemExit(f"--threads expects a comma-separated list of positive integers, got {text!r}") from None
    if not counts or counts[0] < 1:
        raise SystemExit(f"--threads expects a comma-separated list of positive integers, got {text!r}")
    return counts


def _processor_name() -> str:
    """The CPU's model name (Linux /proc/cpuinfo), or platform.processor() elsewhere."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def _bench(args) -> int:
    import numpy as np

    import numkern
    from numkern.bench import FAMILIES
    from numkern.bench._harness import plot, run_cases, write_json
    from numkern.bench._scaling import run_threads, run_under_load

    families = args.families or list(FAMILIES)
    unknown = [f for f in families if f not in FAMILIES]
    if unknown:
        print(f"unknown benchmark family {unknown}; choose from {sorted(FAMILIES)}", file=sys.stderr)
        return 2
    info = numkern.cpu_info()
    print(f"numkern {numkern.__version__}  isa={info['active']}  threads={info['num_threads']}  numpy {np.__version__}")
    rows = []
    counts = _thread_counts(args.threads) if args.threads else None
    for fam in families:
        module = importlib.import_module(FAMILIES[fam])
        cases = module.cases(args.quick)
        if counts:
            rows += run_threads(cases, counts, args.quick)
        if args.under_load:
            rows += run_under_load(cases, args.quick, ["numkern", "torch"], args.load_seconds)
        if not counts and not args.under_load:
            rows += run_cases(cases, args.quick)
    command = "python -m numkern bench" + "".join(f" {f}" for f in args.families) + (" --quick" if args.quick else "")
    if counts:
        command += f" --threads {args.threads}"
    if args.under_load:
        command += " --under-load"
    meta = {
        "numkern": numkern.__version__,
        "date": datetime.date.today().isoformat(),
        "command": command,
        "machine": platform.machine(),
        "processor": _processor_name(),
        "cpu_info": info,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "quick": args.quick,
        "mode": "threads" if counts else "under_load" if args.under_load else "peers",
    }
    if args.json:
        write_json(rows, args.json, meta)
        print(f"\nwrote {args.json}")
    if args.plot and meta["mode"] != "peers":
        print("--plot draws the peer comparison; not written in a scaling mode", file=sys.stderr)
    elif args.plot:
        try:
            plot(rows, args.plot)
            print(f"wrote {args.plot}")
        except ImportError:
            print("matplotlib is not installed; no plot written", file=sys.stderr)
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m numkern", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p_info = sub.add_parser("info", help="print cpu_info(): features, ISA level, kernels, threads")
    p_info.set_defaults(func=_info)
    p_bench = sub.add_parser("bench", help="time numkern against its peers in one process")
    p_bench.add_argument("families", nargs="*", help="families to run (default: all)")
    p_bench.add_argument("--quick", action="store_true", help="smaller sizes and shorter timing")
    p_bench.add_argument("--json", metavar="FILE", help="write all rows as JSON")
    p_bench.add_argument("--plot", metavar="FILE.png", help="bar chart of the ratios (needs matplotlib)")
    p_bench.add_argument(
        "--threads",
        metavar="N,N,...",
        help="scaling mode: numkern at each thread count, speed-up, efficiency and bandwidth bound",
    )
    p_bench.add_argument(
        "--under-load",
        action="store_true",
        help="numkern (and torch) at the default thread count vs 1 thread while another process "
        "loops parallel kernels (a numkern one, then a torch one)",
    )
    p_bench.add_argument(
        "--load-seconds",
        type=float,
        default=1800.0,
        help="longest time a sibling process of --under-load may run (default 1800)",
    )
    p_bench.set_defaults(func=_bench)
    from numkern._train import add_parser as _add_train_parser

    _add_train_parser(sub)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
