"""The scaling plot (``bench/results/scaling.png``), when matplotlib is installed."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def plot_scaling(scaling: dict[str, Any], path: Path) -> str:
    """Draw µs/trace on the app threads and total traces/s against threads; a status line."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        return f"scaling plot skipped: matplotlib is not installed ({exc})"
    threads = scaling.get("threads") or {}
    if not threads:
        return "scaling plot skipped: no thread-scaling results"
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 5.0))
    for name, entry in threads.items():
        xs = [row["threads"] for row in entry["rows"]]
        (line,) = left.plot(
            xs, [row["us_per_trace_app_thread_median"] for row in entry["rows"]], "o-", label=name
        )
        right.plot(
            xs, [row["traces_per_s_median"] for row in entry["rows"]], "o-", label=f"{name} burst"
        )
        right.plot(
            xs,
            [row["traces_per_s_with_drain_median"] for row in entry["rows"]],
            "s--",
            color=line.get_color(),
            alpha=0.7,
            label=f"{name} incl. flush",
        )
    for ax in (left, right):
        ax.set_xscale("log", base=2)
        ax.set_xticks([1, 2, 4, 8], labels=["1", "2", "4", "8"])
        ax.set_xlabel("recording threads")
        ax.set_yscale("log")
        ax.grid(True, which="both", alpha=0.3)
    left.legend(fontsize=8)
    right.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=3)
    left.set_ylabel("µs per trace on each app thread (wall, median)")
    left.set_title("application-thread cost (lower is better)")
    right.set_ylabel("traces/s, all threads (median)")
    right.set_title("throughput: burst, and incl. the flush (higher is better)")
    fan = scaling.get("fanout") or {}
    note = ""
    if fan:
        note = (
            f"fan-out: 3 exporters / 1 exporter on the app thread = {fan['ratio_app_thread']:.2f}"
        )
    fig.suptitle(f"obshub vs OpenTelemetry SDK vs Langfuse SDK, 2-span trace. {note}", fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return f"scaling plot: {path}"
