"""The artifact's SBOM: ``sbom.cdx.json``, CycloneDX 1.6 JSON (cyclonedx-python-lib).

It says what the artifact was made from and with, each with a hash where there is a file:
  - the source model (type machine-learning-model, sha256) and its external data files;
  - model.sig aside, every file the artifact ships: model.so and, in device bundles, the
    runtime libraries and programs under runtime/ (sha256 of each);
  - the software that made it, as metadata tools and as components with a package URL:
    tvmedge, TVM, tvm-ffi, ONNX, LLVM, and the (cross) compiler that linked model.so;
  - the tuning-log files applied (sha256 of each file of each folder), or none.
Written by ``export`` before the file table is hashed, it is listed in the manifest and covered
by the signature like every other file. Its serial number derives from the model's and
model.so's hashes and its timestamp is the manifest's ``created`` (SOURCE_DATE_EPOCH when set),
so a reproducible build gives a byte-identical SBOM.
"""

from __future__ import annotations

import datetime
import uuid
from collections.abc import Callable
from pathlib import Path

from tvmedge.layout import LIBRARY, sha256_file

SBOM = "sbom.cdx.json"
_ROLE = "tvmedge:role"
# manifest["versions"] key -> (component name, PyPI distribution or None for a plain tool)
_SOFTWARE = {
    "tvmedge": ("tvmedge", "tvmedge"),
    "tvm": ("apache-tvm", "apache-tvm"),
    "tvm_ffi": ("apache-tvm-ffi", "apache-tvm-ffi"),
    "onnx": ("onnx", "onnx"),
    "llvm": ("llvm", None),
}


def sbom_writer(manifest: dict) -> Callable[[Path], dict]:
    """An artifact extra (export.write_artifact) that writes the SBOM of the artifact being
    written from ``manifest`` (source, versions, toolchain, tuning) and the files already in
    its folder; it adds ``{"sbom": "sbom.cdx.json"}`` to the manifest."""

    def write(folder: Path) -> dict:
        (folder / SBOM).write_text(render(manifest, folder) + "\n")
        return {"sbom": SBOM}

    return write


def render(manifest: dict, folder: Path) -> str:
    from cyclonedx.model import HashAlgorithm, HashType, Property
    from cyclonedx.model.bom import Bom, BomMetaData
    from cyclonedx.model.component import Component, ComponentType
    from cyclonedx.model.tool import ToolRepository
    from cyclonedx.output import make_outputter
    from cyclonedx.schema import OutputFormat, SchemaVersion
    from packageurl import PackageURL

    def sha(digest: str) -> list:
        return [HashType(alg=HashAlgorithm.SHA_256, content=digest)]

    def props(**values) -> list:
        return [Property(name=f"tvmedge:{k}", value=str(v)) for k, v in values.items() if v]

    source = manifest["source"]
    components = [
        Component(
            type=ComponentType.MACHINE_LEARNING_MODEL,
            name=source["file"],
            bom_ref="source-model",
            hashes=sha(source["sha256"]),
            properties=props(
                role="source-model",
                opset=source.get("opset"),
                ir_version=source.get("ir_version"),
                producer=source.get("producer"),
                size=source.get("size"),
            ),
        )
    ]
    for location, data in sorted((source.get("data_files") or {}).items()):
        components.append(
            Component(
                type=ComponentType.DATA,
                name=location,
                bom_ref=f"source-data:{location}",
                hashes=sha(data["sha256"]),
                properties=props(role="source-external-data", size=data["size"]),
            )
        )
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and p.name != SBOM):
        name = path.relative_to(folder).as_posix()
        role = "compiled-model" if name == LIBRARY else "runtime"
        kind = ComponentType.FILE
        if name.endswith(".so") and name != LIBRARY:
            kind = ComponentType.LIBRARY
        components.append(
            Component(
                type=kind,
                name=name,
                bom_ref=f"file:{name}",
                hashes=sha(sha256_file(path)),
                properties=props(role=role, shipped="true"),
            )
        )
    tools = []
    versions = manifest.get("versions") or {}
    for key, (name, dist) in _SOFTWARE.items():
        version = versions.get(key)
        purl = PackageURL("pypi", name=dist, version=str(version)) if dist and version else None
        tools.append(
            Component(
                type=ComponentType.APPLICATION if dist is None else ComponentType.LIBRARY,
                name=name,
                version=str(version) if version is not None else None,
                purl=purl,
                bom_ref=f"tool:{name}",
                properties=props(role="compiler"),
            )
        )
    toolchain = (manifest.get("build") or {}).get("toolchain") or {}
    if toolchain.get("cc"):
        tools.append(
            Component(
                type=ComponentType.APPLICATION,
                name=toolchain["cc"],
                version=toolchain.get("version") or None,
                bom_ref="tool:cc",
                description="the (cross) compiler and linker of model.so",
                properties=props(
                    role="toolchain",
                    triple=toolchain.get("triple"),
                    flags=" ".join(toolchain.get("flags") or []),
                ),
            )
        )
    components += tools
    components += _tuning_logs(manifest.get("tuning") or {}, sha, props)
    target = manifest.get("target") or {}
    artifact = Component(
        type=ComponentType.APPLICATION,
        name=Path(source["file"]).stem + ".tvmedge",
        bom_ref="artifact",
        description=f"tvmedge artifact for target '{target.get('name')}'",
        properties=props(target=target.get("name"), runtime_arch=target.get("runtime_arch")),
    )
    bom = Bom(
        components=components,
        serial_number=uuid.uuid5(
            uuid.NAMESPACE_URL,
            f"tvmedge:{source['sha256']}:{sha256_file(folder / LIBRARY)}",
        ),
        metadata=BomMetaData(
            component=artifact,
            tools=ToolRepository(components=[_copy_tool(t) for t in tools]),
            timestamp=datetime.datetime.fromisoformat(manifest["created"]),
        ),
    )
    bom.register_dependency(artifact, components)
    return make_outputter(bom, OutputFormat.JSON, SchemaVersion.V1_6).output_as_string(indent=2)


def _copy_tool(tool):
    """metadata.tools lists the same software as the components, under its own bom-refs."""
    from cyclonedx.model.component import Component

    return Component(
        type=tool.type, name=tool.name, version=tool.version, purl=tool.purl,
        bom_ref=f"metadata-{tool.bom_ref.value}",
    )  # fmt: skip


def _tuning_logs(tuning: dict, sha, props) -> list:
    from cyclonedx.model.component import Component, ComponentType

    if not tuning.get("applied"):
        return []
    out = []
    for folder in (tuning.get("logs") or {}).get("folders") or []:
        for path in sorted(p for p in Path(folder).rglob("*") if p.is_file()):
            name = f"{folder}/{path.relative_to(folder).as_posix()}"
            out.append(
                Component(
                    type=ComponentType.DATA,
                    name=name,
                    bom_ref=f"tuning-log:{name}",
                    hashes=sha(sha256_file(path)),
                    properties=props(role="tuning-log", applied="true"),
                )
            )
    return out
