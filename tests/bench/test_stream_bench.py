"""`edgekd bench` on an export with student.stream.onnx: per-frame figures next to the clip model's."""

import json

from edgekd.cli.main import main


def test_bench_measures_the_stream_per_frame_next_to_the_clip_model(stream_export, tmp_path, capsys):
    out = tmp_path / "b"
    code = main(["bench", str(stream_export), "-p", "x86-cpu", "-n", "5", "--warmup", "1", "-b", "1",
                 "--e2e-clips", "0", "--runtimes", "ort-cpu", "--precisions", "fp32", "--threads", "1",
                 "--out", str(out)])
    text = capsys.readouterr().out
    assert code == 0 and "ms per frame" in text
    r = json.loads((out / "report.json").read_text())
    s = r["streaming"]
    assert s["status"] == "ok", s.get("reason")
    assert s["frame_latency"]["iterations"] == 5 and 0 < s["frame_latency"]["p50_ms"] <= s["frame_latency"]["p99_ms"]
    clip = r["rows"][0]
    # the clip protocol through the stream is the clip model: the same answers, the same accuracy
    assert s["accuracy_clip_protocol"]["agreement_with_clip_model"] == 1.0
    assert s["accuracy_clip_protocol"]["top1"] == clip["accuracy"]["top1"]
    assert s["accuracy_sliding"]["n"] == s["accuracy_clip_protocol"]["n"] > 0
    # streams: frames/s the device serves over the frames/s one 30 fps camera feeds (frame_stride 1)
    w = s["workload"]
    assert w["stream_frames_per_s"] == 30.0 and w["streams"] == int(1e3 / s["frame_latency"]["p50_ms"] // 30)
    assert s["clip_model"]["p50_ms"] == clip["latency"][0]["p50_ms"]
    assert s["estimate"]["p50_ms"] > 0                              # x86-cpu is not this host: an estimate too
    assert "## Streaming" in (out / "report.md").read_text()
