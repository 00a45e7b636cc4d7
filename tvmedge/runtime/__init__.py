"""Load and run artifacts from Python, shaped like ``onnxruntime.InferenceSession``.

model = tvmedge.runtime.load("resnet.tvmedge")
model.get_inputs(); model.get_outputs()
outputs = model.run(None, {"input": x})
"""

from tvmedge.runtime.artifact import read_manifest, verify_files
from tvmedge.runtime.model import IOInfo, Model, load
from tvmedge.runtime.slots import Slots

__all__ = ["IOInfo", "Model", "Slots", "load", "read_manifest", "verify_files"]
