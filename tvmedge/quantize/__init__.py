"""Post-training static int8 quantization: the user-facing flow of `compile --quantize int8`.

    settings.py   the options, checked (QuantizeSettings), activation type per target family
    data.py       calibration / validation data: .npz, folders, dicts, get_next() readers
    static.py     ONNX Runtime's quantize_static (QDQ) on a private copy, layers with weights
    floor.py      --accuracy-floor terms (accuracy, top1, sqnr)
    fallback.py   layers that hurt most back to float, one at a time, until the floor holds
    flow.py       one quantized compile: quantize, measure the build, the manifest record

The QDQ model then compiles through the normal pipeline; tvmedge.accuracy measures it.
"""

from tvmedge.quantize.settings import QuantizeSettings, from_options

__all__ = ["QuantizeSettings", "from_options"]
