"""QDQ models from ONNX Runtime's quantize_static compiled into integer compute (the `int8`
rewrite): int8 weight constants and int32 accumulation in the built module, outputs within one
quantization step of ONNX Runtime running the same quantized model (in practice, identical)."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
import tvm
import tvm_ffi
from int8_models import FEATURES, SHAPE, cnn, mlp, quantize
from tvm import relax

from tvmedge import api, rewrites, runtime, targets
from tvmedge.pipeline import import_model, steps
from tvmedge.rewrites.int8 import integer_compute

CASES = [(pc, act) for pc in (False, True) for act in ("u8", "s8")]


def _quiet(_msg):
    pass


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    folder = tmp_path_factory.mktemp("int8")
    found = {}
    for per_channel, act in CASES:
        name = f"cnn_{'pc' if per_channel else 'pt'}_{act}"
        found[name] = quantize(
            cnn(), folder / f"{name}.onnx", per_channel=per_channel, activations=act
        )
    found["mlp"] = quantize(
        mlp(), folder / "mlp.onnx", per_channel=False, input_name="x", shape=FEATURES
    )
    return found


def legalized(
    model, target_name: str = "host", specs=rewrites.DEFAULT
) -> tuple[tvm.IRModule, list]:
    """The model through the default rewrites and legalization (what the build schedules)."""
    target = targets.get(target_name)
    chosen = rewrites.plan(specs, target)
    mod = import_model(model).mod
    with target.tvm_target():
        for name, passes in steps(target, chosen):
            mod = tvm.transform.Sequential(passes)(mod)
            if name == "legalize":
                return mod, chosen
    raise AssertionError("no legalize step")


def constants(mod: tvm.IRModule) -> list[tuple[str, tuple[int, ...]]]:
    found = []

    def visit(expr):
        if isinstance(expr, tvm.ir.GenericConst):
            found.append((str(expr.ty.dtype), tuple(int(d) for d in expr.ty.shape.values)))

    relax.analysis.post_order_visit(mod["main"].body, visit)
    return found


def output_scale(model) -> float:
    """The scale of the DequantizeLinear that writes the model's (first) output."""
    import onnx
    from onnx import numpy_helper

    proto = onnx.load(model)
    node = next(n for n in proto.graph.node if n.output[0] == proto.graph.output[0].name)
    assert node.op_type == "DequantizeLinear"
    scale = next(t for t in proto.graph.initializer if t.name == node.input[1])
    return float(numpy_helper.to_array(scale).max())


def assert_within_one_step(model, artifact, input_name, shape, samples=4):
    """Our outputs against ONNX Runtime's on seeded inputs: at most one step (the output's
    DequantizeLinear scale) apart; returns how many values differed at all."""
    limit = output_scale(model) * (1 + 1e-4)  # and float32 rounding of the two values
    ours = runtime.load(artifact)
    ref = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(7)
    differing = 0
    for _ in range(samples):
        x = rng.standard_normal(shape).astype(np.float32)
        got, want = ours.run(None, {input_name: x})[0], ref.run(None, {input_name: x})[0]
        assert got.dtype == want.dtype and got.shape == want.shape
        assert np.abs(got - want).max() <= limit
        differing += int(np.count_nonzero(got != want))
    return differing


@pytest.mark.parametrize("per_channel,act", CASES)
def test_qdq_cnn_runs_in_integers_and_matches_onnxruntime(models, per_channel, act, tmp_path):
    model = models[f"cnn_{'pc' if per_channel else 'pt'}_{act}"]
    result = api.compile(model, target="host", output=tmp_path / "m.tvmedge", log=_quiet)
    report = next(r for r in result.manifest["rewrites"] if r["name"] == "int8")["report"]
    assert report["conv2d"] == 4 and report["matmul"] == 1  # the Gemm head
    assert report[("per_channel" if per_channel else "per_tensor")] == 5
    assert report["weight_bytes"][1] * 4 == report["weight_bytes"][0]
    check = result.manifest["check"]
    assert check["compared"] and all(r["ok"] for r in check["outputs"])
    assert check["quantization_steps"] == {"logits": pytest.approx(output_scale(model))}
    assert assert_within_one_step(model, result.path, "input", SHAPE) == 0


def test_built_module_holds_int8_weights_and_accumulates_in_int32(models):
    # without int8-dot, which packs the weights for the dot-product instruction (its own tests)
    mod, _ = legalized(models["cnn_pc_u8"], specs=rewrites.without("int8-dot"))
    kernels = integer_compute(mod)
    assert len(kernels) == 5, kernels  # 4 convs and the Gemm, each one kernel with its epilogue
    consts = constants(mod)
    weights = {s for d, s in consts if d == "int8"}
    # HWIO (layout-nhwc) conv weights and the Gemm's (K, N) weight, all int8
    assert {(3, 3, 3, 16), (3, 3, 4, 32), (3, 3, 1, 32), (1, 1, 32, 32), (32, 10)} <= weights
    assert not [s for d, s in consts if d == "float32" and len(s) == 4 and min(s) > 1]


def test_integer_convs_go_channels_last_and_other_rewrites_leave_them(models):
    target = targets.get("host")
    # without int8-dot, which turns the convs it packs into kernels of its own
    chosen = rewrites.plan(rewrites.without("int8-dot"), target)
    mod = import_model(models["cnn_pt_s8"]).mod
    mod = tvm.transform.Sequential(rewrites.passes(chosen, target))(mod)
    convs, pads = [], []

    def visit(expr):
        if isinstance(expr, relax.Call) and isinstance(expr.op, tvm.ir.Op):
            if expr.op.name == "relax.nn.conv2d":
                convs.append(expr)
            elif expr.op.name == "relax.nn.pad":
                pads.append(expr)

    relax.analysis.post_order_visit(mod["main"].body, visit)
    # the fake-quant ops between integer layers pass layouts through: the input's transpose
    # and the pooled vector's (before Flatten) are the only ones left
    assert rewrites.op_counts(mod).get("permute_dims", 0) == 2
    assert len(convs) == 4
    for conv in convs:
        assert (conv.attrs.data_layout, conv.attrs.kernel_layout) == ("NHWC", "HWIO")
        assert str(conv.attrs.out_dtype) == "int32"
        assert str(conv.args[0].ty.dtype) == "uint8" and str(conv.args[1].ty.dtype) == "int8"
        assert all(int(p) == 0 for p in conv.attrs.padding)
    # padded channels-last with the activation's zero point (+128: s8 shifted to u8)
    assert len(pads) == 3
    assert all([int(w) for w in p.attrs.pad_width][-2:] == [0, 0] for p in pads)
    assert all(float(p.attrs.pad_value) != 0 for p in pads[:1])
    assert "ops" not in next(c for c in chosen if c.name == "pad-channels").report


def _nhwc_conv(dtype: str, channels: int, size: int, groups: int = 1):
    data_dtype, weight_dtype = ("uint8", "int8") if dtype == "int8" else (dtype, dtype)
    x = relax.Var("x", relax.TensorType((1, size, size, channels), data_dtype))
    w = np.ones((3, 3, channels // groups, channels), weight_dtype)
    return relax.op.nn.conv2d(
        x,
        relax.const(w),
        padding=[1, 1, 1, 1],
        groups=groups,
        data_layout="NHWC",
        kernel_layout="HWIO",
        out_dtype="int32" if dtype == "int8" else dtype,
    )


def test_winograd_masked_pad_and_pad_channels_skip_integer_ops():
    from tvmedge.rewrites import masked_pad, winograd
    from tvmedge.rewrites.pad_channels import pad_channels

    bb = relax.BlockBuilder()
    calls = {
        dtype: [
            bb.normalize(_nhwc_conv(dtype, 32, 16)),
            bb.normalize(_nhwc_conv(dtype, 32, 56, 32)),
        ]
        for dtype in ("float32", "int8")
    }
    assert winograd.plan(calls["float32"][0]) is not None  # the float conv would be taken
    assert winograd.plan(calls["int8"][0]) is None
    assert masked_pad.takes(calls["float32"][1]) and not masked_pad.takes(calls["int8"][1])

    # a 1000-wide int8 matmul keeps its width (a float one is padded to 1024)
    for dtype, acc in (("float32", "float32"), ("int8", "int32")):
        x = relax.Var("x", relax.TensorType((1, 64), "uint8" if dtype == "int8" else dtype))
        w = relax.const(np.ones((64, 1000), dtype))
        bb = relax.BlockBuilder()
        with bb.function("main", [x]):
            with bb.dataflow():
                y = bb.emit_output(relax.op.matmul(x, w, out_dtype=acc))
            bb.emit_func_output(y)
        mod = pad_channels(16)(bb.get())
        widths = [
            int(b.value.args[1].ty.shape.values[1])
            for block in mod["main"].body.blocks
            for b in block.bindings
            if getattr(getattr(b.value, "op", None), "name", "") == "relax.matmul"
        ]
        assert widths == ([1024] if dtype == "float32" else [1000])


def test_qdq_matmuls(models, tmp_path):
    result = api.compile(models["mlp"], target="host", output=tmp_path / "m.tvmedge", log=_quiet)
    report = next(r for r in result.manifest["rewrites"] if r["name"] == "int8")["report"]
    assert report["matmul"] == 2 and "conv2d" not in report
    assert assert_within_one_step(models["mlp"], result.path, "x", FEATURES) == 0


def test_float_models_are_left_alone(tmp_path):
    import onnx

    path = tmp_path / "float.onnx"
    onnx.save(cnn(), path)
    mod, chosen = legalized(path)
    assert integer_compute(mod) == []
    assert next(c for c in chosen if c.name == "int8").report == {}


def test_compile_check_allows_one_quantization_step_on_quantized_outputs(models):
    import onnx

    from tvmedge.export.check import compare
    from tvmedge.export.quant_steps import quantization_steps

    steps = quantization_steps(onnx.load(models["cnn_pc_u8"]))
    assert steps == {"logits": pytest.approx(output_scale(models["cnn_pc_u8"]))}
    ref, step = np.zeros((1, 10), np.float32), steps["logits"]
    assert compare(["logits"], [ref + step], [ref], steps=steps)[0]["ok"]
    assert not compare(["logits"], [ref + 2 * step], [ref], steps=steps)[0]["ok"]
    assert not compare(["logits"], [ref + step], [ref])[0]["ok"]  # float outputs: no step
    q = np.full(4, 100, np.uint8)
    assert compare(["q"], [q + 1], [q], steps={"q": 1.0})[0]["ok"]
    assert not compare(["q"], [q + 2], [q], steps={"q": 1.0})[0]["ok"]
    assert not compare(["q"], [q + 1], [q])[0]["ok"]
    assert quantization_steps(cnn()) == {}


@pytest.mark.parametrize("target,activation", [("host", "uint8"), ("cortex-a55", "int8")])
def test_activation_dtype_follows_the_target(models, target, activation):
    """u8 activations on x86 (vpdpbusd: unsigned x signed), s8 on ARM (sdot), from a u8 model."""
    chosen = rewrites.plan(rewrites.DEFAULT, targets.get(target))
    mod = import_model(models["cnn_pc_u8"]).mod
    mod = tvm.transform.Sequential(rewrites.passes(chosen, targets.get(target)))(mod)
    found = set()

    def visit(expr):
        if isinstance(expr, relax.Call) and getattr(expr.op, "name", "") in (
            "relax.nn.conv2d",
            "relax.matmul",
        ):
            found.add((str(expr.args[0].ty.dtype), str(expr.args[1].ty.dtype), str(expr.ty.dtype)))

    relax.analysis.post_order_visit(mod["main"].body, visit)
    assert found == {(activation, "int8", "int32")}


def test_the_rewrite_leaves_its_input_module_alone(models):
    mod = import_model(models["mlp"]).mod
    copy = import_model(models["mlp"]).mod
    out = tvm.transform.Sequential(rewrites.passes(["int8"], None))(mod)
    assert tvm_ffi.structural_equal(mod, copy)
    assert not tvm_ffi.structural_equal(out, copy)
    assert "relax.quantize" not in {
        getattr(b.value.op, "name", "")
        for block in out["main"].body.blocks
        for b in block.bindings
        if isinstance(b.value, relax.Call)
    }
