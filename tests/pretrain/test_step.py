"""The one optimizer step of the pretraining loops: it steps, it refuses a non-finite loss, its running losses add up."""

import pytest
import torch

from edgekd.errors import TrainingDiverged
from edgekd.pretrain.step import OptimizerStep


def _step(ema_weight=0.1):
    w = torch.nn.Parameter(torch.tensor([1.0, -2.0]))
    return w, OptimizerStep(torch.optim.SGD([w], lr=0.5), "toy training", "lower the learning rate", ema_weight)


def test_a_step_applies_the_gradient_and_counts():
    w, step = _step()
    assert step((w ** 2).sum()) == pytest.approx(5.0)
    assert torch.allclose(w.detach(), torch.tensor([0.0, 0.0]))        # w - 0.5 * 2w
    assert step.steps == 1 and step.last == pytest.approx(5.0)


def test_epoch_means_weigh_batches_by_size_and_start_afresh():
    w, step = _step(ema_weight=0.2)
    losses, sizes = [4.0, 1.0, 2.5], [3, 1, 4]
    for v, n in zip(losses, sizes):
        loss = (w * 0).sum() + v
        step(loss, n, {"loss": loss, "half": loss / 2})
    mean = sum(v * n for v, n in zip(losses, sizes)) / sum(sizes)
    ema = losses[0]
    for v in losses[1:]:
        ema = 0.8 * ema + 0.2 * v
    assert step.running == pytest.approx(mean)
    assert step.ema == pytest.approx(ema)
    assert step.epoch_means() == pytest.approx({"loss": mean, "half": mean / 2})
    assert step.epoch_means() == {} and step.steps == 3


def test_a_non_finite_loss_stops_before_the_weights_change():
    w, step = _step()
    with pytest.raises(TrainingDiverged, match="toy training diverged at step 1") as e:
        step((w ** 2).sum() * float("nan"))
    assert e.value.hint == "lower the learning rate"
    assert torch.equal(w.detach(), torch.tensor([1.0, -2.0])) and step.steps == 0
