"""Shared helpers for the benchmarks: machine info, timing, table printing, JSON output."""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine_info() -> dict:
    import numpy as np

    info = {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu_model": cpu_model(),
        "cores": os.cpu_count(),
        "cores_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "numpy": np.__version__,
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        # other processes on a shared machine skew timings; the load average says how busy it was
        "loadavg_1_5_15": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
    }
    try:
        import scipy

        info["scipy"] = scipy.__version__
    except ImportError:
        info["scipy"] = None
    try:
        import torch

        info["torch"] = torch.__version__
    except ImportError:
        info["torch"] = None
    try:
        with open("/proc/meminfo") as fh:
            kb = int(next(line for line in fh if line.startswith("MemTotal")).split()[1])
        info["mem_total_gb"] = round(kb / 2**20, 1)
    except (OSError, StopIteration):
        info["mem_total_gb"] = None
    return info


def time_median(fn: Callable[[], object], repeats: int, warmup: int = 1) -> tuple[float, list[float], object]:
    """Median wall time (time.perf_counter) of `repeats` calls after `warmup` untimed calls.

    Returns (median seconds, all timed seconds, the last call's result)."""
    return time_interleaved({"fn": fn}, repeats, warmup)["fn"]


def time_interleaved(fns: dict[str, Callable[[], object]], repeats: int, warmup: int = 1
                     ) -> dict[str, tuple[float, list[float], object]]:
    """time_median for several functions whose times are compared, run in rounds.

    Each round calls every function once, starting one further along each round, so a machine
    that speeds up or slows down during the run (a shared VM does) shifts every function alike
    instead of whichever ran in that stretch. Returns name -> (median s, all s, last result)."""
    names = list(fns)
    results: dict[str, object] = {}
    for _ in range(warmup):
        for name in names:
            results[name] = fns[name]()
    times: dict[str, list[float]] = {name: [] for name in names}
    for r in range(repeats):
        for name in names[r % len(names):] + names[:r % len(names)]:
            t0 = time.perf_counter()
            results[name] = fns[name]()
            times[name].append(time.perf_counter() - t0)
    return {name: (statistics.median(times[name]), times[name], results[name]) for name in names}


def print_table(title: str, rows: list[tuple[str, str]]) -> None:
    width = max(len(k) for k, _ in rows)
    vwidth = max(len(v) for _, v in rows)
    print(f"\n{title}")
    print("-" * (width + vwidth + 3))
    for key, value in rows:
        print(f"{key:<{width}} | {value}")
    print("-" * (width + vwidth + 3))


def write_json(name: str, payload: dict) -> Path:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{name}.json"
    path.write_text(json.dumps(payload, indent=2, sort_keys=False) + "\n")
    return path


def write_result(benchmark: str, quick: bool, fields: dict, name: str | None = None) -> Path:
    """benchmarks/results/<name>.json (default: the benchmark's name, `_quick` for a quick run) with
    the benchmark, the mode and the machine ahead of `fields`; prints where it went."""
    name = name or (f"{benchmark}_quick" if quick else benchmark)
    path = write_json(name, {"benchmark": benchmark, "mode": "quick" if quick else "full",
                             "machine": machine_info(), **fields})
    print(f"wrote {path}")
    return path
