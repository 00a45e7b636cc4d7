"""tvmedge inspect ARTIFACT [--json]"""

import json

from tvmedge import api


def add_parser(sub) -> None:
    p = sub.add_parser("inspect", help="show what an artifact is and check its file hashes")
    p.add_argument("artifact", help="the NAME.tvmedge directory")
    p.add_argument("--json", action="store_true", help="print the raw manifest")
    p.set_defaults(handler=handle)


def _io(specs) -> str:
    return ", ".join(f"{s['name']}: {s['dtype']}[{','.join(map(str, s['shape']))}]" for s in specs)


def _tuning(t: dict) -> str:
    c = t["coverage"]
    text = (
        f"{c['tuned']} of {c['kernels']} kernels tuned, "
        f"{len(c.get('transferred', {}))} with transferred schedules, {c['default_scheduled']} "
        f"with default schedules, {len(c['unscheduled'])} with plain loops"
    )
    if t["applied"]:
        text += f" ({t['logs']['records']} records from {', '.join(t['logs']['folders'])})"
    if c["untuned"]:
        text += (
            "; untuned: " + ", ".join(c["untuned"][:6]) + (", ..." if len(c["untuned"]) > 6 else "")
        )
    return text


def _trust(artifact: str, m: dict) -> list[str]:
    from pathlib import Path

    from tvmedge.runtime.signature import SIGNATURE

    signed = (Path(artifact) / SIGNATURE).is_file()
    lines = [
        "signature  "
        + (
            f"{SIGNATURE} (check it with `tvmedge verify {artifact} --pub KEY`)"
            if signed
            else "none (sign with `tvmedge sign`)"
        )
    ]
    if m.get("sbom"):
        lines.append(f"sbom       {m['sbom']} (CycloneDX 1.6)")
    if m.get("release") is not None or m.get("golden"):
        golden = "golden vectors " + (m["golden"]["file"] if m.get("golden") else "none")
        lines.append(f"release    {m.get('release', '-')}, {golden}")
    return lines


def _cuda(m: dict) -> list[str]:
    cuda = m.get("cuda")
    if not cuda:
        return []
    return [
        f"cuda       {cuda['kernels']} kernels for {cuda['arch']}: {cuda['cubin']} ({cuda['nvcc']})"
    ]


def _bundle(m: dict) -> list[str]:
    bundle = m.get("bundle")
    if not bundle:
        return []
    lines = [f"bundle     runner {bundle['runner']}, C API {bundle['c_api']['header']}"]
    for name, lib in bundle["runtime_libraries"].items():
        lines.append(f"           {name}: {lib['source']}, sha256 {lib['sha256'][:16]}...")
    return lines


def _quantize(m: dict) -> list[str]:
    """The quantization record: what ran in int8, and its accuracy against the float model."""
    record = next((r for r in m["rewrites"] if r["name"] == "quantize"), None)
    if record is None:
        return []
    opts, rep = record["options"], record["report"]
    layers, acc, size = rep["layers"], rep["accuracy"], rep["size"]
    floats = layers["kept_float"] + layers["fallback_float"]
    lines = [
        f"quantize   {opts['scheme']} ({opts['method']} calibration on "
        f"{rep['calibration']['samples']} samples; activations {opts['activations']}, weights "
        f"{opts['weights']}): {len(layers['int8'])} layers int8, {len(floats)} float"
        + (f" ({', '.join(floats)})" if floats else ""),
        f"accuracy   vs the float model on {rep['validation']['samples']} samples "
        f"({rep['validation']['from']}), measured with {acc['measured_with']}:",
    ]
    for row in acc["outputs"]:
        parts = []
        if "accuracy" in row:
            a = row["accuracy"]
            parts.append(
                f"accuracy {a['candidate']:.2%} vs {a['reference']:.2%} ({a['retained']:.2%} kept)"
            )
        if "top1_agreement" in row:
            parts.append(f"top-1 agreement {row['top1_agreement']:.2%}")
        if "sqnr_db" in row:
            sqnr = "exact" if row["sqnr_db"] is None else f"{row['sqnr_db']:.1f} dB"
            parts.append(
                f"SQNR {sqnr}, max abs error {row['max_abs_error']:.3g}, "
                f"mean {row['mean_abs_error']:.3g}"
            )
        if "mismatches" in row:
            parts.append(f"{row['mismatches']} values differ")
        lines.append(f"           {row['output']}: " + "; ".join(parts))
    floor = rep.get("floor")
    if floor:
        fell = layers["fallback_float"]
        lines.append(
            f"           floor {floor['floor']} met"
            + (f" after returning {', '.join(fell)} to float" if fell else "")
        )
    library = f", library {size['library_bytes']} bytes" if size.get("library_bytes") else ""
    lines.append(
        f"           size: float model {size['float_model_bytes']} bytes, int8 model "
        f"{size['int8_model_bytes']} bytes{library}"
    )
    return lines


def _pruning(m: dict) -> list[str]:
    from tvmedge.rewrites.prune.record import NAME, summary

    lines = [f"pruned     {summary(r)}" for r in m["rewrites"] if r["name"] == NAME]
    for r in m["rewrites"]:
        report = r.get("report", {})
        if r["name"] == "shrink-channels" and report.get("layers"):
            (p0, p1), (m0, m1) = report["params"], report["macs"]
            lines.append(
                f"shrunk     {len(report['layers'])} layers: params {p0} -> {p1}, MACs {m0} -> "
                f"{m1}, {report['zero_kept']} of {report['zero_filters']} zero filters kept"
            )
    return lines


def handle(args) -> int:
    m = api.inspect(args.artifact)
    if args.json:
        print(json.dumps(m, indent=2))
        return 0
    target = m["target"]
    tvm_settings = " ".join(
        f"{k}={','.join(map(str, v)) if isinstance(v, list) else v}"
        for k, v in target["tvm"].items()
    )
    lines = [
        f"artifact   {args.artifact} (schema v{m['schema_version']}, created {m['created']})",
        f"source     {m['source']['file']} sha256 {m['source']['sha256'][:16]}... "
        f"opset {m['source']['opset']} producer {m['source']['producer'] or '-'}",
        f"inputs     {_io(m['inputs'])}",
        f"outputs    {_io(m['outputs'])}",
        "shapes     "
        + (
            "static"
            if m["shapes"]["static"]
            else "symbolic: " + ", ".join(m["shapes"]["symbolic_dims"])
        ),
        f"target     {target['name']} ({target['family']}, runs on {target['runtime_arch']}): "
        f"{tvm_settings}",
        f"toolchain  {m['build']['toolchain']['cc']} ({m['build']['toolchain']['version']})",
        *_cuda(m),
        *_bundle(m),
        "rewrites   " + (", ".join(r["name"] for r in m["rewrites"]) or "none"),
        *_quantize(m),
        *_pruning(m),
        "tuning     " + _tuning(m["tuning"]),
        "versions   " + " ".join(f"{k} {v}" for k, v in m["versions"].items()),
        "files      "
        + ", ".join(
            f"{n} ({f['size']} bytes, sha256 {f['sha256'][:16]}...)" for n, f in m["files"].items()
        ),
        "integrity  ok: every file matches its sha256",
        *_trust(args.artifact, m),
    ]
    print("\n".join(lines))
    return 0
