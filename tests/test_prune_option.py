"""--prune: zero a trained model's lowest-norm filters (coupled channels together), then shrink."""

import numpy as np
import onnx
import pytest
import torch
from onnx import numpy_helper

from tests.conftest import cli
from tests.prune_models import MODELS
from tests.test_shrink_channels import _check, _shrink
from tests.torch_models import export_torch
from tvmedge import api
from tvmedge.errors import PruneError
from tvmedge.rewrites.prune import parse_prune, prune_model


@pytest.fixture(scope="module")
def resnet(tmp_path_factory):
    """TinyResNet with its trained-looking (seeded random) weights, nothing zeroed."""
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("prune") / "resnet.onnx"
    export_torch(MODELS["resnet"]().eval(), torch.randn(1, 3, 32, 32), path, opset=17)
    return path


def _weights(proto) -> dict[str, np.ndarray]:
    names = {n.name: n.input[1] for n in proto.graph.node if n.op_type in ("Conv", "Gemm")}
    inits = {i.name: numpy_helper.to_array(i) for i in proto.graph.initializer}
    return {node: inits[w] for node, w in names.items()}


def _zero_filters(w: np.ndarray) -> set[int]:
    return set(np.flatnonzero(~np.any(w.reshape(w.shape[0], -1) != 0, axis=1)).tolist())


def test_spec_parses_ratios_criterion_layers_and_skips():
    spec = parse_prune("channels=0.3, criterion=l2,/stem/Conv=0.5,skip=/a,skip=/b")
    assert (spec.channels, spec.criterion) == (0.3, "l2")
    assert dict(spec.layers) == {"/stem/Conv": 0.5} and spec.skip == ("/a", "/b")
    assert parse_prune("conv1=0.25").channels is None


@pytest.mark.parametrize(
    "text, message",
    [
        (
            "channels=1.5",
            r"--prune channels=1.5: a prune ratio must be a number strictly between 0 and 1",
        ),
        ("channels=0", r"strictly between 0 and 1"),
        ("conv1=-0.2", r"--prune conv1=-0.2: a prune ratio"),
        ("channels=half", r"strictly between 0 and 1"),
        ("channels=0.3,criterion=l3", r"unknown criterion 'l3'; valid: l1, l2"),
        ("channels", r"'channels' is not KEY=VALUE"),
        ("criterion=l1", r"give a ratio for every layer \(channels=0.3\) or for named nodes"),
    ],
)
def test_bad_specs_are_one_line_errors(text, message):
    with pytest.raises(PruneError, match=message):
        parse_prune(text)


def test_whole_vectors_of_channels_stay(resnet):
    """round_to=16: a 16-channel group keeps all 16 (8 would be half a vector), a 32-channel
    one keeps 16; round_to=8 keeps 8 of 16 and 16 of 32."""
    proto = onnx.load(resnet)
    for round_to, small, large in ((16, 0, 16), (8, 8, 16), (1, 11, 22)):
        _, report = prune_model(proto, parse_prune("channels=0.7"), round_to)
        layers = report["layers"]
        assert layers.get("/stem/Conv", [16, 0]) == [16, small]
        assert layers["/blocks/blocks.1/conv1/Conv"] == [32, large]


def test_coupled_channels_are_zeroed_together_lowest_norm_first(resnet):
    proto = onnx.load(resnet)
    out, report = prune_model(proto, parse_prune("channels=0.5"))
    before, after = _weights(proto), _weights(out)
    # the projection block's second conv, its shortcut and the next block's second conv all
    # feed the same adds: one group, scored together, the same channels zeroed in each
    tied = [
        "/blocks/blocks.1/conv2/Conv",
        "/blocks/blocks.1/down/down.0/Conv",
        "/blocks/blocks.2/conv2/Conv",
    ]
    zeroed = [_zero_filters(after[n]) for n in tied]
    assert zeroed[0] == zeroed[1] == zeroed[2] and len(zeroed[0]) == 16
    score = sum(np.abs(before[n]).reshape(32, -1).sum(axis=1) for n in tied)
    assert zeroed[0] == set(np.argsort(score)[:16].tolist())
    alone = _zero_filters(after["/blocks/blocks.0/conv1/Conv"])  # an inner conv: its own norms
    w = before["/blocks/blocks.0/conv1/Conv"]
    assert alone == set(np.argsort(np.abs(w).reshape(16, -1).sum(axis=1))[:8].tolist())
    assert not _zero_filters(after["/head/Gemm"])  # its channels are the model's outputs
    assert report["left"] == ["/head/Gemm"] and report["coupled_groups"] == 2
    assert report["layers"]["/stem/Conv"] == [16, 8]
    assert not any(_zero_filters(w) for w in before.values())  # the input left as it was


def test_per_layer_ratios_and_skips(resnet):
    proto = onnx.load(resnet)
    spec = parse_prune(
        "/blocks/blocks.0/conv1/Conv=0.25,/stem/Conv=0.5,skip=/blocks/blocks.2/conv1/Conv"
    )
    out, report = prune_model(proto, spec)
    after = _weights(out)
    assert len(_zero_filters(after["/blocks/blocks.0/conv1/Conv"])) == 4
    assert len(_zero_filters(after["/stem/Conv"])) == 8
    assert len(_zero_filters(after["/blocks/blocks.0/conv2/Conv"])) == 8  # coupled with the stem
    assert not _zero_filters(after["/blocks/blocks.1/conv1/Conv"])  # no ratio for it
    spec = parse_prune("channels=0.5,skip=/blocks/blocks.2/conv1/Conv")
    out, report = prune_model(proto, spec)
    assert not _zero_filters(_weights(out)["/blocks/blocks.2/conv1/Conv"])
    assert "/blocks/blocks.2/conv1/Conv" in report["left"]


def test_a_skip_name_that_is_no_node_fails_before_compiling(resnet, tmp_path):
    out = tmp_path / "r.tvmedge"
    with pytest.raises(PruneError, match=r"'/fc' is no prunable node of this model .*/stem/Conv"):
        api.compile(resnet, output=out, prune="channels=0.3,skip=/fc", log=lambda _m: None)
    assert not out.exists()
    with pytest.raises(PruneError, match="keep it in the rewrites"):
        api.compile(resnet, output=out, prune="channels=0.3", rewrites=("simplify",))


def test_cli_prune_compiles_checks_and_inspect_shows_it(tmp_path):
    """On this CPU's target layers keep whole vectors (16 channels on AVX-512, 8 on AVX2), so
    the model is twice as wide: 32 and 64 channels, halved."""
    torch.manual_seed(0)
    wide = tmp_path / "resnet2.onnx"
    export_torch(MODELS["resnet"](2).eval(), torch.randn(1, 3, 32, 32), wide, opset=17)
    out = tmp_path / "pruned.tvmedge"
    done = cli("compile", wide, "-o", out, "--prune", "channels=0.5,criterion=l2")
    assert done.returncode == 0, done.stderr
    assert "pruned 50% of filters by l2 norm: 208 filters in 8 layers" in done.stderr
    manifest = api.inspect(out)
    record = manifest["rewrites"][0]
    assert record["name"] == "prune-channels" and record["options"]["criterion"] == "l2"
    params, macs = record["report"]["params"], record["report"]["macs"]
    assert params[1] < 0.3 * params[0] and macs[1] < 0.3 * macs[0]  # both sides of inner convs
    assert record["report"]["zero_kept"] == 0  # coupling respected: everything zeroed goes
    assert manifest["check"]["compared"]  # against ONNX Runtime on the zeroed model
    shown = cli("inspect", out)
    assert "pruned     50% of filters by l2 norm" in shown.stdout
    assert "shrunk     8 layers" in shown.stdout
    bad = cli("compile", wide, "-o", tmp_path / "bad.tvmedge", "--prune", "channels=2")
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1
    assert bad.stderr.startswith("tvmedge: error: --prune channels=2: a prune ratio")
    assert not (tmp_path / "bad.tvmedge").exists()


def test_prune_then_shrink_removes_every_zeroed_filter_of_a_mobilenet(tmp_path):
    """Depthwise convs join their input's group, the concat's inputs are pruned on their own,
    the flatten's columns follow: shrinking removes all that --prune zeroed, exactly."""
    torch.manual_seed(0)
    dense = tmp_path / "mobilenet.onnx"
    export_torch(MODELS["mobilenet"]().eval(), torch.randn(1, 3, 32, 32), dense, opset=17)
    pruned, zeroed = prune_model(onnx.load(dense), parse_prune("channels=0.3,criterion=l2"))
    assert zeroed["layers"]["/right/right.0/Conv"] == [24, 7]  # depthwise: scored with its input
    path = str(tmp_path / "pruned.onnx")
    onnx.save(pruned, path)
    report, _, after = _shrink(path, {"x": (1, 3, 32, 32)})
    assert report["zero_kept"] == 0 and report["zero_filters"] > 0
    assert report["macs"][1] < 0.6 * report["macs"][0]
    _check(
        path,
        after,
        {"x": np.random.default_rng(1).standard_normal((1, 3, 32, 32)).astype(np.float32)},
    )


def test_tune_with_prune_sees_the_shrunk_kernels(resnet, tmp_path):
    """tune --prune extracts the kernels compile --prune builds, with fewer channels."""
    kwargs = {"input_shapes": {"x": (1, 3, 32, 32)}, "tuning_logs": tmp_path, "dry_run": True}
    plain = api.tune(resnet, log=lambda _m: None, **kwargs)
    pruned = api.tune(resnet, prune="channels=0.5", log=lambda _m: None, **kwargs)
    flop = lambda report: sum(s["flop"] * s["weight"] for s in report["before"])  # noqa: E731
    assert flop(pruned) < 0.8 * flop(plain)
