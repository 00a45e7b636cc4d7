"""The shape of the manifest fields the runtime reads, checked before any is used.

A manifest that parses as JSON can still hold anything; without this a crafted or damaged one
raised KeyError or TypeError deep in the loader. Each rule names a field and what it must be;
the first that fails is one ArtifactError line naming the field.
"""

from __future__ import annotations

from pathlib import PurePosixPath

from tvmedge.errors import ArtifactError


def _is_dim(d) -> bool:
    # a size, or a symbolic dim: a name ("batch"), an expression of names ("n * 2") or "?"
    # (an output whose size the compiler could not derive)
    return (isinstance(d, int) and not isinstance(d, bool) and d >= 0) or (
        isinstance(d, str) and 0 < len(d) <= 256 and d.isprintable()
    )


def _tensor(t) -> bool:
    return (
        isinstance(t, dict)
        and isinstance(t.get("name"), str)
        and isinstance(t.get("dtype"), str)
        and isinstance(t.get("shape"), list)
        and all(_is_dim(d) for d in t["shape"])
    )


def _file_name(name) -> bool:
    if not isinstance(name, str) or not name or "\\" in name or "\0" in name:
        return False
    p = PurePosixPath(name)
    return not p.is_absolute() and ".." not in p.parts and "." not in p.parts


def _file_entry(entry) -> bool:
    return (
        isinstance(entry, dict)
        and isinstance(entry.get("sha256"), str)
        and isinstance(entry.get("size"), int)
        and not isinstance(entry.get("size"), bool)
        and entry["size"] >= 0
    )


_RULES = (
    ("inputs", "a list of {name, dtype, shape}", lambda m: isinstance(m.get("inputs"), list)
        and all(_tensor(t) for t in m["inputs"])),
    ("outputs", "a list of {name, dtype, shape}", lambda m: isinstance(m.get("outputs"), list)
        and all(_tensor(t) for t in m["outputs"])),
    ("files", "an object of relative file name -> {sha256, size}",
        lambda m: isinstance(m.get("files"), dict)
        and all(_file_name(k) and _file_entry(v) for k, v in m["files"].items())),
    ("runtime", "an object with a string 'device'", lambda m: isinstance(m.get("runtime"), dict)
        and isinstance(m["runtime"].get("device"), str)),
    ("target", "an object with string 'name' and 'runtime_arch'",
        lambda m: isinstance(m.get("target"), dict)
        and isinstance(m["target"].get("name"), str)
        and isinstance(m["target"].get("runtime_arch"), str)),
    ("cpu", "absent, or an object whose 'features' is a list of strings",
        lambda m: m.get("cpu") is None or (isinstance(m["cpu"], dict)
        and isinstance(m["cpu"].get("features", []), list)
        and all(isinstance(f, str) for f in m["cpu"].get("features", [])))),
    ("release", "absent, or a whole number >= 0", lambda m: m.get("release") is None
        or (type(m["release"]) is int and m["release"] >= 0)),
)  # fmt: skip


def check_manifest(manifest: dict, where: str) -> None:
    """Raise ArtifactError naming the first field of ``manifest`` that is not as the runtime
    needs it."""
    for field, wanted, ok in _RULES:
        if not ok(manifest):
            raise ArtifactError(
                f"{where} is malformed: '{field}' must be {wanted}; recompile the artifact"
            )
