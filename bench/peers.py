"""npu-adapt's benchmark beside its peers, on the same model, batch size and threads.

Three ways of timing one forward pass of a timm model (random init, no download), in one
process, interleaved round by round (the order rotates, so a change of machine load hits
all three alike):

- ``timm``: the loop of timm's ``benchmark.py`` (``InferenceBenchmarkRunner``): warm-up
  iterations, then N timed iterations with a device synchronisation after each; it
  publishes the mean step time;
- ``Timer``: ``torch.utils.benchmark.Timer.blocked_autorange``, its median;
- ``npu-adapt``: ``npu_adapt.timing.measure`` with the workflow's stopping rule, its p50
  (and its cv_pct and stable flag).

Prints each round, then the median over the rounds of each method and the ratios
npu-adapt / Timer and npu-adapt / timm (mean and median of timm's samples). Not part of
``make test``: it takes minutes and its numbers depend on the machine.

    .venv/bin/python bench/peers.py [--arch test_vit] [--batch-size 1] [--threads 1] [--rounds 10] [--seconds 1]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time


def timm_loop(forward, synchronize, warm: int, iterations: int) -> list[float]:
    """timm benchmark.py's inference loop: ``num_warm_iter`` untimed steps, then
    ``num_bench_iter`` steps each timed from before the call to after the synchronisation."""
    for _ in range(warm):
        forward()
    synchronize()
    steps = []
    for _ in range(iterations):
        start = time.perf_counter()
        forward()
        synchronize()
        steps.append((time.perf_counter() - start) * 1000.0)
    return steps


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="test_vit", help="timm architecture (random init, no download)")
    parser.add_argument("--device", default="cpu", help="cpu, or npu / cuda / auto")
    parser.add_argument("--image-size", type=int, default=None, help="default: the architecture's own")
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1, help="torch threads, the same for all three")
    parser.add_argument("--rounds", type=int, default=10, help="interleaved rounds of each method")
    parser.add_argument("--seconds", type=float, default=1.0, help="about the time per method per round")
    parser.add_argument("--timm-iterations", type=int, default=50, help="timm's num_bench_iter (its default: 50)")
    parser.add_argument("--timm-warmup", type=int, default=10, help="timm's num_warm_iter (its default: 10)")
    args = parser.parse_args()

    import timm
    import torch
    from torch.utils import benchmark

    from npu_adapt import devices
    from npu_adapt.timing import measure

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    device = devices.resolve(args.device)
    model = timm.create_model(args.arch, pretrained=False).eval().to(device)
    size = args.image_size or model.pretrained_cfg.get("input_size", (3, 224, 224))[-1]
    pixels = torch.randn(args.batch_size, 3, size, size).to(device)

    def forward():
        with torch.inference_mode():
            model(pixels)

    def synchronize():
        devices.synchronize(device)

    timer = benchmark.Timer(stmt="forward()", globals={"forward": forward}, num_threads=torch.get_num_threads())

    def npu_adapt() -> tuple[float, str]:
        row, _ = measure(
            forward,
            device,
            args.batch_size,
            warmup=3,
            min_runs=3,
            max_runs=5000,
            min_seconds=args.seconds,
            max_seconds=max(10.0, 3 * args.seconds),
        )
        return row["p50_ms"], f"cv {row['cv_pct']:.1f}% {'stable' if row['stable'] else 'UNSTABLE'}"

    def torch_timer() -> tuple[float, str]:
        measurement = timer.blocked_autorange(min_run_time=args.seconds)
        return measurement.median * 1000.0, f"iqr {measurement.iqr * 1000:.3f} ms"

    timm_means: list[float] = []

    def timm_runner() -> tuple[float, str]:
        steps = timm_loop(forward, synchronize, args.timm_warmup, args.timm_iterations)
        timm_means.append(statistics.fmean(steps))
        return statistics.median(steps), f"mean {timm_means[-1]:.3f} ms"

    methods = {"npu-adapt": npu_adapt, "Timer": torch_timer, "timm": timm_runner}
    forward()  # one-time costs (allocator, oneDNN primitives) before any method
    medians: dict[str, list[float]] = {name: [] for name in methods}
    load = " ".join(f"{value:.2f}" for value in os.getloadavg())
    print(
        f"{args.arch} batch {args.batch_size} {size}px on {devices.device_name(device)}, "
        f"{torch.get_num_threads()} threads, torch {torch.__version__}, timm {timm.__version__}"
    )
    print(f"{args.rounds} rounds x ~{args.seconds:g} s per method, load average at start {load}")
    names = list(methods)
    for round_index in range(args.rounds):
        order = names[round_index % 3 :] + names[: round_index % 3]
        notes = {}
        for name in order:
            value, notes[name] = methods[name]()
            medians[name].append(value)
        print(
            f"round {round_index:>2}: "
            + "  ".join(f"{name} {medians[name][-1]:.3f} ms ({notes[name]})" for name in names)
        )
    summary = {name: statistics.median(values) for name, values in medians.items()}
    print(
        "median over rounds (ms): "
        + ", ".join(f"{name} {value:.3f}" for name, value in summary.items())
        + f", timm mean {statistics.median(timm_means):.3f}"
    )
    print(f"npu-adapt p50 / Timer median:  {summary['npu-adapt'] / summary['Timer']:.4f}")
    print(f"npu-adapt p50 / timm median:   {summary['npu-adapt'] / summary['timm']:.4f}")
    print(
        f"npu-adapt p50 / timm mean:     {summary['npu-adapt'] / statistics.median(timm_means):.4f}  "
        "(timm publishes the mean)"
    )
    print(f"load average at end {' '.join(f'{value:.2f}' for value in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
