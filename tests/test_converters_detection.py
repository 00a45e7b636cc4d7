"""NonMaxSuppression is refused with its reason (tvmedge/frontend/converters/detection.py):
built, it returned zero rows for every node case. The refusal does not suggest freezing its
small inputs, which would not help."""

import pytest
from onnx_graphs import node_case

from tvmedge import conformance
from tvmedge.errors import BuildError


def test_refused_with_its_reason(tmp_path):
    with pytest.raises(BuildError, match=r"NonMaxSuppression is not supported") as info:
        conformance.compile_model(node_case("test_nonmaxsuppression_two_batches").model, tmp_path)
    assert "freeze" not in str(info.value)
