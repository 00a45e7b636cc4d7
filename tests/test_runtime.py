"""The Python runtime: an InferenceSession-shaped surface over the compiled artifact."""

import subprocess
import sys

import numpy as np
import onnxruntime as ort

from tvmedge import runtime


def test_io_info_mirrors_onnxruntime(tiny_cnn, tiny_artifact):
    model = runtime.load(tiny_artifact)
    session = ort.InferenceSession(str(tiny_cnn), providers=["CPUExecutionProvider"])
    for ours, ref in [
        (model.get_inputs(), session.get_inputs()),
        (model.get_outputs(), session.get_outputs()),
    ]:
        assert [(i.name, i.shape, i.type) for i in ours] == [(r.name, r.shape, r.type) for r in ref]


def test_run_matches_onnxruntime_at_two_batch_sizes(tiny_cnn, tiny_artifact):
    model = runtime.load(tiny_artifact)
    session = ort.InferenceSession(str(tiny_cnn), providers=["CPUExecutionProvider"])
    for batch in (1, 8):
        x = np.random.default_rng(batch).standard_normal((batch, 3, 32, 32)).astype(np.float32)
        (ours,) = model.run(None, {"image": x})
        (ref,) = session.run(None, {"image": x})
        assert ours.shape == (batch, 10)
        np.testing.assert_allclose(ours, ref, rtol=1e-4, atol=1e-6)
        assert (ours.argmax(1) == ref.argmax(1)).all()


def test_run_selects_named_outputs_and_accepts_non_contiguous_input(tiny_artifact):
    model = runtime.load(tiny_artifact)
    x = np.random.default_rng(0).standard_normal((2, 32, 32, 3)).astype(np.float32)
    nchw = x.transpose(0, 3, 1, 2)  # a view, not C-contiguous
    assert not nchw.flags.c_contiguous
    (a,) = model.run(["probs"], {"image": nchw})
    (b,) = model.run(None, {"image": np.ascontiguousarray(nchw)})
    np.testing.assert_array_equal(a, b)
    assert model.run([], {"image": nchw}) == []


def test_runtime_needs_neither_the_compiler_nor_onnx(tiny_artifact):
    """Deployed hosts load artifacts with tvm_ffi + libtvm_runtime only."""
    code = (
        "import sys, numpy as np\n"
        "from tvmedge import runtime\n"
        f"m = runtime.load({str(tiny_artifact)!r})\n"
        "(y,) = m.run(None, {'image': np.zeros((1, 3, 32, 32), np.float32)})\n"
        "assert y.shape == (1, 10), y.shape\n"
        "heavy = sorted(n for n in ('tvm', 'onnx', 'onnxruntime') if n in sys.modules)\n"
        "print('HEAVY', heavy)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "HEAVY []" in proc.stdout


def test_misaligned_and_readonly_inputs_give_the_same_result(tiny_artifact):
    model = runtime.load(tiny_artifact)
    x = np.random.default_rng(5).standard_normal((1, 3, 32, 32)).astype(np.float32)
    raw = np.zeros(x.nbytes + 4, dtype=np.uint8)
    shifted = raw[4:].view(np.float32).reshape(x.shape)  # 4-byte aligned only
    shifted[...] = x
    frozen = x.copy()
    frozen.flags.writeable = False
    (ref,) = model.run(None, {"image": x})
    for variant in (shifted, frozen):
        (out,) = model.run(None, {"image": variant})
        np.testing.assert_array_equal(out, ref)
