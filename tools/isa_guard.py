#!/usr/bin/env python3
"""Fails if an ISA-specific object file could leak its code into another translation unit.

For every object compiled from `*_avx2.cpp`, `*_avx512.cpp`, `*_avx512vnni.cpp` (x86-64) or
`*_neon.cpp`, `*_neon_dotprod.cpp`, `*_neon_i8mm.cpp` (AArch64: the baseline `neon` units cannot fault,
but the dot-product and i8mm ones can, and all follow the same rule) under a CMake build
directory, it checks with `nm` and `readelf` that the object
  * defines no weak or unique (COMDAT) symbol: the linker may pick that copy for a caller in a
    baseline translation unit and run AVX-512 (or SMMLA) code on a CPU without it;
  * has no dynamic initializer (.init_array / _GLOBAL__sub_I_ symbol), which would run ISA code at
    load time, before dispatch;
  * exports nothing but its family's kernel table(s) (`kernels_<isa>` data symbols).

Usage: tools/isa_guard.py BUILD_DIR   (exit status 1 on any finding)
"""

from __future__ import annotations

import pathlib
import re
import subprocess
import sys

ISA_OBJECT = re.compile(r"_(avx2|avx512|avx512vnni|neon|neon_dotprod|neon_i8mm)\.cpp\.o$")


def symbols(obj: pathlib.Path) -> list[tuple[str, str]]:
    out = subprocess.run(["nm", "--defined-only", str(obj)], capture_output=True, text=True, check=True).stdout
    rows = []
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 3:
            rows.append((parts[1], parts[2]))
    return rows


def demangle(name: str) -> str:
    return subprocess.run(["c++filt", name], capture_output=True, text=True, check=True).stdout.strip()


def sections(obj: pathlib.Path) -> str:
    return subprocess.run(["readelf", "-S", "-W", str(obj)], capture_output=True, text=True, check=True).stdout


def check(obj: pathlib.Path) -> list[str]:
    problems = []
    isa = ISA_OBJECT.search(obj.name).group(1)
    for kind, name in symbols(obj):
        pretty = demangle(name)
        if kind in ("W", "V", "u"):
            problems.append(f"{obj.name}: weak/unique symbol {pretty} ({kind})")
        elif kind.isupper() and kind not in ("W", "V"):
            if "_GLOBAL__sub_I_" in name:
                problems.append(f"{obj.name}: dynamic initializer {pretty}")
            elif not re.search(rf"::kernels_{isa}\w*$", pretty):
                problems.append(f"{obj.name}: exports {pretty} ({kind}); only kernels_{isa}* tables may be global")
    if ".init_array" in sections(obj):
        problems.append(f"{obj.name}: has an .init_array section (static initializer)")
    return problems


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    objects = sorted(p for p in pathlib.Path(argv[1]).rglob("*.o") if ISA_OBJECT.search(p.name))
    if not objects:
        print(f"isa_guard: no ISA object files under {argv[1]}", file=sys.stderr)
        return 1
    problems = [p for obj in objects for p in check(obj)]
    for p in problems:
        print("isa_guard:", p)
    print(f"isa_guard: {len(objects)} ISA objects checked, {len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
