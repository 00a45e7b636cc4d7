"""The suite's PNG plots (matplotlib, the ``bench`` extra), drawn from the run files alone:
latency per model with its p10-p90 spread for each technique on tvmedge and ONNX Runtime's fp32,
one plot per machine, and the tuning-progress curves."""

from __future__ import annotations

from pathlib import Path

from benchmarks import provenance
from benchmarks.render import newest_curves, p


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    return plt


def _ort_own(report: dict | None) -> bool:
    return bool(report and (report.get("technique") or {}).get("ort_model"))


def latency(run: dict, out: Path) -> Path | None:
    """Bars of p50 latency per model, normalised to ONNX Runtime's fp32 p50 (so models of any
    size share an axis), with p10-p90 whiskers; the absolute ORT p50 under each model name."""
    plt = _pyplot()
    models = [(n, e) for n, e in run["models"].items() if "fp32" in e["techniques"]]
    if not models:
        return None
    series = [("onnxruntime", "fp32")]  # (engine, technique): ORT's own models where run
    for tech in run["techniques"]:
        series.append(("tvmedge", tech))
        if any(_ort_own(e["techniques"].get(tech)) for _n, e in models):
            series.append(("onnxruntime", tech))
    width = 0.8 / len(series)
    fig, ax = plt.subplots(figsize=(max(6, 1.6 * len(models) + 2), 4.2))
    for k, (engine_name, tech) in enumerate(series):
        xs, ys, lo, hi = [], [], [], []
        for i, (_name, entry) in enumerate(models):
            ref = entry["techniques"]["fp32"]["engines"]["onnxruntime"]["latency"]["p50_ms"]
            report = entry["techniques"].get(tech)
            if report is None or (
                engine_name == "onnxruntime" and tech != "fp32" and not _ort_own(report)
            ):
                continue
            engine = report["engines"][engine_name]
            mid = engine["latency"]["p50_ms"] / ref
            xs.append(i + (k - (len(series) - 1) / 2) * width)
            ys.append(mid)
            lo.append(mid - p(engine["latencies_ms"], 10) / ref)
            hi.append(p(engine["latencies_ms"], 90) / ref - mid)
        ax.bar(xs, ys, width, yerr=[lo, hi], capsize=3, label=f"{engine_name} {tech}")
    ax.axhline(1.0, color="grey", linewidth=0.8, linestyle="--")
    ax.set_xticks(range(len(models)))
    ax.set_xticklabels(
        [
            f"{n}\nORT {e['techniques']['fp32']['engines']['onnxruntime']['latency']['p50_ms']:.2f}"
            " ms"
            for n, e in models
        ]
    )
    ax.set_ylabel("p50 latency / ONNX Runtime fp32 p50\n(whiskers: p10-p90)")
    m = run["machine"]
    commit = (run["commit"] or "unknown")[:10] + ("+dirty" if run["dirty"] else "")
    ax.set_title(
        f"{m['cpu']} ({m['mcpu']}, {m['cores']} cores), {run['settings']['threads']} threads; "
        f"{run['date'][:10]}, {commit}",
        fontsize=9,
    )
    ax.legend(fontsize=8)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def tuning(runs: list[tuple[Path, dict]], out: Path) -> Path | None:
    """Sum of the best kernel times found so far against trials, one line per log folder."""
    curves = newest_curves(runs)
    if not curves:
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for _path, c in curves:
        xs, ys = zip(*c["points"], strict=True)
        ax.step(xs, ys, where="post", label=f"{c['target']}: {c['kernels']} kernels")
    ax.set_xlabel("trials measured")
    ax.set_ylabel("sum of best kernel times so far (ms)")
    ax.set_title("tuning progress", fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def draw(runs: list[tuple[Path, dict]], plots: Path) -> list[Path]:
    """Every plot: the newest run's latency per machine, and the tuning curves."""
    newest: dict[str, dict] = {}
    for _path, run in runs:
        newest[provenance.machine_key(run["machine"])] = run
    made = [latency(run, plots / key / "latency.png") for key, run in newest.items()]
    made.append(tuning(runs, plots / "tuning-progress.png"))
    return [m for m in made if m is not None]
