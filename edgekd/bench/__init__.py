"""edgekd bench: latency, accuracy and roofline of exported students on hardware profiles.

    edgekd.bench.profiles   load_profile(name_or_path) -> Profile (TOML files in profiles/)
    edgekd.bench.runners    the Runner protocol: PyTorch eager, ONNX Runtime (CPU/CUDA/TensorRT EP), TensorRT
    edgekd.bench.latency    warm-up, synchronized timing, percentiles, end-to-end, peak memory
    edgekd.bench.accuracy   top-1/top-5 on the eval split, agreement with PyTorch
    edgekd.bench.roofline   FLOPs and bytes counted from the model, speed-of-light floors
    edgekd.bench.report     report.json / report.md / pareto.png / rich table, merging runs
    edgekd.bench.api        bench(run_or_export, profile) -> bench folder
"""
