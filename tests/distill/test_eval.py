"""`edgekd eval` against an independent computation done one video at a time.

8 classes (top-5 differs from top-1; with 4 classes top-5 is always 1.0) and a student whose
predictions differ from video to video and from view to view, so mixing the views of two videos or
reporting top-5 as top-1 changes the figures.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

CLIPS, CROPS = 2, 3


@pytest.fixture(scope="module")
def eval_run(tmp_path_factory):
    """(run folder, student in eval mode, test split, spec): a random tiny3d on an 8-class synthetic set
    (8 train / 16 test videos), BatchNorm statistics from the train clips and a head centred on the mean
    train feature and scaled up, so its top class changes with the input."""
    from edgekd.checkpoint import save_checkpoint
    from edgekd.data.manifest import Manifest, default_data_spec
    from edgekd.data.synthetic import generate
    from edgekd.runtime.evalset import build_evalset
    from edgekd.students import build_student

    root = tmp_path_factory.mktemp("eval8")
    data = generate(root / "data", classes=8, videos_per_class=3, frames=16, size=32, seed=0, test_fraction=0.5,
                    workers=1)
    manifest = Manifest.load(data)
    spec = default_data_spec(manifest)
    x = torch.from_numpy(build_evalset(data, spec, split="train").x)
    torch.manual_seed(0)
    model = build_student("tiny3d", num_classes=spec.num_classes, frames=spec.frames, size=spec.size, width=0.25)
    for m in model.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.reset_running_stats()
            m.momentum = None  # cumulative average over the pass
    with torch.no_grad():
        model.train()(x)
        model.eval()
        f = model.forward_features(x)                                          # (8, D)
        head = [m for m in model.modules() if isinstance(m, torch.nn.Linear)][-1]
        head.weight.mul_(10 / f.std(0).mean())
        head.bias.copy_(-head.weight @ f.mean(0))
    run = root / "runs" / "eval8"
    save_checkpoint(run / "checkpoint.pt", student_name="tiny3d", student_kwargs=model.config,
                    state_dict=model.state_dict(), data_spec=spec, config={"data": {"path": str(data)}}, metrics={})
    return run, model, manifest.split("test"), spec


@pytest.fixture(scope="module")
def per_video(eval_run):
    """(scores (N, C), labels (N,)): each video's K x S views run through the student on their own, the
    softmax of each view averaged in float64 - no batching, so no view can meet another video's."""
    from edgekd.data.dataset import ClipDataset

    _, model, test, spec = eval_run
    ds = ClipDataset(test, spec, mode="multiview", num_views=(CLIPS, CROPS))
    scores, labels = [], []
    with torch.no_grad():
        for i in range(len(ds)):
            item = ds[i]
            views = item["video"]                                              # (K*S, 3, T, H, W)
            assert views.shape[0] == CLIPS * CROPS
            scores.append(torch.softmax(model(views).double(), dim=1).mean(0).numpy())
            labels.append(int(item["label"]))
    return np.stack(scores), np.array(labels)


def _figures(scores, labels, k=5):
    """top-1, top-k and the confusion matrix, the obvious way."""
    C = scores.shape[1]
    ranked = [sorted(range(C), key=lambda c: (-s[c], c)) for s in scores]
    confusion = [[0] * C for _ in range(C)]
    for r, y in zip(ranked, labels):
        confusion[y][r[0]] += 1
    top1 = float(np.mean([r[0] == y for r, y in zip(ranked, labels)]))
    topk = float(np.mean([y in r[:k] for r, y in zip(ranked, labels)]))
    return top1, topk, confusion


def test_eval_cli_reports_the_per_video_top1_and_top5(eval_run, per_video, capsys):
    from edgekd.cli.main import main

    run = eval_run[0]
    scores, labels = per_video
    top1, top5, confusion = _figures(scores, labels)
    assert len(set(scores.argmax(1))) >= 4, "the student's top class must vary across videos"
    assert top5 - top1 >= 0.25, "the case tells top-1 from top-5 apart"

    # default batch size: 16 // 6 views = 2 videos per batch, so views of two videos share a batch
    assert main(["eval", str(run), "--clips", str(CLIPS), "--crops", str(CROPS), "--workers", "0"]) == 0
    r = json.loads((run / "eval.json").read_text())
    assert r["num_videos"] == len(labels) == 16 and r["protocol"]["clips"] == CLIPS
    assert r["confusion"] == confusion
    assert r["top1"] == pytest.approx(top1) and r["top5"] == pytest.approx(top5)
    assert r["top1"] == pytest.approx(np.trace(r["confusion"]) / np.sum(r["confusion"]))
    assert r["per_class"] == {name: {"accuracy": row[c] / sum(row), "videos": sum(row)}
                              for c, (name, row) in enumerate(zip(eval_run[3].class_names, confusion))}

    # the printed table: the top-1 column shows top-1, the top-5 column top-5
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if f"{CLIPS} clips x {CROPS} crops" in line)
    cells = [c.strip() for c in row.replace("│", "|").split("|") if c.strip()]
    assert cells[:4] == ["16", f"{CLIPS} clips x {CROPS} crops", f"{100 * top1:.1f}%", f"{100 * top5:.1f}%"]


def test_predict_averages_each_videos_own_views(eval_run, per_video):
    """Batched multi-view prediction (4 videos x 6 views per batch) gives each video its own scores."""
    from edgekd.data.dataset import ClipDataset, make_loader
    from edgekd.distill.evaluate import predict
    from edgekd.runtime.metrics import video_scores

    _, model, test, spec = eval_run
    loader = make_loader(ClipDataset(test, spec, mode="multiview", num_views=(CLIPS, CROPS)), batch_size=4,
                         shuffle=False, num_workers=0)
    logits, labels = predict(model, loader, torch.device("cpu"))
    scores, expected_labels = per_video
    assert logits.shape == (16, CLIPS * CROPS, spec.num_classes) and np.array_equal(labels, expected_labels)
    assert np.abs(scores - scores.mean(0)).max() > 0.1  # videos' scores differ: a mix-up would show
    np.testing.assert_allclose(video_scores(logits), scores, atol=1e-5)
