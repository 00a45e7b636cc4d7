"""The target registry: shipped files validate, host resolves, bad files name file and key."""

import shutil

import pytest

from tvmedge import targets
from tvmedge.errors import TargetError


def test_every_shipped_target_file_validates():
    files = sorted(targets.SHIPPED_DIR.glob("*.toml"))
    assert files, "no shipped target files"
    for path in files:
        t = targets.parse_target_file(path)
        assert t.name == path.stem
        t.tvm_target()  # TVM accepts the dict


def test_host_resolves_to_this_cpu():
    host = targets.get("host")
    assert host.tvm["kind"] == "llvm" and host.tvm["mcpu"] not in ("", "generic")
    assert host.tvm["num-cores"] >= 1
    assert host.describe().startswith("host -> llvm ")
    assert str(host.tvm_target().attrs["mcpu"]) == host.tvm["mcpu"]


def test_unknown_target_suggests_nearest_names():
    with pytest.raises(TargetError, match=r"did you mean 'x86-64-avx2' or .*known targets: host,"):
        targets.get("x86-64-avx")


def _copy_with(tmp_path, old, new):
    src = targets.SHIPPED_DIR / "x86-64-avx2.toml"
    path = tmp_path / "my-cpu.toml"
    text = src.read_text().replace('name = "x86-64-avx2"', 'name = "my-cpu"')
    path.write_text(text.replace(old, new))
    return path


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ('mcpu = "haswell"', 'mcpuu = "haswell"', r"unknown key 'tvm.mcpuu' \(did you mean 'mcpu'"),
        ('family = "x86"', 'family = "risc-v"', "family 'risc-v' is not one of"),
        ('kind = "llvm"', 'kind = "cuda"', "needs tvm.kind = 'llvm'"),
        ('int8_dot = "none"', 'int8_dot = "dp4a"', "does not exist on the x86 family"),
        ('mtriple = "x86_64-linux-gnu"', 'mtriple = "aarch64-linux-gnu"', "does not fit family"),
        (
            '\ntriple = "x86_64-linux-gnu"',
            '\ntriple = "arm-linux-gnueabihf"',
            "does not match the target",
        ),
        ("[tuning]\n", "[tunning]\n", r"unknown key 'tunning' \(did you mean 'tuning'"),
        ("simd_width = 256\n", "", "missing required key 'capabilities.simd_width'"),
        ("simd_width = 256", 'simd_width = "wide"', "must be a int"),
        ('name = "my-cpu"', 'name = "other"', "must match the file name"),
        ("[tvm]", "[tvm", "not valid TOML"),
    ],
)
def test_bad_target_files_name_file_and_key(tmp_path, old, new, message):
    path = _copy_with(tmp_path, old, new)
    with pytest.raises(TargetError, match=message) as info:
        targets.parse_target_file(path)
    assert str(path) in str(info.value)


def test_user_target_folder_is_loaded_and_may_not_shadow(tmp_path, monkeypatch):
    _copy_with(tmp_path, "", "")
    monkeypatch.setenv("TVMEDGE_TARGETS_PATH", str(tmp_path))
    assert "my-cpu" in targets.names()
    assert targets.get("my-cpu").source == str(tmp_path / "my-cpu.toml")
    shutil.copy(targets.SHIPPED_DIR / "x86-64-avx2.toml", tmp_path / "x86-64-avx2.toml")
    with pytest.raises(TargetError, match="already defined"):
        targets.names()
