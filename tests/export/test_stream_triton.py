"""The Triton model for the streaming ONNX: sequence batching with implicit state, parsed by Triton's protobuf."""

from __future__ import annotations

import shutil

import pytest


def test_triton_stream_model_carries_every_state_pair(stream_export, tmp_path):
    pb = pytest.importorskip("tritonclient.grpc.model_config_pb2")
    import onnx
    from google.protobuf import text_format

    from edgekd.data.spec import DataSpec
    from edgekd.export.streaming import triton_stream_model
    from edgekd.runtime.artifact import load_artifact
    from edgekd.runtime.stream import STREAM_FILE

    export = shutil.copytree(stream_export, tmp_path / "export")
    art = load_artifact(export)
    entry = next(a for a in art["artifacts"] if a["file"] == STREAM_FILE)
    rec = triton_stream_model(export, spec=DataSpec.from_dict(art["data_spec"]), name=art["student"]["name"],
                              iface=entry["interface"], max_batch=4)
    cfg = text_format.Parse((export / rec["config"]).read_text(), pb.ModelConfig())
    assert cfg.max_batch_size == 4 and cfg.platform == "onnxruntime_onnx"
    assert cfg.WhichOneof("scheduling_choice") == "sequence_batching"
    assert [i.name for i in cfg.input] == ["frame"] and [o.name for o in cfg.output] == ["logits"]
    graph = onnx.load(str(export / rec["config"]).replace("config.pbtxt", "1/model.onnx")).graph
    onnx_dims = {v.name: [d.dim_value for d in v.type.tensor_type.shape.dim][1:] for v in graph.input}
    states = cfg.sequence_batching.state
    assert len(states) == len(entry["interface"]["state"]) == len(onnx_dims) - 1
    for k, s in enumerate(states):
        assert (s.input_name, s.output_name) == (f"state_in_{k}", f"state_out_{k}")
        (init,) = s.initial_state
        assert list(s.dims) == onnx_dims[s.input_name] == list(init.dims)   # the batch axis left out
        assert init.zero_data and init.data_type == s.data_type == pb.TYPE_FP32
