"""FPR featurization: throughput against a plain matmul, and memory on a memory-mapped 1M-row set.

What is measured
    1. Throughput. ``FPRFeaturizer.transform`` (cosine kernel, the default; no seed spread, no
       binning) on a synthetic float32 embedding set of K = 5 seeds x n = 200,000 entities x
       d = 128 with m = 256 anchors. Achieved GFLOP/s counts only the kernel matmuls,
       K * 2 * n * d * m flops, over the whole call (median of 3 timed calls after a warm-up).
       Baseline, measured in the same run: a plain float32 numpy matmul ``a @ b`` of the same
       shapes, (n, d) x (d, m), 2 * n * d * m flops (median of 5 after a warm-up).
       Target: FPR GFLOP/s >= 60% of the matmul's.
    2. Memory. ``transform`` of K = 5 x n = 1,000,000 x d = 128 float32 (2.56 GB) read from a
       ``.npy`` memory map (np.lib.format.open_memmap, in a temporary directory), in a child
       process so its peak is its own: the growth of VmHWM (peak RSS, /proc/self/status) during
       the call, and a sampled peak of RssAnon (heap, excluding the mapped input's page cache).
       Checks: the peak growth stays well under the machine's 24 GB (limit 12 GB here), and it is
       below n * n * 4 bytes, i.e. no n x n array was formed (the output is n x m float32, 1 GB).

The embeddings are seed-like: one shared table, a random orthogonal rotation per seed and a
little per-seed noise. Anchors are m entity ids drawn at random (the anchor rule does not change
the cost of transform).

Run: ``python benchmarks/bench_fpr.py`` (full) or ``--quick`` (n = 20,000; memory check at
n = 100,000). Results go to ``benchmarks/results/bench_fpr.json`` (``bench_fpr_quick.json``).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from _common import print_table, time_median, write_result
from reprflow.components.featurize.fpr import FPRFeaturizer

TARGET_RATIO = 0.60
MEMORY_LIMIT_BYTES = 12 * 2**30  # "well under 24 GB": half of the machine's memory
CHUNK_ROWS = 100_000


def _rotations(k: int, d: int, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [np.linalg.qr(rng.standard_normal((d, d)))[0].astype(np.float32) for _ in range(k)]


def _seed_rows(base: np.ndarray, rotation: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return base @ rotation + np.float32(0.1) * rng.standard_normal(base.shape, dtype=np.float32)


def fill_tables(out: np.ndarray, seed: int = 0) -> None:
    """Fill out (K, n, d) float32 with seed-like embeddings, CHUNK_ROWS rows at a time."""
    k, n, d = out.shape
    rotations = _rotations(k, d, seed)
    for start in range(0, n, CHUNK_ROWS):
        rng = np.random.default_rng([seed, start])
        base = rng.standard_normal((min(CHUNK_ROWS, n - start), d), dtype=np.float32)
        for s in range(k):
            out[s, start : start + len(base)] = _seed_rows(base, rotations[s], rng)


def make_featurizer(n: int, m: int, seed: int = 0) -> tuple[FPRFeaturizer, list[str]]:
    ids = [f"e{i}" for i in range(n)]
    rows = np.random.default_rng(seed).choice(n, size=m, replace=False)
    return FPRFeaturizer(anchors=tuple(ids[i] for i in rows)), ids


def _status_kb(field: str) -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


class _AnonSampler(threading.Thread):
    """Samples RssAnon / RssFile every few ms; their peaks approximate the heap and page-cache parts."""

    def __init__(self, interval: float = 0.005) -> None:
        super().__init__(daemon=True)
        self.interval, self.stop = interval, threading.Event()
        self.peak_anon_kb = self.peak_file_kb = 0

    def run(self) -> None:
        while not self.stop.is_set():
            self.peak_anon_kb = max(self.peak_anon_kb, _status_kb("RssAnon"))
            self.peak_file_kb = max(self.peak_file_kb, _status_kb("RssFile"))
            time.sleep(self.interval)


def memcheck_child(path: str, m: int) -> None:
    """Runs in a fresh process: transform the memory-mapped tables once; print JSON figures."""
    tables = np.load(path, mmap_mode="r")
    k, n, d = tables.shape
    featurizer, ids = make_featurizer(n, m)
    before = {f: _status_kb(f) for f in ("VmHWM", "VmRSS", "RssAnon", "RssFile")}
    sampler = _AnonSampler()
    sampler.start()
    t0 = time.perf_counter()
    features = featurizer.transform(tables, ids)
    seconds = time.perf_counter() - t0
    sampler.stop.set()
    sampler.join()
    after = {f: _status_kb(f) for f in ("VmHWM", "VmRSS", "RssAnon", "RssFile")}
    print(json.dumps({
        "K": k, "n": n, "d": d, "m": m,
        "input_is_memmap": isinstance(tables, np.memmap),
        "input_bytes": int(tables.nbytes),
        "output_shape": list(features.shape), "output_dtype": str(features.dtype),
        "output_bytes": int(features.nbytes),
        "output_finite": bool(np.isfinite(features).all()),
        "transform_s": seconds,
        "gflops": k * 2 * n * d * m / seconds / 1e9,
        "before_kb": before, "after_kb": after,
        "peak_rss_delta_bytes": (after["VmHWM"] - before["VmHWM"]) * 1024,
        "peak_rss_bytes": after["VmHWM"] * 1024,
        "sampled_peak_anon_delta_bytes": (sampler.peak_anon_kb - before["RssAnon"]) * 1024,
        "sampled_peak_file_bytes": sampler.peak_file_kb * 1024,
    }))


def memory_check(k: int, n: int, d: int, m: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="bench_fpr_") as tmp:
        path = Path(tmp) / "tables.npy"
        t0 = time.perf_counter()
        mm = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(k, n, d))
        fill_tables(mm, seed=1)
        mm.flush()
        del mm
        write_s = time.perf_counter() - t0
        print(f"  memory check: wrote {k}x{n}x{d} float32 memmap ({path.stat().st_size / 1e9:.2f} GB) "
              f"in {write_s:.1f}s; featurizing in a child process", flush=True)
        proc = subprocess.run(
            [sys.executable, str(Path(__file__).resolve()), "--memcheck-child", str(path), "--m", str(m)],
            capture_output=True, text=True, check=False,
        )
    if proc.returncode != 0:
        raise RuntimeError(f"memory-check child failed ({proc.returncode}):\n{proc.stderr}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result["write_s"] = write_s
    result["nxn_float32_bytes"] = n * n * 4
    result["limit_bytes"] = MEMORY_LIMIT_BYTES
    result["under_limit"] = result["peak_rss_delta_bytes"] < MEMORY_LIMIT_BYTES
    result["no_nxn_array"] = result["peak_rss_delta_bytes"] < n * n * 4
    result["shape_ok"] = result["output_shape"] == [n, m] and result["output_finite"]
    result["passed"] = result["under_limit"] and result["no_nxn_array"] and result["shape_ok"]
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke size: n = 20,000; memory check at 100,000")
    parser.add_argument("--seeds", type=int, default=5, help="K")
    parser.add_argument("--n", type=int, default=None, help="throughput rows (default 200,000)")
    parser.add_argument("--dim", type=int, default=128, help="d")
    parser.add_argument("--m", type=int, default=256, help="anchors")
    parser.add_argument("--mem-n", type=int, default=None, help="memory-check rows (default 1,000,000)")
    parser.add_argument("--repeats", type=int, default=3, help="timed transform calls")
    parser.add_argument("--skip-memory", action="store_true", help="throughput only")
    parser.add_argument("--output", default=None, help="result name under benchmarks/results/")
    parser.add_argument("--memcheck-child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.memcheck_child:
        memcheck_child(args.memcheck_child, args.m)
        return 0
    k, d, m = args.seeds, args.dim, args.m
    n = args.n or (20_000 if args.quick else 200_000)
    mem_n = args.mem_n or (100_000 if args.quick else 1_000_000)

    tables = np.empty((k, n, d), dtype=np.float32)
    fill_tables(tables)
    featurizer, ids = make_featurizer(n, m)
    print(f"FPR benchmark: K={k}, n={n}, d={d}, m={m}, kernel={featurizer.kernel}", flush=True)

    fpr_s, fpr_all, features = time_median(lambda: featurizer.transform(tables, ids), args.repeats)
    assert features.shape == (n, m) and features.dtype == np.float32
    fpr_flops = k * 2 * n * d * m
    fpr_gflops = fpr_flops / fpr_s / 1e9
    print(f"  transform: median {fpr_s:.3f}s {['%.3f' % t for t in fpr_all]} -> {fpr_gflops:.1f} GFLOP/s",
          flush=True)

    a = np.ascontiguousarray(tables[0])
    b = np.ascontiguousarray(np.random.default_rng(2).standard_normal((d, m), dtype=np.float32))
    mm_s, mm_all, _ = time_median(lambda: a @ b, 5)
    mm_gflops = 2 * n * d * m / mm_s / 1e9
    print(f"  matmul:    median {mm_s:.4f}s {['%.4f' % t for t in mm_all]} -> {mm_gflops:.1f} GFLOP/s",
          flush=True)
    ratio = fpr_gflops / mm_gflops
    ratio_ok = ratio >= TARGET_RATIO
    del tables, features, a

    mem = None if args.skip_memory else memory_check(k, mem_n, d, m)

    rows = [
        ("throughput workload", f"K={k}, n={n}, d={d}, m={m}, float32, cosine"),
        ("FPRFeaturizer.transform median", f"{fpr_s:.3f} s  ({fpr_gflops:.1f} GFLOP/s)"),
        ("plain a @ b (n,d)x(d,m) median", f"{mm_s * 1e3:.1f} ms  ({mm_gflops:.1f} GFLOP/s)"),
        ("FPR / matmul", f"{100 * ratio:.1f}%  (target >= {100 * TARGET_RATIO:.0f}%: "
                         f"{'MET' if ratio_ok else 'MISSED'})"),
    ]
    if mem is not None:
        gb = 2**30
        rows += [
            ("memory workload", f"K={k}, n={mem_n}, d={d}, m={m}, float32 memmap "
                                f"({mem['input_bytes'] / 1e9:.2f} GB)"),
            ("memmap transform time", f"{mem['transform_s']:.1f} s  ({mem['gflops']:.1f} GFLOP/s)"),
            ("peak RSS growth (VmHWM delta)", f"{mem['peak_rss_delta_bytes'] / gb:.2f} GiB  "
                                              f"(limit {MEMORY_LIMIT_BYTES / gb:.0f} GiB: "
                                              f"{'PASS' if mem['under_limit'] else 'FAIL'})"),
            ("  sampled peak RssAnon growth", f"{mem['sampled_peak_anon_delta_bytes'] / gb:.2f} GiB"),
            ("  sampled peak RssFile (mapped input)", f"{mem['sampled_peak_file_bytes'] / gb:.2f} GiB"),
            ("output n x m float32", f"{mem['output_bytes'] / gb:.2f} GiB"),
            ("no n x n array (peak < n*n*4 B)", f"{mem['nxn_float32_bytes'] / gb:,.0f} GiB would be n x n: "
                                                f"{'PASS' if mem['no_nxn_array'] else 'FAIL'}"),
        ]
    print_table("FPR featurization", rows)

    write_result("bench_fpr", args.quick, {
        "throughput": {
            "K": k, "n": n, "d": d, "m": m, "kernel": featurizer.kernel, "dtype": "float32",
            "repeats": args.repeats, "warmup": 1,
            "transform_s": fpr_s, "transform_all_s": fpr_all, "flops_counted": fpr_flops,
            "transform_gflops": fpr_gflops,
            "matmul_s": mm_s, "matmul_all_s": mm_all, "matmul_gflops": mm_gflops,
            "ratio": ratio, "target_ratio": TARGET_RATIO, "ratio_met": ratio_ok,
        },
        "memory": mem,
    }, args.output)
    if mem is not None and not mem["passed"]:
        print("memory check FAILED", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
