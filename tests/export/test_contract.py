"""The ONNX metadata is the whole preprocessing contract: a client that knows only onnxruntime, PyAV and
the metadata turns real video files into edgekd's logits."""

from __future__ import annotations

import json

import numpy as np


def stranger_clip(path: str, pre: dict) -> np.ndarray:
    """One clip (3, T, S, S) from a video file by the metadata's `preprocess` alone (no edgekd code)."""
    import av

    with av.open(path) as c:
        s = c.streams.video[0]
        h, w = s.codec_context.height, s.codec_context.width
        short = pre["decode"]["short_side"]
        oh, ow = (short, round(w * short / h)) if h <= w else (round(h * short / w), short)
        g = av.filter.Graph()
        src = g.add_buffer(template=s)
        nodes = [src, g.add("scale", f"{ow}:{oh}:flags=bilinear"), g.add("format", "rgb24"), g.add("buffersink")]
        for a, b in zip(nodes, nodes[1:]):
            a.link_to(b)
        g.configure()
        frames = []
        for f in c.decode(s):
            if (f.height, f.width) == (oh, ow):
                frames.append(f.to_ndarray(format="rgb24"))
            else:
                g.push(f)
                frames.append(g.pull().to_ndarray())
    smp = pre["sampling"]
    n = len(frames)
    start = max(0, n - smp["span"]) // 2
    idx = [min(start + i * smp["stride"], n - 1) for i in range(smp["frames"])]
    clip = np.stack([frames[i] for i in idx]).astype(np.float32)          # T, H, W, 3 (RGB)
    size = pre["crop"]["size"]
    top, left = (clip.shape[1] - size) // 2, (clip.shape[2] - size) // 2
    clip = clip[:, top:top + size, left:left + size]
    clip = (clip / 255 - np.array(pre["mean"], np.float32)) / np.array(pre["std"], np.float32)
    return np.ascontiguousarray(clip.transpose(3, 0, 1, 2), dtype=np.float32)


def test_stranger_client_reproduces_edgekd_logits(deploy_export, tmp_path):
    """Videos larger than the clip (a real resize) and shorter than its span (padding), decoded by PyAV."""
    import onnx
    import onnxruntime as ort

    from edgekd.data.manifest import Manifest
    from edgekd.data.synthetic import generate
    from videos import moving_square, write_video
    from edgekd.runtime.evalset import build_evalset
    from edgekd.runtime.runners import OrtRunner

    model = onnx.load(str(deploy_export / "student.onnx"))
    meta = {p.key: p.value for p in model.metadata_props}
    pre = json.loads(meta["preprocess"])
    assert meta["output_kind"] == "logits" and pre["output"]["kind"].startswith("logits")
    from edgekd.data.spec import DataSpec

    art = json.loads((deploy_export / "artifact.json").read_text())
    spec = DataSpec(**{k: tuple(v) if isinstance(v, list) else v for k, v in art["data_spec"].items()})
    # 48 px videos resized to the decode side; two replaced by 5-frame 60x44 ones (shorter than the span: padding)
    manifest = generate(tmp_path / "data", classes=spec.class_names, videos_per_class=2, frames=8, size=48,
                        seed=3, test_fraction=0.5, workers=1)
    for k, e in enumerate(Manifest.load(manifest).split("test").entries[:2]):
        write_video(e.path, moving_square(5, height=44, width=60, seed=k))
    assert pre["decode"]["short_side"] < 44 and pre["sampling"]["span"] > 5
    ev = build_evalset(manifest, spec, split="test")
    with OrtRunner(deploy_export / "student.onnx", "cpu", "fp32") as r:
        ours = r.run(ev.x)
    sess = ort.InferenceSession(str(deploy_export / "student.onnx"), providers=["CPUExecutionProvider"])
    x = np.stack([stranger_clip(str(e.path), pre) for e in ev.dataset.entries])
    theirs = sess.run(["logits"], {"video": x})[0]
    assert len(theirs) == len(ours) >= 4
    print("stranger max |Δ|", float(np.abs(theirs - ours).max()), "over", theirs.shape)
    assert np.abs(theirs - ours).max() <= 1e-4, np.abs(theirs - ours).max()
