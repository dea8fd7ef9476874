"""The floor under export and bench: everything that runs a model, describes hardware or judges outputs.

    runners     one protocol (load, warm up, run a batch, report provider, close) over PyTorch CPU/CUDA,
                ONNX Runtime (CPU, CUDA, TensorRT EP) and native TensorRT; make_runner(name, ...)
    profiles    hardware profiles (TOML): peaks, bandwidth, runtimes to try, the workload budget
    host        this machine: environment, ISA flags, device strings, the measured "host" profile
    microbench  GEMM / copy / launch micro-benchmarks behind the host profile
    artifact    the export contract: the file table (FILES), artifact.json typed (Artifact), ONNX metadata
    evalset     the one evaluation clip-set builder
    metrics     the one top-k / confusion / multi-view function
    stream      a streaming ONNX (student.stream.onnx) run one frame at a time, its state carried
    tensorrt    the one TensorRT engine builder (Python API) that export and the runners share

export and bench import from here and never from each other; nothing here imports them or the CLI.
Heavy libraries (onnxruntime, tensorrt) load inside the functions that use them.
"""
