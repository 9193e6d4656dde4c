"""The serving benchmark's figure: compute against eager PyTorch, API latency, throughput."""

from __future__ import annotations

from pathlib import Path


def plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    comp, e2e = result["compute"], result["end_to_end"]
    fig, axes = plt.subplots(1, 4, figsize=(18, 4.2), dpi=100)
    names = [f"ORT {comp['serving_model']}", "ORT, 1 thread", "eager PyTorch"]
    stats = [comp["ort_serving"], comp["ort_one_thread"], comp["torch_eager"]]
    ax = axes[0]
    ax.barh(names, [s["p50_ms"] for s in stats], color=["tab:green", "tab:blue", "tab:gray"], label="p50")
    ax.scatter([s["p95_ms"] for s in stats], names, color="black", marker="|", s=200, label="p95", zorder=3)
    for y, s in enumerate(stats):
        ax.annotate(f"{s['p50_ms']:.1f} ms", (s["p50_ms"], y), xytext=(4, 8), textcoords="offset points")
    ax.set_xlim(0, max(s["p95_ms"] for s in stats) * 1.2)
    ax.set_xlabel("ms per image, batch 1")
    ax.set_title(f"compute: {comp['speedup_x']}x faster than eager")
    ax.legend()
    ax = axes[1]
    ax.bar(
        ["c=1 p50", "c=1 p95", f"c={e2e['c8']['concurrency']} p50", f"c={e2e['c8']['concurrency']} p95"],
        [e2e["c1"]["p50_ms"], e2e["c1"]["p95_ms"], e2e["c8"]["p50_ms"], e2e["c8"]["p95_ms"]],
        color="tab:purple",
    )
    ax.axhline(10, ls="--", color="tab:orange", label="p50 floor 10 ms")
    ax.axhline(20, ls="--", color="tab:red", label="p95 floor 20 ms")
    ax.set_ylabel("ms")
    ax.set_title(f"end to end ({e2e['target']})")
    ax.legend()
    ax = axes[2]
    cpu = e2e["c8"]["cpu"]
    ax.bar(["measured", "CPU ceiling"], [e2e["c8"]["rps"], cpu["ceiling_rps"] or 0], color=["tab:cyan", "tab:olive"])
    ax.axhline(150, ls="--", color="tab:red", label="floor 150 req/s")
    ax.set_ylabel("requests/s")
    ax.set_title(
        f"c={e2e['c8']['concurrency']}: {e2e['c8']['errors']} errors; cold start {result['cold_start']['median_s']} s"
    )
    ax.legend()
    ax, left = axes[3], 0.0
    for name, ms in cpu["ms_per_request"].items():
        ax.barh(["CPU per request"], [ms], left=left, label=f"{name} {ms} ms")
        left += ms
    ax.set_xlabel("CPU ms per request")
    ax.set_title(f"c={e2e['c8']['concurrency']}: {cpu['total_ms']} ms CPU on {cpu['cpus']} CPUs")
    ax.legend(fontsize="small", loc="upper center", bbox_to_anchor=(0.5, -0.22), ncol=2)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
