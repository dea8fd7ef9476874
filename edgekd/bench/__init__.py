"""edgekd bench: latency, accuracy, workload and roofline of exported students on hardware profiles.

    edgekd.bench.artifacts  what to bench: a run, its export folder or a checkpoint (the artifact contract)
    edgekd.bench.latency    warm-up, synchronized timing, percentiles, end-to-end, peak memory
    edgekd.bench.roofline   FLOPs and bytes counted from the model, speed-of-light floors
    edgekd.bench.predictor  per-layer latency estimate with its measured band, for profiles not the host
    edgekd.bench.report     report.json / report.md / pareto.png / rich table, workload and verdict, merging
    edgekd.bench.streaming  the streaming artifact measured next to the clip model (report.json["streaming"])
    edgekd.bench.api        bench(run_or_export, profile) -> bench folder

Runners, profiles, the host, the eval clips and the metrics live on the floor below: edgekd.runtime.
"""
