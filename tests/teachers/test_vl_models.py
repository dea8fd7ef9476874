"""CLIP-style teachers from local files: tiny real open_clip and Hugging Face models written by the
test, then loaded through `load_teacher` exactly as a user's downloaded weights would be."""

import json
import shutil

import pytest
import torch
import torch.nn.functional as F

from edgekd.data.spec import DataSpec
from edgekd.errors import TeacherError
from edgekd.teachers.loading import load_teacher
from vl_tiny import (OPEN_CLIP_MEAN, OPEN_CLIP_STD, clip_tokenizer, hf_clip_dir, hf_xclip_dir, open_clip_checkpoint,
                     open_clip_dir)

SPEC_MEAN, SPEC_STD = (0.4, 0.45, 0.5), (0.2, 0.25, 0.3)   # the run's normalization, unlike the models'


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("vl_models")
    cfg, pt = open_clip_checkpoint(root / "open_clip")
    return {"oc_cfg": cfg, "oc_pt": pt, "oc_dir": open_clip_dir(root / "oc_dir", pt),
            "clip": hf_clip_dir(root / "hf_clip"), "xclip": hf_xclip_dir(root / "hf_xclip")}


def _spec(frames=8, size=32, classes=("move_left", "grow_then_shrink")):
    return DataSpec(frames=frames, size=size, class_names=classes, mean=SPEC_MEAN, std=SPEC_STD)


def _model_view(x, spec, mean, std):
    """What the model should see: (B, 3, T, S, S) run-normalized -> (B*T, 3, S, S) model-normalized."""
    m0, s0 = torch.tensor(spec.mean).view(1, 3, 1, 1, 1), torch.tensor(spec.std).view(1, 3, 1, 1, 1)
    m1, s1 = torch.tensor(mean).view(1, 3, 1, 1, 1), torch.tensor(std).view(1, 3, 1, 1, 1)
    frames = ((x * s0 + m0) - m1) / s1
    return frames.transpose(1, 2).flatten(0, 1)


def test_open_clip_checkpoint_renormalizes_and_pools(models):
    spec = _spec(frames=4)
    teacher = load_teacher(f"open_clip:{models['oc_cfg']}:{models['oc_pt']}", spec)
    assert teacher.embed_dim == 16 and not any(p.requires_grad for p in teacher.parameters())
    x = torch.randn(2, 3, 4, 32, 32)
    per_frame = teacher.embed_temporal(x)                                    # (B, T, D)
    assert per_frame.shape == (2, 4, 16)
    # the library's own image tower on frames re-normalized by hand to open_clip's default CLIP stats
    from edgekd.teachers.vl_base import OPENAI_CLIP_MEAN, OPENAI_CLIP_STD

    ref = F.normalize(teacher.model.encode_image(_model_view(x, spec, OPENAI_CLIP_MEAN, OPENAI_CLIP_STD)), dim=-1)
    torch.testing.assert_close(per_frame.flatten(0, 1), ref, atol=1e-5, rtol=1e-4)
    emb = teacher.embed(x)
    torch.testing.assert_close(emb, F.normalize(per_frame.mean(1), dim=-1))
    assert torch.allclose(emb.norm(dim=-1), torch.ones(2))


def test_open_clip_hub_folder_reads_its_preprocess_config(models):
    spec = _spec(frames=2, size=48)                                          # resized 48 -> 32 inside
    a = load_teacher(str(models["oc_dir"]), spec)
    b = load_teacher(f"open_clip:{models['oc_cfg']}:{models['oc_pt']}", spec)
    assert (a.mean, a.std) == (OPEN_CLIP_MEAN, OPEN_CLIP_STD) and a.image_size == 32
    assert a.embed_temporal(torch.randn(1, 3, 2, 48, 48)).shape == (1, 2, 16)
    text = ["a video of grow then shrink."]
    torch.testing.assert_close(a.encode_text(text), b.encode_text(text))     # same weights, same text tower


def test_hf_clip_zero_shot_equals_the_library_logits(models):
    spec = _spec(frames=1)
    teacher = load_teacher(str(models["clip"]), spec)
    assert type(teacher).__name__ == "HFCLIPTeacher" and teacher.embed_dim == 24
    prompts = ["move left", "grow then shrink"]
    x = torch.randn(3, 3, 1, 32, 32)
    ours = teacher.zeroshot_logits(x, teacher.class_text_embeddings(spec.class_names, ["{}"]))
    tok = clip_tokenizer()(prompts, padding=True, return_tensors="pt")
    with torch.no_grad():
        lib = teacher.model(input_ids=tok["input_ids"], attention_mask=tok["attention_mask"],
                            pixel_values=_model_view(x, spec, OPEN_CLIP_MEAN, OPEN_CLIP_STD)).logits_per_image
    torch.testing.assert_close(ours, lib, atol=1e-4, rtol=1e-4)


def test_hf_xclip_zero_shot_equals_the_library_logits(models):
    spec = _spec(frames=4)
    teacher = load_teacher(str(models["xclip"]), spec)
    assert type(teacher).__name__ == "HFXCLIPTeacher" and teacher.num_frames == 4
    x = torch.randn(2, 3, 4, 32, 32)
    assert teacher.embed(x).shape == (2, 24) and teacher.embed_temporal(x).shape == (2, 4, 24)
    ours = teacher.zeroshot_logits(x, teacher.class_text_embeddings(spec.class_names, ["{}"]))
    from edgekd.teachers.vl_base import OPENAI_CLIP_MEAN, OPENAI_CLIP_STD

    tok = clip_tokenizer()(["move left", "grow then shrink"], padding=True, return_tensors="pt")
    pixels = _model_view(x, spec, OPENAI_CLIP_MEAN, OPENAI_CLIP_STD).view(2, 4, 3, 32, 32)
    with torch.no_grad():
        lib = teacher.model(input_ids=tok["input_ids"], attention_mask=tok["attention_mask"],
                            pixel_values=pixels).logits_per_video
    torch.testing.assert_close(ours, lib, atol=1e-4, rtol=1e-4)
    # a 16-frame clip is resampled to the model's 4 frames
    assert teacher.embed(torch.randn(1, 3, 16, 32, 32)).shape == (1, 24)


@pytest.mark.parametrize("which", ["open_clip", "clip", "xclip"])
def test_zero_shot_runs_end_to_end_on_real_videos(models, tiny_manifest, which):
    from edgekd.data.manifest import default_data_spec
    from edgekd.teachers.vl_zeroshot import zeroshot_eval

    spec = default_data_spec(tiny_manifest)
    name = f"open_clip:{models['oc_cfg']}:{models['oc_pt']}" if which == "open_clip" else str(models[which])
    report = zeroshot_eval(load_teacher(name, spec), tiny_manifest.split("test"), spec,
                           ["a video of {}.", "a shape that {}."], num_workers=0, quiet=True)
    assert report["videos"] == len(tiny_manifest.split("test"))
    assert 0.0 <= report["top1"] <= report["top5"] == 1.0                     # 4 classes: top-5 holds them all
    assert report["chance"] == 0.25 and set(report["per_class"]) <= set(tiny_manifest.class_names)


def test_accuracy_report_against_hand_counted_hits():
    from edgekd.teachers.vl_zeroshot import accuracy_report

    # 7 classes, 3 videos: video 0 right at rank 1, video 1 at rank 3, video 2 at rank 7 (last)
    scores = torch.tensor([[9., 1, 2, 3, 4, 5, 6], [9., 8, 7, 6, 5, 4, 3], [1., 2, 3, 4, 5, 6, 0]])
    labels = torch.tensor([0, 2, 6])
    report = accuracy_report(scores, labels, [f"c{i}" for i in range(7)])
    assert report["top1"] == round(1 / 3, 4) and report["top5"] == round(2 / 3, 4)
    assert report["per_class"] == {"c0": 1.0, "c2": 0.0, "c6": 0.0} and report["videos"] == 3


# -- bad input ------------------------------------------------------------------------------------

def test_missing_weight_file_says_where_to_put_it(models, tmp_path):
    with pytest.raises(TeacherError, match="no open_clip weights at") as e:
        load_teacher(f"open_clip:ViT-B-32:{tmp_path / 'vit_b_32.pt'}", _spec())
    assert "never downloads" in e.value.hint and "vit_b_32.pt" in e.value.message


def test_unknown_open_clip_architecture_suggests_names(models):
    with pytest.raises(TeacherError, match="unknown open_clip architecture 'ViT-B-23'") as e:
        load_teacher(f"open_clip:ViT-B-23:{models['oc_pt']}", _spec())
    assert "ViT-B-32" in e.value.hint


def test_open_clip_weights_that_do_not_fit(models, tmp_path):
    wide = json.loads(models["oc_cfg"].read_text())
    wide["vision_cfg"]["width"] = 48
    cfg = tmp_path / "edgekd-tiny-wide.json"
    cfg.write_text(json.dumps(wide))
    with pytest.raises(TeacherError, match="do not fit open_clip architecture"):
        load_teacher(f"open_clip:{cfg}:{models['oc_pt']}", _spec())


def test_hf_folder_without_weights(models, tmp_path):
    folder = tmp_path / "no_weights"
    shutil.copytree(models["clip"], folder)
    (folder / "model.safetensors").unlink()
    with pytest.raises(TeacherError, match="has config.json but no weights") as e:
        load_teacher(str(folder), _spec())
    assert "never downloads" in e.value.hint


def test_hf_weights_that_do_not_match_the_config(models, tmp_path):
    folder = tmp_path / "mismatch"
    shutil.copytree(models["clip"], folder)
    cfg = json.loads((folder / "config.json").read_text())
    cfg["projection_dim"] = 40
    (folder / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(TeacherError, match="do not (fit|match) CLIPModel"):
        load_teacher(str(folder), _spec())


def test_unsupported_hf_model_and_remote_names(models, tmp_path):
    folder = tmp_path / "bert"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model_type": "bert"}))
    with pytest.raises(TeacherError, match="model_type 'bert' is not a supported teacher"):
        load_teacher(str(folder), _spec())
    with pytest.raises(TeacherError, match="downloads nothing"):
        load_teacher("hf-hub:openai/clip-vit-base-patch32", _spec())


@pytest.mark.gpu
def test_cuda_runs_under_autocast_and_matches_cpu(models):
    if not torch.cuda.is_available():
        pytest.skip("no CUDA GPU is visible")
    spec = _spec(frames=4)
    teacher = load_teacher(str(models["clip"]), spec)
    x = torch.randn(2, 3, 4, 32, 32)
    cpu = teacher.embed(x)
    gpu = teacher.cuda().embed(x.cuda())
    assert gpu.dtype == torch.float32                                        # fp16 inside, float32 out
    torch.testing.assert_close(gpu.cpu(), cpu, atol=2e-2, rtol=2e-2)


def test_open_clip_folder_without_weights(models, tmp_path):
    folder = tmp_path / "oc"
    folder.mkdir()
    shutil.copy(models["oc_dir"] / "open_clip_config.json", folder)
    with pytest.raises(TeacherError, match="has open_clip_config.json but no weights"):
        load_teacher(str(folder), _spec())
    with pytest.raises(TeacherError, match="hub layout"):
        load_teacher(f"open_clip:{folder / 'open_clip_config.json'}:{models['oc_pt']}", _spec())
