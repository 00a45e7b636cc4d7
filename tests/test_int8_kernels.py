"""Integer kernels on dot-product instructions (tvmedge.rewrites.int8_dot,
tvmedge.schedules.int8_dot): the int8 rewrite's conv and matmul forms (tests/int8_forms.py),
compiled by the default pipeline, must equal a numpy reference exactly (integer accumulation,
the same float32 requantize) for shapes that are not multiples of the instruction's 4 x lanes,
use ``vpdpbusd`` on x86 with VNNI and ``sdot`` on aarch64 (run under qemu), and be scheduled by
default. Forms the instructions do not take (depthwise, s8 activations on x86) keep the plain
schedules and stay right."""

from __future__ import annotations

import shutil

import numpy as np
import onnxruntime as ort
import pytest
import tvm
from int8_forms import Quant, activation, conv, matmul
from int8_models import SHAPE, cnn, quantize
from test_int8_qdq import output_scale
from tvm import relax

from tvmedge import api, targets
from tvmedge import build as _build
from tvmedge.export import io_table, toolchain, verify
from tvmedge.export.bundle import bundle_writer
from tvmedge.layout import TensorSpec
from tvmedge.pipeline import import_model
from tvmedge.rewrites.int8_dot import pack_conv_weight, pack_matmul_weight
from tvmedge.schedules.int8_dot import tile

HOST = targets.get("host")
needs_vnni = pytest.mark.skipif(
    HOST.capabilities.int8_dot != "vnni", reason="this CPU has no AVX512-VNNI"
)
needs_qemu = pytest.mark.skipif(
    shutil.which("aarch64-linux-gnu-g++") is None or shutil.which("qemu-aarch64") is None,
    reason="needs g++-aarch64-linux-gnu and qemu-user (make toolchains installs them)",
)


def assembly(executable) -> str:
    """The assembly of every LLVM module the executable imports."""
    pending, text = [executable.mod], ""
    while pending:
        module = pending.pop()
        if module.kind == "llvm":
            text += module.inspect_source("asm")
        pending.extend(module.imports)
    return text


def packed(built) -> dict:
    """The int8-dot rewrite's report: the instruction and the ops it packed."""
    return next(c.report for c in built.rewrites if c.name == "int8-dot")


def run_host(built, x: np.ndarray) -> np.ndarray:
    vm = relax.VirtualMachine(built.executable, tvm.cpu())
    return vm["main"](tvm.runtime.tensor(x)).numpy()


def test_intrinsics_are_registered_on_import():
    """Tuning records name them in their traces, and a compile with tuning logs replays records
    before any rewrite picks an instruction ('TensorIntrin ... is not registered' before)."""
    from tvm.s_tir import TensorIntrin

    from tvmedge.schedules.int8_intrin import DOTS

    assert all(TensorIntrin.get(d.intrin, allow_missing=True) is not None for d in DOTS.values())


def test_packed_weights_hold_4_reduction_elements_of_lanes_channels():
    rng = np.random.default_rng(0)
    w = rng.integers(-127, 128, (10, 37)).astype(np.int8)  # K=10, N=37: both padded
    p = pack_matmul_weight(w, 16)
    assert p.shape == (3, 3, 16, 4)
    for k, n in [(0, 0), (9, 36), (5, 17), (7, 31)]:
        assert p[n // 16, k // 4, n % 16, k % 4] == w[k, n]
    assert not p[2, :, 5:].any() and not p[:, 2, :, 2:].any()  # padding is zero weights
    hwio = rng.integers(-127, 128, (3, 3, 6, 5)).astype(np.int8)
    q = pack_conv_weight(hwio, 4)
    assert q.shape == (2, 3, 3, 2, 4, 4)
    for i, j, c, o in [(0, 0, 0, 0), (2, 1, 5, 4), (1, 2, 3, 2)]:
        assert q[o // 4, i, j, c // 4, o % 4, c % 4] == hwio[i, j, c, o]


@pytest.mark.parametrize(
    ("rows", "blocks", "want"),
    [(56, 4, (8, 2)), (14, 16, (14, 1)), (7, 32, (7, 2)), (1, 64, (1, 4)), (13, 3, (13, 1))],
)
def test_register_tile_divides_and_fits(rows, blocks, want):
    got = tile(rows, blocks)
    assert got == want
    assert rows % got[0] == 0 and blocks % got[1] == 0 and got[0] * got[1] <= 16


@needs_vnni
@pytest.mark.parametrize(
    ("m", "k", "n", "relu"),
    [(10, 70, 37, False), (1, 5, 3, True), (33, 128, 64, False), (49, 512, 1000, True)],
)
def test_matmul_uses_vpdpbusd_and_matches(m, k, n, relu):
    rng = np.random.default_rng(m + k + n)
    mod, reference = matmul(rng, m, k, n, relu=relu)
    built = _build.build(mod, HOST)
    assert packed(built) | {"ops": None} == {"instruction": "vnni", "matmul": 1, "ops": None}
    assert built.unscheduled == []
    assert "vpdpbusd" in assembly(built.executable)
    x = activation(rng, (m, k), Quant())
    np.testing.assert_array_equal(run_host(built, x), reference(x))


CONVS = {
    "1x1": dict(n=1, c=64, hw=(14, 14), o=48, k=1),
    "3x3-pad-odd-channels": dict(n=1, c=6, hw=(9, 11), o=20, k=3, pad=1),
    "3x3-stride2": dict(n=1, c=32, hw=(15, 15), o=64, k=3, stride=2, pad=1),
    "7x7-stem": dict(n=1, c=3, hw=(30, 30), o=16, k=7, stride=2, pad=3),
    "batch2": dict(n=2, c=16, hw=(7, 7), o=24, k=3, pad=1, relu=False),
}


@needs_vnni
@pytest.mark.parametrize("case", CONVS.values(), ids=CONVS.keys())
def test_conv_uses_vpdpbusd_and_matches(case):
    rng = np.random.default_rng(1)
    mod, reference = conv(rng, **case)
    built = _build.build(mod, HOST)
    assert packed(built)["conv2d"] == 1
    assert built.unscheduled == []
    assert "vpdpbusd" in assembly(built.executable)
    x = activation(rng, (case["n"], case["c"], *case["hw"]), Quant())
    np.testing.assert_array_equal(run_host(built, x), reference(x))


@pytest.mark.parametrize(
    ("target", "lanes"), [("x86-64-avx512", 16), ("x86-64-avx2", 8)], ids=["avx512", "avx2"]
)
def test_x86_without_vnni_uses_exact_vpmaddwd(target, lanes):
    """u8 x s8 widened to int16 pairs: no vpmaddubsw saturation. AVX-512 and AVX2 code runs
    on any CPU with AVX-512 (the host's check runs it only there)."""
    rng = np.random.default_rng(6)
    mod, reference = conv(rng, 1, 7, (9, 11), 20, 3, pad=1)
    built = _build.build(mod, targets.get(target))
    assert packed(built)["instruction"] == f"pmaddwd{lanes * 32}"
    assert built.unscheduled == [] and "vpmaddwd" in assembly(built.executable)
    if HOST.capabilities.simd_width < 512:
        pytest.skip("this CPU cannot run AVX-512 code")
    x = activation(rng, (1, 7, 9, 11), Quant())
    x[..., :3] = 255  # the largest products: 255 x 127 pairs saturate int16 sums
    np.testing.assert_array_equal(run_host(built, x), reference(x))


@pytest.mark.parametrize(
    ("make", "shape"),
    [
        (lambda rng: conv(rng, 1, 24, (10, 10), 24, 3, pad=1, groups=24), (1, 24, 10, 10)),
        (lambda rng: matmul(rng, 6, 40, 20, q=Quant("int8", -7, 2)), (6, 40)),
    ],
    ids=["depthwise", "s8-activations"],
)
def test_forms_the_instruction_does_not_take_stay_plain_and_right(make, shape):
    rng = np.random.default_rng(2)
    mod, reference = make(rng)
    built = _build.build(mod, HOST)
    assert "conv2d" not in packed(built) and "matmul" not in packed(built)
    assert built.unscheduled == []
    dtype = "int8" if len(shape) == 2 else "uint8"
    x = activation(rng, shape, Quant(dtype))
    np.testing.assert_array_equal(run_host(built, x), reference(x))


@needs_qemu
@pytest.mark.parametrize(
    "case",
    [
        dict(kind="conv", n=1, c=6, hw=(9, 11), o=20, k=3, pad=1),
        dict(kind="matmul", m=5, k=36, n=10),
    ],
    ids=["conv", "matmul"],
)
def test_aarch64_uses_sdot_and_matches_under_qemu(case, tmp_path):
    rng = np.random.default_rng(3)
    q = Quant("int8", -3, 4)
    kind = case.pop("kind")
    if kind == "conv":
        mod, reference = conv(rng, **case, q=q)
        x = activation(rng, (case["n"], case["c"], *case["hw"]), q)
    else:
        mod, reference = matmul(rng, **case, q=q)
        x = activation(rng, (case["m"], case["k"]), q)
    want = reference(x)
    target = targets.get("cortex-a55")
    table = io_table.format_io_table(
        [TensorSpec("x", "int8", x.shape)], [TensorSpec("y", "int8", want.shape)]
    )
    built = _build.build(io_table.attach(mod, table), target)
    assert packed(built)[kind + ("2d" if kind == "conv" else "")] == 1
    assert built.unscheduled == []
    assert "sdot" in assembly(built.executable)
    tools = toolchain.resolve(target)
    built.executable.export_library(str(tmp_path / "model.so"), fcompile=tools.fcompile())
    manifest = {"target": target.to_json(), **bundle_writer(target, tools)(tmp_path)}
    got = verify.run_bundle(tmp_path, manifest, {"x": x})["outputs"]["y"]
    np.testing.assert_array_equal(got, want)


@pytest.fixture(scope="module")
def qdq_cnn(tmp_path_factory):
    """int8_models.cnn quantized by ONNX Runtime (QDQ, per-channel s8 weights, u8
    activations): a stem conv (3 channels), a grouped, a depthwise and a 1x1 conv, a Gemm."""
    return quantize(cnn(), tmp_path_factory.mktemp("qdq") / "cnn.onnx", per_channel=True)


def _within_one_step(model, got: np.ndarray, x: np.ndarray) -> None:
    want = ort.InferenceSession(str(model)).run(None, {"input": x})[0]
    assert np.abs(got - want).max() <= output_scale(model) * (1 + 1e-6)


@needs_vnni
def test_qdq_model_packs_its_convs_and_gemm_for_vnni(qdq_cnn):
    built = _build.build(import_model(qdq_cnn).mod, HOST)
    report = packed(built)
    assert (report["conv2d"], report["matmul"]) == (2, 1)  # stem, 1x1, Gemm; not grouped/dw
    assert built.unscheduled == []
    assert "vpdpbusd" in assembly(built.executable)
    x = np.random.default_rng(4).standard_normal(SHAPE).astype(np.float32)
    _within_one_step(qdq_cnn, run_host(built, x), x)


@needs_qemu
def test_qdq_model_bundle_for_cortex_a55_uses_sdot_under_qemu(qdq_cnn, tmp_path):
    result = api.compile(
        qdq_cnn,
        target="cortex-a55",
        output=tmp_path / "a55.tvmedge",
        bundle=True,
        log=lambda _m: None,
    )
    report = next(r for r in result.manifest["rewrites"] if r["name"] == "int8-dot")["report"]
    assert (report["instruction"], report["conv2d"], report["matmul"]) == ("sdot", 2, 1)
    x = np.random.default_rng(5).standard_normal(SHAPE).astype(np.float32)
    got = verify.run_bundle(result.path, result.manifest, {"input": x})["outputs"]
    _within_one_step(qdq_cnn, next(iter(got.values())), x)
