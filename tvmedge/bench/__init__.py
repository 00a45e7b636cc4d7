"""Side-by-side runs against ONNX Runtime and their reports."""
