"""`edgekd export --streaming`: student.stream.onnx run frame by frame in ONNX Runtime is the clip model."""

from __future__ import annotations

import numpy as np
import pytest

from edgekd.errors import ExportError


def _clips(export_dir, tiny_synth, n=4):
    """Real decoded test clips, normalized with the export's own data spec."""
    from edgekd.data.spec import DataSpec
    from edgekd.runtime.artifact import load_artifact
    from edgekd.runtime.evalset import build_evalset

    spec = DataSpec.from_dict(load_artifact(export_dir)["data_spec"])
    return build_evalset(tiny_synth, spec, split="test", limit=n).x


def test_stream_onnx_frame_by_frame_equals_the_clip_onnx_on_real_clips(stream_export, tiny_synth):
    from edgekd.runtime.artifact import load_artifact, read_metadata
    from edgekd.runtime.runners import OrtRunner
    from edgekd.runtime.stream import STREAM_FILE, StreamRunner

    clips = _clips(stream_export, tiny_synth)
    with OrtRunner(stream_export / "student.onnx", "cpu", "fp32") as clip, \
            StreamRunner(stream_export / STREAM_FILE) as stream:
        want = clip.run(clips)
        per_frame = stream.frame_logits(clips)                    # (N, T, C), one session call per frame
    assert per_frame.shape[:2] == clips.shape[0:1] + clips.shape[2:3]
    assert np.abs(want - want.mean(0)).max() > 0.05, "degenerate model: logits barely vary across clips"
    np.testing.assert_allclose(per_frame.mean(1), want, atol=1e-4, rtol=1e-4)

    meta = read_metadata(stream_export / STREAM_FILE)
    assert meta["streaming"] == "1" and meta["frames"] == str(clips.shape[2])
    entry = next(a for a in load_artifact(stream_export)["artifacts"] if a["file"] == STREAM_FILE)
    assert entry["parity"]["passed"] and entry["parity"]["clips"]["n"] == 4
    assert entry["parity"]["vs_clip_onnx"]["max_abs"] < 1e-4


def test_stream_onnx_interface_names_and_matching_state_shapes(stream_export):
    import onnx

    from edgekd.runtime.stream import STREAM_FILE

    g = onnx.load(str(stream_export / STREAM_FILE)).graph
    shape = lambda v: [d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim]  # noqa: E731
    ins, outs = {i.name: shape(i) for i in g.input}, {o.name: shape(o) for o in g.output}
    assert ins.pop("frame")[1:] == [3, 32, 32] and outs.pop("logits")[1:] == [4]
    assert len(ins) == len(outs) >= 1
    for k in range(len(ins)):
        assert ins[f"state_in_{k}"] == outs[f"state_out_{k}"]


def test_resetting_the_state_between_two_videos_equals_two_fresh_streams(stream_export, tiny_synth):
    from edgekd.runtime.stream import STREAM_FILE, StreamRunner

    clips = _clips(stream_export, tiny_synth, n=2)
    a, b = clips[:1], clips[1:]
    with StreamRunner(stream_export / STREAM_FILE) as s:
        fresh_b = s.run(b)
        s.run(a)                                                  # run() resets before each clip
        reset_b = s.run(b)
        carried = [s.step(b[:, :, t]) for t in range(b.shape[2])]  # continue from b's state: no reset
    np.testing.assert_allclose(reset_b, fresh_b, atol=1e-6)
    assert np.abs(np.mean(carried, 0) - fresh_b).max() > 1e-3, "the state does not carry between frames"


def test_offline_students_cannot_export_a_stream(tmp_path, make_ckpt, tiny_synth):
    from edgekd.export.api import export_run

    run = make_ckpt(tmp_path / "run", "mobilenet_v3_small_tsm", tiny_synth, width=0.5)
    with pytest.raises(ExportError, match="online shift") as e:
        export_run(run, streaming=True, int8=False, fp16_onnx=False)
    assert "student.shift=online" in e.value.hint


def test_edgekd_stream_prints_predictions_and_writes_a_playable_mp4(stream_export, tmp_path, capsys):
    import av

    from edgekd.cli.main import main
    from videos import moving_square, write_video

    video = write_video(tmp_path / "in.mp4", moving_square(num_frames=20, height=48, width=64))
    out = tmp_path / "labeled.mp4"
    assert main(["stream", str(stream_export), str(video), "--out", str(out), "--top-k", "2"]) == 0
    lines = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("frame")]
    assert len(lines) == 20                                        # frame_stride 1: every frame answered
    assert all(" ms " in ln and "%" in ln for ln in lines)
    assert "[ 8 frames]" in lines[-1] and "[ 1 frames]" in lines[0]  # the window fills up to T
    with av.open(str(out)) as c:                                  # decodes back: a playable H.264 mp4
        decoded = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    assert len(decoded) == 20 and decoded[0].shape == (48, 64, 3)
    assert decoded[-1][:3].mean() < 60 and decoded[-1][3:8].max() > 200  # dark band with white label text


def test_edgekd_stream_says_why_without_a_camera_or_a_streaming_export(stream_export, tmp_path, capsys):
    from edgekd.cli.main import main

    assert main(["stream", str(stream_export), "--camera", "7"]) != 0
    assert "camera 7 cannot be opened" in capsys.readouterr().err
    assert main(["stream", str(tmp_path), str(tmp_path / "x.mp4")]) != 0
    assert "--streaming" in capsys.readouterr().err


def test_int8_and_fp16_streams_follow_the_clip_exports_rules(online_tsm_run, tmp_path):
    import dataclasses

    import onnx

    from edgekd.export.api import export_run
    from edgekd.export.int8 import Int8Settings
    from edgekd.export.parity import TOLERANCES
    from edgekd.runtime.artifact import load_artifact

    # INT8 of this BN-calibrated, untrained MobileNet is poor for the clip model and the stream alike
    # (cosine ~0.3): record the figures without gating them, and check the stream's are the clip's kind
    loose = {"int8": dataclasses.replace(TOLERANCES["int8"], min_cosine=-1.0, min_top1=0.0)}
    out = export_run(online_tsm_run, tmp_path / "export", streaming=True, parity_clips=4, noise_inputs=2,
                     eval_clips=4, cpu_int8="never", int8_settings=Int8Settings(calibration_clips=6),
                     tolerances=loose)
    entries = {a["file"]: a for a in load_artifact(out)["artifacts"]}
    fp16, int8 = entries["student.stream.fp16.onnx"], entries["student.stream.int8.onnx"]
    assert fp16["parity"]["passed"] and fp16["parity"]["tolerance"] == TOLERANCES["fp16"].to_dict()
    assert int8["parity"]["clips"]["finite"] and int8["parity"]["tolerance"]["min_cosine"] == -1.0
    q = int8["quantization"]
    assert q["calibration_clips"] == 6 * 8 and q["calibration"].startswith("stateful")  # every frame of 6 clips
    assert q["rules"] == "tensorrt-explicit" and q["quantize_nodes"] >= 4
    graph = onnx.load(str(out / "student.stream.int8.onnx")).graph
    assert [i.name for i in graph.input][:2] == ["frame", "state_in_0"]
