"""Does npu-adapt's benchmark harness measure what torch's own benchmark utility measures?

Times one CPU model on fixed inputs with ``npu_adapt.timing.measure`` and with
``torch.utils.benchmark.Timer.blocked_autorange`` in one process, interleaved round by
round (the order alternates, so drift in machine load hits both alike), and prints the
ratio of medians. The harness must agree within 3% on a model whose forward takes >= 5 ms.

    .venv/bin/python bench/harness_overhead.py [--arch convnextv2_atto] [--threads 1] [--rounds 40] [--seconds 0.5]

Many short rounds rather than a few long ones: on a shared machine the load changes within
seconds, and only fine interleaving exposes both methods to the same load.

Exit status 0 when the ratio is within the tolerance, 1 otherwise.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys

TOLERANCE = 0.03
MIN_FORWARD_MS = 5.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="convnextv2_atto", help="timm architecture (random init, no download)")
    parser.add_argument(
        "--device", default="cpu", help="cpu (the check), or npu / cuda / auto to compare on an accelerator too"
    )
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads (1: on a shared machine a multi-threaded forward stalls whenever one thread "
        "is descheduled, which swamps the comparison)",
    )
    parser.add_argument("--rounds", type=int, default=40, help="interleaved rounds of each method")
    parser.add_argument("--seconds", type=float, default=0.5, help="time per method per round")
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
    pixels = torch.randn(args.batch_size, 3, args.image_size, args.image_size).to(device)

    def forward():
        with torch.inference_mode():
            model(pixels)

    # Timer defaults to one thread; time both at the process's thread count. On CUDA its
    # clock synchronises the device at both ends of each block.
    timer = benchmark.Timer(stmt="forward()", globals={"forward": forward}, num_threads=torch.get_num_threads())

    def harness() -> float:
        row, _ = measure(
            forward,
            device,
            args.batch_size,
            warmup=1,
            min_runs=5,
            max_runs=10**6,
            min_seconds=args.seconds,
            max_seconds=args.seconds,
        )
        return row["p50_ms"]

    def torch_timer() -> float:
        return timer.blocked_autorange(min_run_time=args.seconds).median * 1000.0

    forward()  # one-time costs (allocator, oneDNN primitives) before either method
    medians: dict[str, list[float]] = {"harness": [], "torch": []}
    load = " ".join(f"{value:.2f}" for value in os.getloadavg())
    print(
        f"{args.arch} batch {args.batch_size} {args.image_size}px on {devices.device_name(device)}, "
        f"{torch.get_num_threads()} threads, {args.rounds} rounds x {args.seconds:g} s per method, load average {load}"
    )
    print(f"{'round':>5}  {'harness p50 ms':>14}  {'Timer median ms':>15}  {'ratio':>6}")
    for round_index in range(args.rounds):
        order = (("harness", harness), ("torch", torch_timer))
        for name, method in order if round_index % 2 == 0 else reversed(order):
            medians[name].append(method())
        print(
            f"{round_index:>5}  {medians['harness'][-1]:>14.3f}  {medians['torch'][-1]:>15.3f}  "
            f"{medians['harness'][-1] / medians['torch'][-1]:>6.3f}"
        )

    harness_ms, torch_ms = statistics.median(medians["harness"]), statistics.median(medians["torch"])
    ratio = harness_ms / torch_ms
    print(f"median  {harness_ms:>14.3f}  {torch_ms:>15.3f}")
    print(f"ratio of medians (harness / torch.utils.benchmark): {ratio:.4f}")
    if torch_ms < MIN_FORWARD_MS:
        print(
            f"NOT APPLICABLE: forward takes {torch_ms:.2f} ms < {MIN_FORWARD_MS} ms "
            "(pick a larger --image-size or --batch-size)"
        )
        return 1
    within = abs(ratio - 1) <= TOLERANCE
    print(f"{'PASS' if within else 'FAIL'}: |ratio - 1| = {abs(ratio - 1):.4f} {'<=' if within else '>'} {TOLERANCE}")
    return 0 if within else 1


if __name__ == "__main__":
    sys.exit(main())
