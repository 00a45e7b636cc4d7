"""Default CPU schedules (tvmedge.schedules): every rule must compute exactly what TVM's
unscheduled kernel computes, for awkward shapes (tails of the vector width and register tile),
strides, groups, symbolic batch dims and non-float dtypes; and agree with ONNX Runtime."""

from __future__ import annotations

import re

import numpy as np
import onnx
import pytest
import tvm
import tvm_ffi
from onnx import TensorProto, helper
from onnx_graphs import io, onnxruntime_outputs
from onnx_graphs import model as _model
from tvm import relax

from tvmedge import build as _build
from tvmedge import pipeline, rewrites, targets, zoo
from tvmedge.frontend import graph_inputs, load_onnx
from tvmedge.frontend import shapes as _shapes
from tvmedge.frontend.importer import import_onnx
from tvmedge.schedules import common

RNG = np.random.default_rng(0)


def _weight(name: str, *shape: int) -> onnx.TensorProto:
    return onnx.numpy_helper.from_array(RNG.standard_normal(shape).astype(np.float32), name)


def model(nodes, inputs, outputs, initializers=(), opset: int = 13) -> onnx.ModelProto:
    """onnx_graphs.model with the outputs' shapes inferred (given as None here)."""
    return onnx.shape_inference.infer_shapes(
        _model(nodes, inputs, outputs, initializers, opset), strict_mode=True
    )


def _compile(proto: onnx.ModelProto, tmp_path, *, scheduled: bool, monkeypatch, layout="nhwc"):
    path = tmp_path / "model.onnx"
    onnx.save(proto, path)
    loaded = load_onnx(path)
    mod = import_onnx(loaded, _shapes.bind(graph_inputs(loaded.proto), {}))
    with monkeypatch.context() as m:
        if not scheduled:  # the reference: TVM's default loops, no rule applies
            m.setattr(pipeline, "default_rules", lambda _target: [])
        names = rewrites.DEFAULT if layout == "nhwc" else ("fold-batchnorm", "simplify")
        return _build.build(mod, targets.get("host"), rewrite_specs=names)


def _run(result, feeds: dict) -> list[np.ndarray]:
    vm = relax.VirtualMachine(result.executable, tvm.cpu())
    out = vm["main"](*[tvm.runtime.tensor(v) for v in feeds.values()])
    outs = out if isinstance(out, tvm_ffi.Array) else [out]
    return [o.numpy() for o in outs]


def check(
    proto,
    feeds,
    tmp_path,
    monkeypatch,
    *,
    all_scheduled=True,
    batches=None,
    layout="nhwc",
    tol=1e-5,
):
    """Scheduled == unscheduled (to float rounding), both == ONNX Runtime; and, unless told
    otherwise, every kernel but reshapes got a default schedule. ``tol``: scheduled vs
    unscheduled, for algorithms whose rounding depends on the order of their sums."""
    built = _compile(proto, tmp_path, scheduled=True, monkeypatch=monkeypatch, layout=layout)
    reference = _compile(proto, tmp_path, scheduled=False, monkeypatch=monkeypatch, layout=layout)
    assert reference.unscheduled, "the reference build must keep TVM's plain loops"
    if all_scheduled:
        assert [k for k in built.unscheduled if not k.startswith("reshape")] == []
    for feed in [feeds] if batches is None else batches:
        got, want = _run(built, feed), _run(reference, feed)
        for g, w, o in zip(got, want, onnxruntime_outputs(proto, feed), strict=True):
            assert g.dtype == w.dtype and g.shape == w.shape
            if np.issubdtype(g.dtype, np.floating):
                np.testing.assert_allclose(g, w, rtol=tol, atol=tol)
                np.testing.assert_allclose(g, o, rtol=1e-4, atol=1e-4)
            else:
                np.testing.assert_array_equal(g, w)
                np.testing.assert_array_equal(g, o)
    return built


def rewritten(proto, tmp_path) -> tvm.IRModule:
    """``proto`` imported and put through the default rewrites for the host."""
    path = tmp_path / "rewritten.onnx"
    onnx.save(proto, path)
    loaded = load_onnx(path)
    mod = import_onnx(loaded, _shapes.bind(graph_inputs(loaded.proto), {}))
    target = targets.get("host")
    with target.tvm_target():
        return tvm.transform.Sequential(rewrites.passes(rewrites.DEFAULT, target))(mod)


def _x(*shape):
    return RNG.standard_normal(shape).astype(np.float32)


def _conv(
    cin, cout, hw, *, k=3, stride=1, pad=1, pads=None, dilation=1, group=1, relu=True, batch=1
):
    """Conv (+ ReLU) and its input; ``pads`` (top, left, bottom, right) overrides ``pad``."""
    h, w = hw
    nodes = [
        helper.make_node(
            "Conv",
            ["x", "w", "b"],
            ["c"],
            kernel_shape=[k, k],
            strides=[stride, stride],
            pads=list(pads) if pads else [pad] * 4,
            dilations=[dilation, dilation],
            group=group,
        ),
        helper.make_node("Relu" if relu else "Identity", ["c"], ["y"]),
    ]
    inits = [_weight("w", cout, cin // group, k, k), _weight("b", cout)]
    x = [batch, cin, h, w]
    return model(nodes, [io("x", x)], [io("y", None)], inits), {"x": _x(*x)}


@pytest.mark.parametrize(
    "case",
    [
        dict(cin=5, cout=17, hw=(19, 23)),  # 17 channels: a register-tile tail
        dict(cin=3, cout=16, hw=(37, 41), stride=2),  # stride 2, odd widths
        dict(cin=8, cout=8, hw=(21, 21), stride=2, group=8),  # depthwise, stride 2
        dict(cin=6, cout=10, hw=(9, 14), group=2),  # grouped
        dict(cin=16, cout=24, hw=(13, 13), k=1, pad=0),  # 1x1
        dict(cin=7, cout=33, hw=(5, 71), k=5, pad=2, relu=False),  # 5x5, wide rows, no epilogue
        dict(cin=32, cout=1000, hw=(13, 13), k=1, pad=0),  # 1000 channels: no whole register
        dict(cin=4, cout=16, hw=(55, 55)),  # 3025 pixels: a tile must not straddle two rows
        # a batch: the register tile fuses (image, row, pixel); 14 rows (two 7-pixel rows) is
        # not a box of them (the tile at 42 holds row 6 of image 0 and row 0 of image 1)
        dict(cin=4, cout=8, hw=(7, 7), batch=2),
        dict(cin=4, cout=8, hw=(7, 7), group=4, batch=3),  # depthwise: (image, channel, row)
        dict(cin=3, cout=64, hw=(29, 29), k=7, stride=2, pad=3),  # a 3-channel stem
        dict(cin=144, cout=144, hw=(12, 12), stride=2, group=144),  # MobileNetV2's 144 channels
    ],
    ids=[
        "3x3-17ch",
        "3x3-stride2",
        "depthwise-stride2",
        "grouped",
        "1x1",
        "5x5-wide",
        "1x1-1000ch",
        "3x3-55x55",
        "batch-2",
        "depthwise-batch-3",
        "7x7-stem",
        "depthwise-144ch",
    ],
)
@pytest.mark.parametrize("layout", ["nhwc", "nchw"])
def test_conv2d(case, layout, tmp_path, monkeypatch):
    check(*_conv(**case), tmp_path, monkeypatch, layout=layout)


@pytest.mark.parametrize(
    ("rows", "budget", "runs", "want"),
    [
        (169, 28, (13, 13), 13),  # 13x13 pixels: one output row
        (3025, 28, (55, 55), 11),  # 55x55: 25 divides 3025 but straddles rows of 55
        (49, 28, (7, 7), 7),
        (3136, 28, (56, 56), 28),
        (13, 8, (13,), 1),  # no divisor within the budget: one row, never a tail
        (98, 28, (7, 7, 2), 7),  # 2 images of 7x7: 14 divides 98 but straddles images
        (30, 16, (5, 2, 3), 10),  # (3 images, 2 channels, 5 rows): 15 straddles images
    ],
)
def test_row_tile_divides_and_never_straddles(rows, budget, runs, want):
    got = common.row_tile(rows, budget, runs)
    assert got == want
    assert rows % got == 0 and common.is_box(got, runs)


def test_tile_plan_prefers_whole_registers_and_rows():
    # 1000 channels: 25-wide vectors fill registers best but spill; one register per vector
    # (a divisor of 1000 within 16 lanes) leaves room for all 13 rows of a 13x13 output
    width, rows, vectors = common.plan_tile(169, 1000, 16, 28, (13, 13))
    assert width <= 16 and 1000 % width == 0 and rows == 13 and rows * vectors <= 28
    # 64 channels, 56-wide rows: 4 whole registers, 7 rows (28 accumulators)
    width, rows, vectors = common.plan_tile(3136, 64, 16, 28, (56, 56))
    assert width % 16 == 0 and rows * vectors * width // 16 <= 28 and rows >= 4


@pytest.mark.parametrize(
    "channels,size,width,dtype",
    [
        (144, 56, 16, "float32"),
        (96, 56, 32, "float32"),
        (3, 56, 6, "float32"),
        (3, 224, 6, "float32"),
        (32, 112, 64, "uint8"),
        (16, 112, 48, "uint8"),
    ],
)
def test_padding_vectors_never_straddle_two_pixels(channels, size, width, dtype):
    """A vector of the padded copy must lie within one pixel's channels: straddling two made
    TVM scalarize it (a stride-2 depthwise conv's padding of 144 channels as 32-wide vectors
    took 0.5 ms). With fewer channels than lanes, the vector spans whole pixels of one row
    instead (a 224x224x3 stem's padded rows are 678 floats: 12-wide vectors took 376 us, 6-wide
    44 us). Whole pixels, not a divisor of the row: an int8 conv's zero-point padding of
    112x112x32 u8 as 114-wide vectors took 1304 us, 64-wide 19 us (3x56x56 floats: 29-wide
    9.8 us, 6-wide 2.2 us; Zen 4, 1 thread)."""
    from tvm import s_tir, te, tirx

    from tvmedge.schedules.common import Cpu, schedule_injective

    x = te.placeholder((1, size, size, channels), name="x", dtype=dtype)

    def pad(n, h, w, c):
        inside = tirx.all(h >= 1, h < size + 1, w >= 1, w < size + 1)
        return tirx.if_then_else(inside, x[n, h - 1, w - 1, c], tirx.const(0, dtype))

    padded = (1, size + 2, size + 2, channels)
    sch = s_tir.Schedule(te.create_prim_func([x, te.compute(padded, pad)]))
    (block,) = sch.get_child_blocks(sch.get_sblock("root"))
    schedule_injective(sch, block, Cpu(simd_bits=512, cores=2))
    assert re.findall(r"T\.vectorized\((?:T\.int64\()?(\d+)", sch.mod.script()) == [str(width)]


@pytest.mark.parametrize("parts", [(64, 64), (5, 16, 7)])
def test_concatenation_is_split_per_source(parts):
    """A channel concatenation's select across vector lanes made TVM scalarize its loop (a
    SqueezeNet fire module's concat with its conv: 190 -> 118 us): each source gets its own
    vectorized loop, and the result equals numpy's."""
    from tvm import s_tir, te, topi

    from tvmedge.schedules.common import Cpu, concat_cuts, schedule_injective

    xs = [te.placeholder((1, 9, 11, c), name=f"x{i}") for i, c in enumerate(parts)]
    out = topi.concatenate(xs, axis=3)
    sch = s_tir.Schedule(te.create_prim_func([*xs, out]))
    (block,) = sch.get_child_blocks(sch.get_sblock("root"))
    assert concat_cuts(sch, block) == list(np.cumsum(parts)[:-1])
    schedule_injective(sch, block, Cpu(simd_bits=512, cores=2))
    script = sch.mod.script()
    assert script.count("_partition") == len(parts)
    assert script.count("T.vectorized") == len(parts)
    lib = tvm.compile(sch.mod, target=tvm.target.Target({"kind": "llvm"}))
    arrays = [_x(*[int(d) for d in x.shape]) for x in xs]
    got = tvm.runtime.tensor(np.zeros([int(d) for d in out.shape], "float32"))
    lib["main"](*[tvm.runtime.tensor(a) for a in arrays], got)
    np.testing.assert_array_equal(got.numpy(), np.concatenate(arrays, axis=3))


def test_gemm_with_bias_and_relu(tmp_path, monkeypatch):
    nodes = [
        helper.make_node("Gemm", ["a", "w", "b"], ["g"], transB=1),
        helper.make_node("Relu", ["g"], ["y"]),
    ]
    inits = [_weight("w", 65, 127), _weight("b", 65)]
    proto = model(nodes, [io("a", [63, 127])], [io("y", None)], inits)
    check(proto, {"a": _x(63, 127)}, tmp_path, monkeypatch)


def test_batch_matmul(tmp_path, monkeypatch):
    nodes = [helper.make_node("MatMul", ["a", "b"], ["y"])]
    proto = model(nodes, [io("a", [3, 7, 33]), io("b", [3, 33, 18])], [io("y", None)])
    check(proto, {"a": _x(3, 7, 33), "b": _x(3, 33, 18)}, tmp_path, monkeypatch)


@pytest.mark.parametrize(
    "node",
    [
        helper.make_node("MaxPool", ["x"], ["y"], kernel_shape=[3, 3], strides=[2, 2]),
        helper.make_node(
            "AveragePool", ["x"], ["y"], kernel_shape=[3, 3], pads=[1, 1, 1, 1], strides=[1, 1]
        ),
        helper.make_node("GlobalAveragePool", ["x"], ["y"]),
    ],
    ids=["maxpool-stride2", "avgpool-padded", "global-avgpool"],
)
def test_pooling(node, tmp_path, monkeypatch):
    proto = model([node], [io("x", [1, 9, 27, 29])], [io("y", None)])
    check(proto, {"x": _x(1, 9, 27, 29)}, tmp_path, monkeypatch)


def test_softmax_and_layernorm(tmp_path, monkeypatch):
    nodes = [
        helper.make_node("Softmax", ["x"], ["s"], axis=-1),
        helper.make_node("LayerNormalization", ["s", "g", "b"], ["y"], axis=-1, epsilon=1e-5),
    ]
    inits = [_weight("g", 1001), _weight("b", 1001)]
    proto = model(nodes, [io("x", [3, 5, 1001])], [io("y", None)], inits, opset=17)
    check(proto, {"x": _x(3, 5, 1001)}, tmp_path, monkeypatch)


def test_elementwise_broadcast_bool_and_int64(tmp_path, monkeypatch):
    nodes = [
        helper.make_node("Add", ["a", "b"], ["s"]),  # [2,3,17,19] + [3,1,19]
        helper.make_node("Greater", ["s", "b"], ["m"]),  # bool
        helper.make_node("Where", ["m", "s", "b"], ["y"]),
        helper.make_node("Mul", ["i", "j"], ["p"]),  # int64 with broadcasting
        helper.make_node("Add", ["p", "i"], ["q"]),
        helper.make_node("Not", ["m"], ["n"]),
    ]
    proto = model(
        nodes,
        [
            io("a", [2, 3, 17, 19]),
            io("b", [3, 1, 19]),
            io("i", [5, 33], TensorProto.INT64),
            io("j", [33], TensorProto.INT64),
        ],
        [io("y", None), io("q", None, TensorProto.INT64), io("n", None, TensorProto.BOOL)],
    )
    feeds = {
        "a": _x(2, 3, 17, 19),
        "b": _x(3, 1, 19),
        "i": RNG.integers(-1000, 1000, (5, 33)),
        "j": RNG.integers(-1000, 1000, (33,)),
    }
    check(proto, feeds, tmp_path, monkeypatch)


def test_symbolic_batch(tmp_path, monkeypatch):
    """Kernels with a symbolic batch are handled (element-wise, pooling) or left alone."""
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c"], ["r"]),
        helper.make_node("GlobalAveragePool", ["r"], ["p"]),
        helper.make_node("Flatten", ["p"], ["f"]),
        helper.make_node("Gemm", ["f", "g"], ["y"], transB=1),
    ]
    inits = [_weight("w", 6, 3, 3, 3), _weight("g", 10, 6)]
    proto = model(nodes, [io("x", ["N", 3, 11, 13])], [io("y", ["N", 10])], inits)
    batches = [{"x": _x(n, 3, 11, 13)} for n in (1, 3)]
    check(proto, batches[0], tmp_path, monkeypatch, all_scheduled=False, batches=batches)


def test_squeezenet_every_kernel_scheduled(tmp_path, monkeypatch):
    path = zoo.materialize("squeezenet", tmp_path / "squeezenet.onnx")
    proto = onnx.load(path)
    built = check(proto, {"data_0": _x(1, 3, 224, 224)}, tmp_path, monkeypatch)
    assert built.kernels > 20
