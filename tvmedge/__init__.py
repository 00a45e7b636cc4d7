"""tvmedge: compile ONNX models with Apache TVM for a device, and compare with ONNX Runtime."""

__version__ = "0.1.0"
