"""Figures of the reports (matplotlib, headless)."""

from __future__ import annotations

from pathlib import Path


def benchmark_plot(rows: list[dict], title: str, path: str | Path) -> None:
    """Latency (p50 with the p10-p90 band) and throughput against batch size."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ok = [row for row in rows if row.get("status") == "ok"]
    fig, (latency_ax, throughput_ax) = plt.subplots(1, 2, figsize=(9, 3.6), constrained_layout=True)
    if ok:
        sizes = [row["batch_size"] for row in ok]
        latency_ax.plot(sizes, [row["p50_ms"] for row in ok], "o-", label="p50")
        latency_ax.fill_between(sizes, [row["p10_ms"] for row in ok], [row["p90_ms"] for row in ok], alpha=0.25, label="p10-p90")
        throughput_ax.plot(sizes, [row["throughput"] for row in ok], "s-", color="tab:green")
        for axis in (latency_ax, throughput_ax):
            axis.set_xscale("log", base=2)
            axis.set_xticks(sizes, [str(size) for size in sizes])
        latency_ax.legend()
    else:
        for axis in (latency_ax, throughput_ax):
            axis.text(0.5, 0.5, "no successful batch size", ha="center", va="center", transform=axis.transAxes)
    latency_ax.set(xlabel="batch size", ylabel="latency (ms)", title="latency")
    throughput_ax.set(xlabel="batch size", ylabel="items / s", title="throughput")
    fig.suptitle(title)
    fig.savefig(path, dpi=100)
    plt.close(fig)
