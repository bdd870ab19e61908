"""The norm benchmark ratios (l1_norm vs layer_norm, torch and the bandwidth bound) from `python -m numkern bench norm --json F` output.

PYTHONPATH=python python tools/norm_bench_ratios.py F [F ...]
"""

import json
import statistics
import sys

CASE = "rows 8192 x 4096"


def ratios(path):
    data = json.load(open(path))["rows"]
    rows = {r["impl"]: r["median_s"] for r in data if r["case"] == CASE}
    one = {r["impl"]: r["median_s"] for r in data if r["case"] == "one thread " + CASE}
    l1, l2, i8 = (
        rows["numkern l1_norm f32 (out=)"],
        rows["numkern layer_norm f32 (out=)"],
        rows["numkern l1_norm_int8 (out=)"],
    )
    torch = rows.get("torch layer_norm f32")
    bound = min(v for k, v in rows.items() if k.startswith("bandwidth bound f32"))
    out = {
        "l1_norm / layer_norm time (<= 1.05)": l1 / l2,
        "l1_norm / bound (<= 1.2)": l1 / bound,
        "layer_norm / bound (<= 1.2)": l2 / bound,
        "int8 speedup vs numkern layer_norm f32 (>= 3)": l2 / i8,
        "int8 / int8 copy bound": i8 / rows["bandwidth bound int8 (copyto)"],
    }
    if one:
        l1s, l2s = one["numkern l1_norm f32 (out=, 1 thread)"], one["numkern layer_norm f32 (out=, 1 thread)"]
        i8s = one["numkern l1_norm_int8 (out=, 1 thread)"]
        copy1 = one["bandwidth bound f32 (copyto)"]  # NumPy's copy is one thread
        out["1 thread: int8 / int8 copyto bound"] = i8s / one["bandwidth bound int8 (copyto)"]
        out["1 thread: l1_norm / layer_norm"] = l1s / l2s
        out["1 thread: l1_norm / copyto bound"] = l1s / copy1
        out["1 thread: layer_norm / copyto bound"] = l2s / copy1
        out["1 thread: int8 speedup vs layer_norm f32"] = l2s / i8s
        if torch:
            out["1 thread: int8 speedup vs torch layer_norm (2 threads)"] = torch / i8s
    if torch:
        out["l1_norm speedup vs torch layer_norm (>= 2)"] = torch / l1
        out["int8 speedup vs torch layer_norm f32 (>= 5)"] = torch / i8
    return out


def main(paths):
    per = [ratios(p) for p in paths]
    for key in per[0]:
        vals = [r[key] for r in per]
        print(f"{key:50s} median {statistics.median(vals):6.3f}   runs {' '.join(f'{v:.3f}' for v in vals)}")


if __name__ == "__main__":
    main(sys.argv[1:])
