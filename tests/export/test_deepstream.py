"""The DeepStream bundle: keys as NVIDIA's 3D action-recognition sample has them, values from the student."""

from __future__ import annotations

import json

import numpy as np
import pytest

# Key sets of NVIDIA's DeepStream sample sources/apps/sample_apps/deepstream-3d-action-recognition/,
# as recorded in ../shared/notes/deploy-conventions.md:
#   config_preprocess_3d_custom.txt   [property] / [user-configs] / [group-0]
#   config_infer_primary_3d_action.txt [property]
PREPROCESS_KEYS = {
    "property": {"enable", "target-unique-ids", "process-on-frame", "network-input-shape", "network-color-format",
                 "network-input-order", "tensor-data-type", "tensor-name", "processing-width", "processing-height",
                 "scaling-pool-memory-type", "scaling-pool-compute-hw", "scaling-filter", "tensor-buf-pool-size",
                 "custom-lib-path", "custom-tensor-preparation-function"},
    "user-configs": {"channel-scale-factors", "channel-mean-offsets", "stride", "subsample"},
    "group-0": {"src-ids", "process-on-roi", "roi-params-src-0", "roi-params-src-1", "roi-params-src-2",
                "roi-params-src-3"},
}
INFER_KEYS = {"onnx-file", "labelfile-path", "batch-size", "process-mode", "input-tensor-from-meta", "network-mode",
              "gie-unique-id", "network-type", "output-tensor-meta", "tensor-meta-pool-size"}
# nvinfer keys the sample does not need but nvinfer documents (gpu-id, the cached engine's name)
INFER_OPTIONAL = {"gpu-id", "model-engine-file"}
# deepstream_action_recognition_config.txt, the sample app's own [action-recognition] group (its README
# describes these keys; not re-checked against the file here)
APP_KEYS = {"uri-list", "display-sync", "preprocess-config", "infer-config", "muxer-height", "muxer-width",
            "muxer-batch-timeout", "tiler-height", "tiler-width", "fakesink", "debug", "enable-fps"}


def test_imagenet_mean_std_become_deepstream_offsets_and_scales():
    """By hand: offset = 255 * mean, scale = 1 / (255 * std) - the sample's ImageNet figures."""
    from edgekd.data.spec import DataSpec
    from edgekd.export.deepstream import preprocess_config

    spec = DataSpec(frames=32, size=224, class_names=("a", "b"), mean=(0.485, 0.456, 0.406),
                    std=(0.229, 0.224, 0.225), frame_stride=2)
    cfg = preprocess_config(spec, max_batch=4, input_name="input_rgb")
    offsets = [float(v) for v in cfg["user-configs"]["channel-mean-offsets"].split(";")]
    scales = [float(v) for v in cfg["user-configs"]["channel-scale-factors"].split(";")]
    assert offsets == pytest.approx([123.675, 116.28, 103.53], abs=1e-3)
    assert scales == pytest.approx([0.017125, 0.017507, 0.017429], abs=1e-6)
    assert cfg["property"]["network-input-shape"] == "4;3;32;224;224"
    assert cfg["user-configs"]["subsample"] == 1  # every other frame, as the student was trained
    assert cfg["property"]["tensor-name"] == "input_rgb"


def test_bundle_keys_values_and_softmax_model(deploy_export):
    import onnx

    from edgekd.export.deepstream import APP_CONFIG, INFER, PREPROCESS, parse_ini
    from edgekd.runtime.metrics import softmax
    from edgekd.runtime.runners import OrtRunner

    art = json.loads((deploy_export / "artifact.json").read_text())
    spec = art["data_spec"]
    ds = deploy_export / "deepstream"
    pre, inf, app = (parse_ini((ds / f).read_text()) for f in (PREPROCESS, INFER, APP_CONFIG))

    assert {k: set(v) for k, v in pre.items()} == PREPROCESS_KEYS
    assert INFER_KEYS <= set(inf["property"]) <= INFER_KEYS | INFER_OPTIONAL
    assert set(app["action-recognition"]) == APP_KEYS
    p, i = pre["property"], inf["property"]
    assert p["target-unique-ids"] == i["gie-unique-id"]
    assert (p["network-input-order"], p["network-color-format"], p["tensor-data-type"]) == ("2", "0", "0")
    assert (i["network-type"], i["output-tensor-meta"], i["input-tensor-from-meta"]) == ("1", "1", "1")
    assert i["network-mode"] == "1" and i["onnx-file"] == "model.int8.onnx"  # exported with precision="int8"
    assert i["batch-size"] == "4" and p["network-input-shape"].split(";")[0] == "4"
    assert app["action-recognition"]["preprocess-config"] == PREPROCESS
    assert app["action-recognition"]["infer-config"] == INFER

    # the tensor DeepStream builds is exactly the ONNX input: name and C;T;H;W
    model = onnx.load(str(ds / i["onnx-file"]))
    dims = [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim][1:]
    assert p["tensor-name"] == model.graph.input[0].name
    assert [int(v) for v in p["network-input-shape"].split(";")[1:]] == dims == [3, spec["frames"], spec["size"], spec["size"]]
    assert (int(p["processing-width"]), int(p["processing-height"])) == (spec["size"], spec["size"])
    offsets = [float(v) for v in pre["user-configs"]["channel-mean-offsets"].split(";")]
    scales = [float(v) for v in pre["user-configs"]["channel-scale-factors"].split(";")]
    assert offsets == pytest.approx([255 * m for m in spec["mean"]], rel=1e-5)
    assert scales == pytest.approx([1 / (255 * s) for s in spec["std"]], rel=1e-5)
    lines = (ds / i["labelfile-path"]).read_text().splitlines()
    assert len(lines) == 1 and lines[0].split(";") == spec["class_names"]  # one output layer, ';'-separated

    # (pixel - offset) * scale on 0-255 pixels == the student's (x/255 - mean) / std
    px = np.random.default_rng(0).integers(0, 256, (3, 5)).astype(np.float64)
    ours = (px - np.array(offsets)[:, None]) * np.array(scales)[:, None]
    theirs = (px / 255 - np.array(spec["mean"])[:, None]) / np.array(spec["std"])[:, None]
    assert np.allclose(ours, theirs, atol=1e-4)

    # the bundle's model outputs probabilities = softmax of the exported INT8 model's logits
    assert model.graph.output[0].name == "probs"
    x = np.random.default_rng(1).standard_normal((3, *dims), dtype=np.float32)
    with OrtRunner(deploy_export / "student.int8.onnx", "cpu", "int8", graph_optimization="disable") as a, \
            OrtRunner(ds / i["onnx-file"], "cpu", "int8", graph_optimization="disable") as b:
        probs, ref = b.run(x), softmax(a.run(x))
    assert np.allclose(probs.sum(1), 1, atol=1e-5) and np.allclose(probs, ref, atol=1e-6)
    assert "deepstream-3d-action-recognition -c " + APP_CONFIG in (ds / "README.md").read_text()


def test_roi_is_the_evaluation_crop():
    """The ROI scaled to size x size sees what evaluation's short-side resize + centre crop sees: checked by
    mapping the crop's corners back through the resize by hand (1280x720, size 64, decode 74)."""
    from edgekd.data.spec import DataSpec
    from edgekd.export.deepstream import preprocess_config

    spec = DataSpec(frames=8, size=64, class_names=("a", "b"))
    g = preprocess_config(spec, max_batch=2, input_name="video", frame=(1280, 720), decode_short_side=74)["group-0"]
    assert g["process-on-roi"] == 1 and g["src-ids"] == "0;1"
    left, top, w, h = (int(v) for v in g["roi-params-src-1"].split(";"))
    scale = 720 / 74                                    # frame pixels per decoded pixel
    dec_w = round(1280 * 74 / 720)                      # decoded width 132
    assert w == h == round(64 * scale)                  # 64 decoded pixels -> 623 frame pixels
    assert abs(left - (dec_w - 64) // 2 * scale) <= scale and abs(top - (74 - 64) // 2 * scale) <= scale


def test_int8_bundle_builds_its_engine_under_nvinfers_name(deploy_export):
    from edgekd.export.deepstream import INFER, parse_ini

    ds = deploy_export / "deepstream"
    i = parse_ini((ds / INFER).read_text())["property"]
    assert i["model-engine-file"] == f"{i['onnx-file']}_b{i['batch-size']}_gpu0_int8.engine"
    script = (ds / "build_engine.sh").read_text()
    assert f"--onnx={i['onnx-file']} --int8" in script and f"--saveEngine={i['model-engine-file']}" in script
    assert f"video:{i['batch-size']}x" in script.split("--maxShapes=")[1]
    assert "Trying FP16" in (ds / "README.md").read_text()
