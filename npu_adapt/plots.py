"""Figures of the reports (matplotlib, headless)."""

from __future__ import annotations

from pathlib import Path


def batch_label(size: int) -> str:
    """Tick label: 16384 -> 16k, so large neighbouring batch sizes do not collide."""
    return f"{size // 1024}k" if size >= 1024 and size % 1024 == 0 else str(size)


def benchmark_plot(rows: list[dict], title: str, path: str | Path, baseline: dict | None = None) -> None:
    """Latency (p50 with the interquartile band, p25-p75) and throughput against batch size;
    the CPU baseline dashed when there is one; unstable rows circled in red; batch sizes that
    were not measured (oom, over_budget, skipped) marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series = [("target", rows, "tab:blue", "-")]
    if baseline and baseline.get("results"):
        series.append((f"CPU baseline ({baseline['dtype']})", baseline["results"], "tab:gray", "--"))
    fig, (latency_ax, throughput_ax) = plt.subplots(1, 2, figsize=(10, 4), constrained_layout=True)
    sizes = sorted({row["batch_size"] for row in rows})
    if any(row.get("status") == "ok" for row in rows):
        for label, series_rows, color, style in series:
            ok = [row for row in series_rows if row.get("status") == "ok"]
            if not ok:
                continue
            x = [row["batch_size"] for row in ok]
            p50 = [row["p50_ms"] for row in ok]
            # Too few runs for quartiles: the band collapses onto the p50.
            p25 = [row.get("p25_ms") if row.get("p25_ms") is not None else row["p50_ms"] for row in ok]
            p75 = [row.get("p75_ms") if row.get("p75_ms") is not None else row["p50_ms"] for row in ok]
            latency_ax.fill_between(x, p25, p75, color=color, alpha=0.15, linewidth=0)
            # Error bars too: a band is invisible at a single batch size.
            spread = [[mid - low for low, mid in zip(p25, p50)], [high - mid for mid, high in zip(p50, p75)]]
            latency_ax.errorbar(
                x, p50, yerr=spread, marker="o", color=color, linestyle=style, capsize=4, label=f"{label}: p50, p25-p75"
            )
            methods = sorted({row.get("throughput_method") or "p50" for row in ok})
            throughput_ax.plot(
                x,
                [row["throughput"] for row in ok],
                marker="s",
                color=color,
                linestyle=style,
                label=f"{label} ({', '.join(methods)})",
            )
            unstable = [(row["batch_size"], row["p50_ms"]) for row in ok if row.get("stable") is False]
            if unstable:
                latency_ax.scatter(
                    *zip(*unstable),
                    s=160,
                    facecolors="none",
                    edgecolors="tab:red",
                    zorder=3,
                    label=f"{label}: unstable (cv > 10% or drift)",
                )
        for row in rows:
            if row.get("status") != "ok":  # oom / over_budget / skipped: a labelled mark on the axis
                for axis in (latency_ax, throughput_ax):
                    axis.axvline(row["batch_size"], color="tab:red", alpha=0.4, linestyle=":")
                    axis.annotate(
                        row["status"],
                        (row["batch_size"], 0.97),
                        xycoords=("data", "axes fraction"),
                        color="tab:red",
                        rotation=90,
                        ha="right",
                        va="top",
                    )
        for axis in (latency_ax, throughput_ax):
            axis.set_xscale("log", base=2)
            axis.set_xticks(sizes, [batch_label(size) for size in sizes])
            axis.set_xlim(min(sizes) / 1.4, max(sizes) * 1.4)
            axis.minorticks_off()
            low, high = axis.dataLim.y0, axis.dataLim.y1
            if low > 0 and high / low > 20:  # e.g. an accelerator beside its CPU baseline
                axis.set_yscale("log")
            else:
                axis.set_ylim(0, high * 1.15)  # from zero, with room above the highest point
            axis.grid(alpha=0.3)
        latency_ax.legend(fontsize="small")
        throughput_ax.legend(fontsize="small")
    else:
        reason = next((row["reason"] for row in rows if row.get("reason")), "no batch size was measured")
        for axis in (latency_ax, throughput_ax):
            axis.text(
                0.5,
                0.5,
                "no successful batch size\n" + reason[:80],
                ha="center",
                va="center",
                transform=axis.transAxes,
                wrap=True,
            )
    latency_ax.set(xlabel="batch size", ylabel="latency per call (ms)", title="latency")
    throughput_ax.set(xlabel="batch size", ylabel="items / s", title="throughput")
    fig.suptitle(title)
    fig.savefig(path, dpi=100)
    plt.close(fig)
