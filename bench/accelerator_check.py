"""The benchmark code path on this machine's accelerator (npu, else cuda), without Snakemake.

What the CPU-only tests cannot show: that the device module's synchronisation and
allocator peaks work on a real accelerator, that the peak is reset per batch size, that a
*real* out-of-memory error (the allocator capped with ``devices.limit_memory``) is recorded
as ``oom`` with the larger batch sizes skipped and the device memory given back, and that
the CPU baseline gives a speedup. Prints a table and writes benchmark.json / .png to --out.

    python bench/accelerator_check.py --out /tmp/check [--arch convnextv2_atto] [--dtype float16]

Exit status 0 when every check holds.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--arch", default="convnextv2_atto", help="timm architecture (random init)")
    parser.add_argument("--dtype", default="float16")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 8, 64, 256])
    parser.add_argument("--oom-batch", type=int, default=8192, help="a batch size that cannot fit under the cap")
    parser.add_argument("--memory-fraction", type=float, default=0.05, help="allocator cap, fraction of device memory")
    parser.add_argument("--max-seconds", type=float, default=2.0)
    args = parser.parse_args()

    from npu_adapt import devices
    from npu_adapt.adapters import get_adapter
    from npu_adapt.benchmark import benchmark_model, cpu_baseline
    from npu_adapt.config_types import BenchmarkSettings
    from npu_adapt.io import sha256_file, write_json
    from npu_adapt.plots import benchmark_plot
    from npu_adapt.runner import LoadedModel
    from npu_adapt.timing import measure

    device = devices.resolve("auto")
    if device == "cpu":
        print("no accelerator on this machine: nothing to check")
        return 1
    entry = {
        "family": "timm_image",
        "source": f"timm:{args.arch}",
        "task": "image-classification",
        "fallback": "random-init",
        "inputs": {},
    }
    weights = Path(tempfile.mkdtemp(prefix="accelerator_check-"))
    adapter = get_adapter(entry)
    adapter.save(adapter.random_init(0), weights)
    arrays = adapter.make_inputs(weights, 0)
    files = [
        {"path": path.name, "bytes": path.stat().st_size, "sha256": sha256_file(path)}
        for path in sorted(weights.iterdir())
    ]
    manifest = {"dir": str(weights), "files": files}
    settings = BenchmarkSettings(
        batch_sizes=(*args.batch_sizes, args.oom_batch, args.oom_batch * 2),
        warmup=3,
        min_runs=5,
        min_seconds=1,
        max_runs=200,
        max_seconds=args.max_seconds,
        baseline="cpu",
        threads=None,
        prompt_len=None,
        new_tokens=16,
    )

    loaded = LoadedModel(entry, manifest, device, args.dtype)
    devices.limit_memory(device, args.memory_fraction)
    rows = benchmark_model(loaded, arrays, settings)
    failures = []

    def check(condition: bool, what: str) -> None:
        print(f"{'ok  ' if condition else 'FAIL'} {what}")
        if not condition:
            failures.append(what)

    statuses = [row["status"] for row in rows]
    check(statuses == ["ok"] * len(args.batch_sizes) + ["oom", "skipped"], f"statuses {statuses}")
    oom = rows[len(args.batch_sizes)]
    check(
        "OutOfMemoryError" in (oom["reason"] or "") or "out of memory" in (oom["reason"] or "").lower(),
        f"a real allocator error: {(oom['reason'] or '')[:160]}",
    )
    ok = [row for row in rows if row["status"] == "ok"]
    check(
        all(
            row["peak_mem_kind"] == f"{devices.kind_of(device)}_allocator_peak"
            and row["peak_mem_scope"] == "batch_size"
            for row in ok
        ),
        "allocator peak, per batch size",
    )
    # Reset per batch size: the smallest batch measured again after the largest shows its own, smaller peak.
    again, _ = measure(
        lambda: loaded.forward(loaded.place_inputs(arrays, args.batch_sizes[0])),
        device,
        args.batch_sizes[0],
        warmup=1,
        min_runs=3,
        max_runs=3,
        max_seconds=1,
    )
    check(
        again["peak_mem_mb"] < ok[-1]["peak_mem_mb"],
        f"peak reset: batch {args.batch_sizes[0]} after the OOM {again['peak_mem_mb']:.1f} MB "
        f"< batch {ok[-1]['batch_size']} {ok[-1]['peak_mem_mb']:.1f} MB",
    )
    check(
        abs(again["peak_mem_mb"] - ok[0]["peak_mem_mb"]) < 0.25 * ok[0]["peak_mem_mb"] + 16,
        f"same batch, same peak: {again['peak_mem_mb']:.1f} vs {ok[0]['peak_mem_mb']:.1f} MB",
    )
    for row in ok:
        check(
            row["min_ms"]
            <= row["p10_ms"]
            <= row["p50_ms"]
            <= row["p90_ms"]
            <= row["p95_ms"]
            <= row["p99_ms"]
            <= row["max_ms"],
            f"batch {row['batch_size']}: ordered percentiles",
        )
        check(
            row["throughput_method"] == "pipelined" and row["pipelined_clock"] == f"{devices.kind_of(device)}_events",
            f"batch {row['batch_size']}: pipelined throughput timed by device events",
        )
    device_name = devices.device_name(device)
    loaded = None  # frees the model before the memory limit is lifted
    devices.empty_cache(device)
    devices.limit_memory(device, 1.0)
    baseline = cpu_baseline(entry, manifest, arrays, settings, rows, ".")
    check(
        baseline["status"] == "ok" and all(row["speedup_vs_cpu"] for row in ok),
        "CPU baseline and speedup per batch size",
    )

    print(f"\n{args.arch} {args.dtype} on {device_name}; CPU baseline float32 on {baseline['device_name']}")
    print(
        f"{'batch':>6} {'status':>8} {'runs':>5} {'warm':>4} {'first ms':>9} "
        f"{'p50 ms':>9} {'p90 ms':>9} {'items/s':>10} {'peak MB':>9} {'vs CPU':>7}"
    )
    for row in rows:
        if row["status"] != "ok":
            print(f"{row['batch_size']:>6} {row['status']:>8}")
            continue
        print(
            f"{row['batch_size']:>6} {row['status']:>8} {row['runs']:>5} {row['warmup_runs']:>4} "
            f"{row['first_call_ms']:>9.3f} {row['p50_ms']:>9.3f} "
            f"{row['p90_ms']:>9.3f} {row['throughput']:>10.1f} {row['peak_mem_mb']:>9.1f} {row['speedup_vs_cpu']:>7.2f}"
        )
    args.out.mkdir(parents=True, exist_ok=True)
    write_json(
        args.out / "benchmark.json",
        {
            "model": args.arch,
            "device": device,
            "device_name": device_name,
            "dtype": args.dtype,
            "settings": settings.as_dict(),
            "results": rows,
            "baseline": baseline,
        },
    )
    benchmark_plot(rows, f"{args.arch} on {device_name} ({args.dtype})", args.out / "benchmark.png", baseline=baseline)
    print("\n" + ("all checks hold" if not failures else f"{len(failures)} checks failed"))
    return 0 if not failures else 1


if __name__ == "__main__":
    sys.exit(main())
