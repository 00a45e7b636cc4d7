"""The benchmark suite: ``python -m benchmarks`` runs the model set against ONNX Runtime and
writes BENCHMARKS.md, its plots and one JSON per run (benchmarks/results/suite/).

    model_set.py    the models, made here with no downloads (onnx wheel + PyTorch exports)
    models.py       the PyTorch definitions (ResNet-18, MobileNetV2, CNN-LSTM, encoder, U-Net)
    techniques.py   the rows of the technique table (fp32 now; int8, pruning as they land)
    provenance.py   commit, machine fingerprint, versions: what ties a figure to its run
    suite.py        one run of the suite -> the run's JSON
    render.py       BENCHMARKS.md from the JSON files alone, a section per machine
    plots.py        the PNG plots (matplotlib): latency with spread, tuning progress
    held_out.py, breakdown.py   one-off studies; their tables go to docs/notes/
"""
