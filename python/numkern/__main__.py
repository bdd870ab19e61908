"""Command line: ``python -m numkern info | bench [FAMILY ...] [--quick] [--json F] [--plot F] | train ...``."""

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

    families = args.families or list(FAMILIES)
    unknown = [f for f in families if f not in FAMILIES]
    if unknown:
        print(f"unknown benchmark family {unknown}; choose from {sorted(FAMILIES)}", file=sys.stderr)
        return 2
    info = numkern.cpu_info()
    print(f"numkern {numkern.__version__}  isa={info['active']}  threads={info['num_threads']}  numpy {np.__version__}")
    rows = []
    for fam in families:
        module = importlib.import_module(FAMILIES[fam])
        rows += run_cases(module.cases(args.quick), args.quick)
    command = "python -m numkern bench" + "".join(f" {f}" for f in args.families) + (" --quick" if args.quick else "")
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
    }
    if args.json:
        write_json(rows, args.json, meta)
        print(f"\nwrote {args.json}")
    if args.plot:
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
    p_bench.set_defaults(func=_bench)
    from numkern._train import add_parser as _add_train_parser

    _add_train_parser(sub)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
