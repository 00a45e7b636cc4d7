"""External data: tensors stored in files next to the model, off unless asked for.

With ``allow_external_data`` a location must be a plain relative path inside the model's folder
(no absolute path, no ``..``), every component of it a real directory or file (no symbolic
link anywhere on the way, opened with ``O_NOFOLLOW`` one component at a time so nothing can be
swapped in between), the file regular with one hard link, and the tensor's offset and length
within it. Each file is copied once, as it is read, into the gate's private folder and hashed;
onnx then loads the tensors from that copy. Anything else is a one-line ModelFileError naming
the tensor, before a byte of it is used: onnx's own loader raises a ValidationError with a
traceback instead, and reads whatever path the model names.
"""

from __future__ import annotations

import errno
import hashlib
import os
import stat
from pathlib import Path, PurePosixPath, PureWindowsPath

import onnx

from tvmedge.errors import ModelFileError
from tvmedge.frontend.gate import ENV, Limits, graph_tensors, graphs, human

_CHUNK = 1 << 20


def external_tensors(model: onnx.ModelProto) -> list[onnx.TensorProto]:
    return [
        t
        for graph in graphs(model.graph)
        for t in graph_tensors(graph)
        if t.data_location == onnx.TensorProto.EXTERNAL
    ]


def refuse_external_data(model: onnx.ModelProto, model_path: Path) -> None:
    """External data is off by default: say which tensors use it and how to allow it."""
    tensors = external_tensors(model)
    if not tensors:
        return
    first = tensors[0]
    location = {e.key: e.value for e in first.external_data}.get("location", "?")
    raise ModelFileError(
        f"'{model_path}' stores {len(tensors)} tensor(s) in external data files (first: "
        f"'{first.name}' in '{location}'); external data is off by default: pass "
        "--allow-external-data (api: allow_external_data=True) if you trust the files next to "
        "the model"
    )


def copy_external_data(
    model: onnx.ModelProto, model_path: Path, private: Path, limits: Limits
) -> dict[str, dict]:
    """Check every external reference, copy each data file into ``private`` (same relative
    location) and return ``{location: {"sha256", "size"}}`` of what was copied."""
    folder = model_path.parent
    copied: dict[str, dict] = {}
    total = 0
    for tensor in external_tensors(model):
        info = {entry.key: entry.value for entry in tensor.external_data}
        where = f"tensor '{tensor.name}' of '{model_path}'"
        parts = _relative_parts(info.get("location", ""), where)
        location = "/".join(parts)
        if location not in copied:
            copied[location] = _copy(folder, parts, private, where)
            total += copied[location]["size"]
            if total > limits.data_bytes:
                raise ModelFileError(
                    f"the external data of '{model_path}' adds up to more than "
                    f"{human(limits.data_bytes)}; if the model really needs it, raise the cap "
                    f"with {ENV['data_bytes']}=BYTES"
                )
        size = copied[location]["size"]
        try:
            offset = int(info.get("offset", 0))
            length = int(info["length"]) if "length" in info else size - offset
        except ValueError:
            raise ModelFileError(
                f"{where} has a non-integer offset or length; re-export it"
            ) from None
        if offset < 0 or length < 0 or offset + length > size:
            raise ModelFileError(
                f"{where} claims bytes {offset}..{offset + length} of '{location}', which has "
                f"{size}; the data file is truncated or not this model's"
            )
        # what onnx reads next is the private copy, under the location checked here
        for entry in tensor.external_data:
            if entry.key == "location":
                entry.value = location
    return copied


def _relative_parts(location: str, where: str) -> tuple[str, ...]:
    if not location:
        raise ModelFileError(f"{where} is stored externally but names no file; re-export it")
    if (
        PurePosixPath(location).is_absolute()
        or PureWindowsPath(location).is_absolute()
        or PureWindowsPath(location).drive
    ):
        raise ModelFileError(
            f"{where} points to the absolute path '{location}'; external data must be a "
            "file in the model's own folder: re-save the model with a relative location"
        )
    parts = tuple(p for p in PurePosixPath(location.replace("\\", "/")).parts if p != ".")
    if ".." in parts:
        raise ModelFileError(
            f"{where} points outside the model's folder ('{location}'); external data must "
            "be a file in the model's own folder: move it there and re-save the model"
        )
    if not parts or "\0" in location:
        raise ModelFileError(f"{where} names no usable data file ('{location}'); re-export it")
    return parts


def _copy(folder: Path, parts: tuple[str, ...], private: Path, where: str) -> dict:
    """Open ``folder/parts`` one component at a time without following links, copy it into
    ``private`` and hash it; the checks apply to the file actually read."""
    location = "/".join(parts)
    nofollow = os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
    fds = []
    try:
        fds.append(os.open(folder, os.O_RDONLY | os.O_DIRECTORY))
        for i, part in enumerate(parts):
            flags = nofollow | (os.O_DIRECTORY if i < len(parts) - 1 else 0)
            try:
                fds.append(os.open(part, flags, dir_fd=fds[-1]))
            except OSError as e:
                raise _open_error(e, where, location, folder.joinpath(*parts[: i + 1])) from None
        st = os.fstat(fds[-1])
        if not stat.S_ISREG(st.st_mode):
            raise ModelFileError(f"{where} names '{location}', which is not a regular file")
        if st.st_nlink > 1:
            raise ModelFileError(
                f"{where} names '{location}', a hard link ({st.st_nlink} names for one file); "
                "external data must be a plain file of its own: copy it (cp, not ln)"
            )
        target = private.joinpath(*parts)
        target.parent.mkdir(parents=True, exist_ok=True)
        digest, left = hashlib.sha256(), st.st_size
        with open(target, "xb") as out:
            while left:
                block = os.read(fds[-1], min(_CHUNK, left))
                if not block:
                    raise ModelFileError(f"'{location}' shrank while it was read; try again")
                digest.update(block)
                out.write(block)
                left -= len(block)
        return {"sha256": digest.hexdigest(), "size": st.st_size}
    finally:
        for fd in fds:
            os.close(fd)


def _open_error(e: OSError, where: str, location: str, opened: Path) -> ModelFileError:
    if e.errno in (errno.ELOOP, errno.ENOTDIR) and opened.is_symlink():
        return ModelFileError(
            f"{where} names '{location}', which is or goes through a symbolic link; external "
            "data must be a regular file in the model's own folder: copy the data file there"
        )
    if e.errno == errno.ENOENT:
        return ModelFileError(
            f"{where} names the data file '{location}', which does not exist next to the "
            "model; copy it there"
        )
    return ModelFileError(f"{where}: cannot read '{location}' ({e.strerror})")
