"""The native runtime of device bundles: tvmedge_model.h and tvmedge-run, built and run for real.

x86-64 builds with the host g++ against the installed TVM libraries; the aarch64 bundle of the
compile pipeline (libraries from the pinned aarch64 wheels) runs under qemu.
Outputs must match ONNX Runtime.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from tvmedge.errors import BuildError
from tvmedge.export.native import LIBRARY, PROGRAM, SOURCE_DIR, build_native

AARCH64_CXX = "aarch64-linux-gnu-g++"
AARCH64_SYSROOT = "/usr/aarch64-linux-gnu"


def installed_lib(package: str, name: str) -> Path:
    return Path(importlib.util.find_spec(package).origin).parent / "lib" / name


def run_native(bundle: Path, model: Path, *args, emulator: tuple[str, ...] = ()):
    return subprocess.run(
        [*emulator, str(bundle / PROGRAM), str(model), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=300,
    )


def reference(onnx_path: Path, image: np.ndarray) -> np.ndarray:
    return ort.InferenceSession(str(onnx_path)).run(None, {"image": image})[0]


def check_run(done, out_dir: Path, onnx_path: Path, image: np.ndarray, runs: int) -> None:
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)  # exactly one JSON line
    assert report["runs"] == runs and report["load_ms"] > 0
    ms = report["latency_ms"]
    assert 0 < ms["min"] <= ms["p50"] <= ms["p90"] <= ms["p99"]
    assert ms["min"] <= ms["mean"]
    [output] = report["outputs"]
    assert output["name"] == "probs" and output["shape"] == [len(image), 10]
    assert Path(output["file"]) == out_dir / "probs.npy"
    np.testing.assert_allclose(
        np.load(out_dir / "probs.npy"), reference(onnx_path, image), rtol=1e-4, atol=1e-6
    )


@pytest.fixture(scope="module")
def x86_bundle(tmp_path_factory) -> Path:
    bundle = tmp_path_factory.mktemp("bundle-x86")
    shutil.copy(installed_lib("tvm", "libtvm_runtime.so"), bundle)
    shutil.copy(installed_lib("tvm_ffi", "libtvm_ffi.so"), bundle)
    # -Werror: the sources must stay warning-free under -Wall -Wextra.
    build_native(cxx="g++", flags=["-Werror"], runtime_lib_dir=bundle, out_dir=bundle)
    return bundle


@pytest.mark.parametrize("batch", [1, 8])
def test_x86_matches_onnxruntime(x86_bundle, tiny_artifact, tiny_cnn, tmp_path, batch):
    image = np.random.default_rng(batch).standard_normal((batch, 3, 32, 32)).astype(np.float32)
    np.save(tmp_path / "image.npy", image)
    out = tmp_path / "out"
    args = ["--input", f"image={tmp_path / 'image.npy'}", "--output-dir", out]
    done = run_native(x86_bundle, tiny_artifact / "model.so", *args, "--warmup", 2, "--repeat", 5)
    check_run(done, out, tiny_cnn, image, runs=5)


@pytest.mark.parametrize(
    ("array", "args", "message"),
    [
        (
            np.zeros((1, 3, 32, 32)),
            [],
            "input 'image' has dtype float64, the model expects float32",
        ),
        (np.zeros((3, 32, 32), np.float32), [], "has 3 dimension(s), the model expects 4"),
        (np.zeros((1, 3, 31, 32), np.float32), [], "has shape [1,3,31,32], the model expects"),
        (np.zeros((2, 3, 32, 32), np.float32, order="F"), [], "is in Fortran order"),
        (None, [], "missing --input image=FILE.npy"),
        (np.zeros((1, 3, 32, 32), np.float32), ["--input", "x=y.npy"], "has no input 'x'"),
        (None, ["--repeat", "0"], "--repeat needs a whole number"),
    ],
    ids=["dtype", "ndim", "static-dim", "fortran", "missing", "unknown-name", "bad-repeat"],
)
def test_x86_bad_input(x86_bundle, tiny_artifact, tmp_path, array, args, message):
    if array is not None:
        np.save(tmp_path / "image.npy", array)
        args = [*args, "--input", f"image={tmp_path / 'image.npy'}"]
    done = run_native(x86_bundle, tiny_artifact / "model.so", *args)
    assert done.returncode != 0 and done.stdout == ""
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("tvmedge-run: ")
    assert message in done.stderr


@pytest.mark.parametrize(
    ("args", "env", "expected"),
    [
        ([], None, "cores"),
        (["--threads", "1"], None, 1),
        ([], "1", 1),
        (["--threads", "2"], "1", 2),
    ],
    ids=["default", "flag", "env", "flag-over-env"],
)
def test_x86_threads_like_onnxruntime(x86_bundle, tiny_artifact, tmp_path, args, env, expected):
    """tvmedge-run (tvmedge_set_threads) uses the physical cores unless told otherwise."""
    import os

    from tvmedge import machine

    np.save(tmp_path / "image.npy", np.zeros((1, 3, 32, 32), np.float32))
    environ = {k: v for k, v in os.environ.items() if k != "TVM_NUM_THREADS"}
    if env is not None:
        environ["TVM_NUM_THREADS"] = env
    cmd = [x86_bundle / PROGRAM, tiny_artifact / "model.so", "--input"]
    cmd += [f"image={tmp_path / 'image.npy'}", *args]
    done = subprocess.run(cmd, capture_output=True, text=True, env=environ, timeout=300)
    assert done.returncode == 0, done.stderr
    want = machine.physical_cores() if expected == "cores" else expected
    assert json.loads(done.stdout)["threads"] == want


def test_x86_missing_model(x86_bundle, tmp_path):
    model = tmp_path / "nope.so"
    done = run_native(x86_bundle, model)
    assert done.returncode != 0 and done.stdout == ""
    expected = f"tvmedge-run: error: cannot load model '{model}': No such file or directory\n"
    assert done.stderr == expected


def multi_output_model(path: Path) -> Path:
    """Three inputs and outputs of float32, int64 and bool, with names unfit for file names."""
    import onnx
    from onnx import TensorProto, helper

    def info(name, dtype, shape):
        return helper.make_tensor_value_info(name, dtype, shape)

    graph = helper.make_graph(
        [
            helper.make_node("Mul", ["x", "two"], ["a/b"]),
            helper.make_node("Add", ["ids", "one"], ["a:b"]),
            helper.make_node("Not", ["mask"], [".m"]),
        ],
        "multi",
        [
            info("x", TensorProto.FLOAT, ["batch", 4]),
            info("ids", TensorProto.INT64, ["batch"]),
            info("mask", TensorProto.BOOL, ["batch"]),
        ],
        [
            info("a/b", TensorProto.FLOAT, ["batch", 4]),
            info("a:b", TensorProto.INT64, ["batch"]),
            info(".m", TensorProto.BOOL, ["batch"]),
        ],
        [
            helper.make_tensor("two", TensorProto.FLOAT, [], [2.0]),
            helper.make_tensor("one", TensorProto.INT64, [], [1]),
        ],
    )
    opset = [helper.make_opsetid("", 17)]
    onnx.save(helper.make_model(graph, opset_imports=opset, ir_version=8), path)  # ORT reads 8
    return path


def test_x86_multi_output_dtypes_and_file_names(x86_bundle, tmp_path):
    from tvmedge import api

    onnx_path = multi_output_model(tmp_path / "multi.onnx")
    artifact = api.compile(onnx_path, output=tmp_path / "multi.tvmedge", log=lambda _m: None).path
    x = np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32)
    feeds = {"x": x, "ids": np.arange(3), "mask": np.array([True, False, True])}
    with open(tmp_path / "x.npy", "wb") as f:  # format 2.0 is read too
        np.lib.format.write_array(f, x, version=(2, 0))
    np.save(tmp_path / "ids.npy", feeds["ids"])
    np.save(tmp_path / "mask.npy", feeds["mask"])
    args = [a for n in feeds for a in ("--input", f"{n}={tmp_path / n}.npy")]
    done = run_native(x86_bundle, artifact / "model.so", *args, "--output-dir", tmp_path / "out")
    assert done.returncode == 0, done.stderr
    files = {o["name"]: Path(o["file"]).name for o in json.loads(done.stdout)["outputs"]}
    assert files == {"a/b": "a_b.npy", "a:b": "a_b_1.npy", ".m": "_m.npy"}
    expected = ort.InferenceSession(str(onnx_path)).run(None, feeds)
    for name, want in zip(files, expected, strict=True):
        got = np.load(tmp_path / "out" / files[name])
        assert got.dtype == want.dtype
        np.testing.assert_array_equal(got, want)

    np.save(tmp_path / "ids.npy", np.arange(2))  # batch 2 against x's batch 3
    done = run_native(x86_bundle, artifact / "model.so", *args)
    assert done.returncode == 1
    assert done.stderr == "tvmedge-run: error: input 'ids' has batch=2 but input 'x' has batch=3\n"


# The API from plain C: the I/O table, errors, an unaligned input (copied), and outputs that
# outlive their model.
C_PROGRAM = r"""
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "tvmedge_model.h"

int main(int argc, char** argv) {
  if (argc != 2) return 2;
  tvmedge_model* m = tvmedge_model_load(argv[1]);
  if (!m) { printf("load: %s\n", tvmedge_last_error()); return 1; }
  printf("%d %d %s %s %d", tvmedge_model_num_inputs(m), tvmedge_model_num_outputs(m),
         tvmedge_model_input_name(m, 0), tvmedge_model_input_dtype(m, 0),
         tvmedge_model_input_ndim(m, 0));
  for (int a = 0; a < 4; ++a) printf(" %lld", (long long)tvmedge_model_input_dim(m, 0, a));
  printf(" %s %lld\n", tvmedge_model_output_name(m, 0),
         (long long)tvmedge_model_output_dim(m, 0, 1));
  long long bad_dim = (long long)tvmedge_model_input_dim(m, 0, 4);  /* sets the error first */
  printf("%lld %s\n", bad_dim, tvmedge_last_error());
  const char* bad_name = tvmedge_model_output_name(m, 1);
  printf("%p %s\n", (void*)bad_name, tvmedge_last_error());

  int64_t shape[4] = {2, 3, 32, 32};
  char* block = malloc(2 * 3 * 32 * 32 * sizeof(float) + 64);
  float* pixels = (float*)(block + 4);  /* deliberately not 64-byte aligned */
  for (int i = 0; i < 2 * 3 * 32 * 32; ++i) pixels[i] = (float)(i % 7) / 7.0f;
  tvmedge_tensor input = {pixels, "float32", 4, shape};
  tvmedge_tensor* out = NULL;
  int n = -1;
  int rc = tvmedge_model_run(m, &input, 2, &out, &n);
  printf("%d %p %d %s\n", rc, (void*)out, n, tvmedge_last_error());
  if (tvmedge_model_run(m, &input, 1, &out, &n) != 0) {
    printf("run: %s\n", tvmedge_last_error());
    return 1;
  }
  tvmedge_model_free(m);
  float sum = 0;
  for (int i = 0; i < 10; ++i) sum += ((float*)out[0].data)[i];
  printf("%d %s %d %lld %lld %.4f %d\n", n, out[0].dtype, out[0].ndim, (long long)out[0].shape[0],
         (long long)out[0].shape[1], sum, (int)((size_t)out[0].data % 64));
  tvmedge_tensors_free(out, n);
  free(block);
  return 0;
}
"""


def test_c_api(x86_bundle, tiny_artifact, tmp_path):
    source = tmp_path / "main.c"
    source.write_text(C_PROGRAM)
    exe = tmp_path / "main"
    cmd = ["gcc", "-std=c99", "-Wall", "-Wextra", "-Werror", f"-I{SOURCE_DIR}", "-o", exe, source]
    cmd += [f"-L{x86_bundle}", "-ltvmedge_model", f"-Wl,-rpath,{x86_bundle}"]
    subprocess.run(cmd, check=True)
    done = subprocess.run([exe, tiny_artifact / "model.so"], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "1 1 image float32 4 -1 3 32 32 probs 10"
    assert lines[1] == "-2 axis 4 is out of range for 'image' of 4 dimension(s)"
    assert lines[2] == "(nil) output index 1 is out of range: the model has 1 output(s)"
    assert lines[3] == "-1 (nil) 0 the model takes 1 input(s) (image), got 2"
    assert lines[4].startswith("1 float32 2 2 10 1.0000 0")  # softmax rows sum to 1


def test_build_error_names_command(x86_bundle, tmp_path):
    with pytest.raises(BuildError) as error:
        build_native(
            cxx="g++", flags=["--no-such-flag"], runtime_lib_dir=x86_bundle, out_dir=tmp_path
        )
    assert "g++ -std=c++17" in str(error.value) and "--no-such-flag" in str(error.value)
    assert "unrecognized command-line option" in str(error.value)
    with pytest.raises(BuildError) as error:
        build_native(cxx="g++", flags=[], runtime_lib_dir=tmp_path, out_dir=tmp_path)
    assert str(error.value) == f"libtvm_runtime.so, libtvm_ffi.so not found in '{tmp_path}'"


@pytest.mark.skipif(shutil.which(AARCH64_CXX) is None, reason=f"{AARCH64_CXX} is not installed")
@pytest.mark.skipif(shutil.which("qemu-aarch64") is None, reason="qemu-aarch64 is not installed")
def test_aarch64_bundle_under_qemu(tiny_cnn, tmp_path):
    """The compile pipeline's Cortex-A72 bundle (runtime from the pinned aarch64 wheels)."""
    from tvmedge import api

    artifact = api.compile(
        tiny_cnn,
        target="cortex-a72",
        output=tmp_path / "a72.tvmedge",
        bundle=True,
        log=lambda _m: None,
    ).path
    bundle = artifact / "runtime"
    assert sorted(p.name for p in bundle.iterdir()) == sorted(
        ["libtvm_ffi.so", "libtvm_runtime.so", LIBRARY, PROGRAM, "tvmedge_model.h"]
    )
    image = np.random.default_rng(0).standard_normal((4, 3, 32, 32)).astype(np.float32)
    np.save(tmp_path / "image.npy", image)
    out = tmp_path / "out"
    args = ["--input", f"image={tmp_path / 'image.npy'}", "--output-dir", out, "--repeat", 2]
    done = run_native(
        bundle, artifact / "model.so", *args, emulator=("qemu-aarch64", "-L", AARCH64_SYSROOT)
    )
    check_run(done, out, tiny_cnn, image, runs=2)
