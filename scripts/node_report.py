"""The node suite's section of docs/onnx-conformance.{md,json} (stub)."""


def report(results, env):
    raise NotImplementedError


def render(report):
    raise NotImplementedError
