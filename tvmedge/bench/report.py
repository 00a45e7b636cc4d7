"""The bench report as a text table (tabulate) and as JSON."""

from __future__ import annotations

import csv
import io
import json
import os
import tempfile
from pathlib import Path

from tabulate import tabulate


def _size(n: int) -> str:
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} B"


def _ms(value: float) -> str:
    return f"{value:.3f}" if value < 100 else f"{value:.1f}"


def table(report: dict) -> str:
    t, o = report["engines"]["tvmedge"], report["engines"]["onnxruntime"]
    tl, ol = t["latency"], o["latency"]
    ref = report.get("reference", report["model"])
    rows = [
        [f"latency {k[:-3]} (ms)", _ms(tl[k]), _ms(ol[k]), f"{tl[k] / ol[k]:.2f}x"]
        for k in ("p50_ms", "p90_ms", "p99_ms", "mean_ms")
    ]
    rows += [
        ["latency std (ms)", _ms(tl["std_ms"]), _ms(ol["std_ms"]), ""],
        [
            "throughput (runs/s)",
            f"{tl['throughput_per_s']:.1f}",
            f"{ol['throughput_per_s']:.1f}",
            f"{tl['throughput_per_s'] / ol['throughput_per_s']:.2f}x",
        ],
        ["load time (s)", f"{t['load_s']:.3f}", f"{o['load_s']:.3f}", ""],
        ["threads applied", t.get("threads_applied", "-"), o.get("threads_applied", "-"), ""],
        [
            "peak RSS",
            _size(t["memory"]["peak_rss_bytes"]),
            _size(o["memory"]["peak_rss_bytes"]),
            "",
        ],
        [
            "peak RSS over import",
            _size(t["memory"]["model_peak_bytes"]),
            _size(o["memory"]["model_peak_bytes"]),
            "",
        ],
        [
            "size on disk",
            _size(report["artifact"]["bytes"]),
            _size(ref["onnx_bytes"]),
            f"{report['artifact']['bytes'] / ref['onnx_bytes']:.2f}x",
        ],
    ]
    s = report["settings"]
    head = (
        f"{Path(report['model']['file']).name} on {report['machine']['cpu']} "
        f"({report['machine']['physical_cores']} cores), target {report['artifact']['target']}"
        f"{'' if report['artifact']['tuned'] else ' (untuned)'}; threads {s['threads']}, "
        f"warm-up {s['warmup']}, runs {s['repeat']}"
        + (f" x {s['rounds']} alternating rounds" if s.get("rounds", 1) > 1 else "")
        + (
            f"; onnxruntime runs {Path(ref['file']).name}"
            if ref["file"] != report["model"]["file"]
            else ""
        )
    )
    perf = tabulate(rows, headers=["", "tvmedge", "onnxruntime", "tvmedge/ort"], tablefmt="github")
    agree_rows = [
        [
            r["output"],
            "x".join(map(str, r["shape"])),
            _num(r.get("max_abs")),
            _num(r.get("max_rel")),
            _pct(r.get("top1_agreement")),
            "ok" if r["ok"] else "MISMATCH " + r.get("error", ""),
        ]
        for r in report["agreement"]
    ]
    agree = tabulate(
        agree_rows,
        headers=["output", "shape", "max abs err", "max rel err", "top-1 agree", "status"],
        tablefmt="github",
    )
    tol = f"tolerance: max|tvmedge-ort| <= {s['atol']:g} + {s['rtol']:g} * max|ort|"
    lines = [head, "", perf, "", agree, tol]
    lines += [f"warning: {w}" for w in report["warnings"]]
    return "\n".join(lines)


def _num(value) -> str:
    return "-" if value is None else f"{value:.3g}"


def _pct(value) -> str:
    return "-" if value is None else f"{value:.0%}"


def write_json(report: dict, path: Path) -> None:
    _write_atomic(path, json.dumps(report, indent=2) + "\n")


def _write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to a temporary sibling and rename it into place: no half-written file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# One row per engine and bench report; the columns benchmarkers load into a spreadsheet.
CSV_FIELDS = (
    "model",
    "engine",
    "target",
    "tuned",
    "threads",
    "threads_applied",
    "warmup",
    "repeat",
    "rounds",
    "runs",
    "p50_ms",
    "p90_ms",
    "p99_ms",
    "mean_ms",
    "std_ms",
    "min_ms",
    "cv",
    "throughput_per_s",
    "load_s",
    "peak_rss_bytes",
    "size_bytes",
    "agree",
    "ratio_p50",
)


def csv_rows(report: dict) -> list[dict]:
    """The report as CSV_FIELDS rows: ONNX Runtime's, then tvmedge's."""
    s, rows = report["settings"], []
    for engine, result in report["engines"].items():
        latency = result["latency"]
        rows.append(
            {
                "model": Path(report["model"]["file"]).name,
                "engine": engine,
                "target": report["artifact"]["target"] if engine == "tvmedge" else "cpu",
                "tuned": report["artifact"]["tuned"] if engine == "tvmedge" else "",
                "threads": s["threads"],
                "threads_applied": result.get("threads_applied", ""),
                "warmup": s["warmup"],
                "repeat": s["repeat"],
                "rounds": s.get("rounds", 1),
                **{k: latency[k] for k in CSV_FIELDS if k in latency},
                "load_s": result["load_s"],
                "peak_rss_bytes": result["memory"]["peak_rss_bytes"],
                "size_bytes": report["artifact"]["bytes"]
                if engine == "tvmedge"
                else report["model"]["onnx_bytes"],
                "agree": report["agree"],
                "ratio_p50": report["ratio_p50"] if engine == "tvmedge" else 1.0,
            }
        )
    return rows


def write_csv(reports: list[dict], path: Path) -> None:
    """Write the rows of every report to ``path`` (a header line, then one row per engine)."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CSV_FIELDS, lineterminator="\n")
    writer.writeheader()
    for report in reports:
        writer.writerows(csv_rows(report))
    _write_atomic(path, buf.getvalue())
