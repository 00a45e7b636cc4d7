"""Every artifact carries sbom.cdx.json: valid CycloneDX 1.6 JSON naming the source model and its
hash, the software that compiled it, the compiler, every shipped file and the tuning logs
applied, each checked here against the files and installed packages themselves."""

from __future__ import annotations

import json
from importlib import metadata
from pathlib import Path

import pytest
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator
from hostile_models import relu

from tvmedge import api
from tvmedge.layout import sha256_file


@pytest.fixture(scope="module")
def tiny(tiny_artifact):
    manifest = json.loads((tiny_artifact / "manifest.json").read_text())
    return tiny_artifact, manifest, json.loads((tiny_artifact / "sbom.cdx.json").read_text())


def _by_name(sbom: dict) -> dict[str, dict]:
    return {c["name"]: c for c in sbom["components"]}


def _sha(component: dict) -> str:
    (h,) = [h["content"] for h in component["hashes"] if h["alg"] == "SHA-256"]
    return h


def test_it_is_valid_cyclonedx_1_6_listed_in_the_manifest(tiny):
    art, manifest, sbom = tiny
    text = (art / "sbom.cdx.json").read_text()
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(text) is None
    assert sbom["bomFormat"] == "CycloneDX" and sbom["specVersion"] == "1.6"
    assert manifest["sbom"] == "sbom.cdx.json"
    assert manifest["files"]["sbom.cdx.json"]["sha256"] == sha256_file(art / "sbom.cdx.json")


def test_it_names_the_source_model_and_its_hash(tiny, tiny_cnn):
    _art, _manifest, sbom = tiny
    model = _by_name(sbom)["tiny_cnn.onnx"]
    assert model["type"] == "machine-learning-model"
    assert _sha(model) == sha256_file(tiny_cnn)


def test_it_names_the_software_and_compiler(tiny):
    _art, manifest, sbom = tiny
    found = _by_name(sbom)
    for dist in ("tvmedge", "apache-tvm", "apache-tvm-ffi", "onnx"):
        assert found[dist]["version"] == metadata.version(dist), dist
        assert found[dist]["purl"] == f"pkg:pypi/{dist}@{metadata.version(dist)}"
    assert found["llvm"]["version"] == str(manifest["versions"]["llvm"])
    cc = manifest["build"]["toolchain"]
    assert found[cc["cc"]]["version"] == cc["version"]
    tools = {t["name"] for t in sbom["metadata"]["tools"]["components"]}
    assert {"tvmedge", "apache-tvm", "apache-tvm-ffi", "onnx", "llvm", cc["cc"]} <= tools


def test_it_hashes_every_shipped_file(tiny):
    art, _manifest, sbom = tiny
    shipped = {
        c["name"]: _sha(c)
        for c in sbom["components"]
        if any(p == {"name": "tvmedge:shipped", "value": "true"} for p in c.get("properties", []))
    }
    assert shipped == {"model.so": sha256_file(art / "model.so")}


def test_tuning_logs_applied_are_listed_with_their_hashes(tiny, tmp_path):
    """The manifest of tiny (this CPU may have no logs) as if the shipped x86-64-avx2 logs had
    been applied: every file of theirs is listed with its hash."""
    from tvmedge.export.sbom import render

    art, manifest, _sbom = tiny
    folder = next((Path(__file__).parent.parent / "tuning-logs" / "x86-64-avx2").iterdir())
    applied = {**manifest, "tuning": {"applied": True, "logs": {"folders": [str(folder)]}}}
    sbom = json.loads(render(applied, art))
    logs = [c for c in sbom["components"] if c["bom-ref"].startswith("tuning-log:")]
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    assert len(files) >= 2 and len(logs) == len(files)
    for component, path in zip(logs, files, strict=True):
        assert component["name"] == f"{folder}/{path.name}"
        assert _sha(component) == sha256_file(path)


def test_without_logs_none_are_listed(tmp_path):
    path = tmp_path / "relu.onnx"
    path.write_bytes(relu().SerializeToString())
    built = api.compile(
        path, output=tmp_path / "a.tvmedge", use_tuning_logs=False, log=lambda _m: None
    )
    sbom = json.loads((built.path / "sbom.cdx.json").read_text())
    assert not [c for c in sbom["components"] if c["bom-ref"].startswith("tuning-log:")]
    assert sbom["metadata"]["timestamp"].startswith(built.manifest["created"][:19])
