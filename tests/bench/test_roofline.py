import pytest
import torch
from torch import nn

from edgekd.runtime.profiles import load_profile
from edgekd.bench.roofline import count_cost, efficiency, floor


class OneConv(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv3d(3, 4, kernel_size=3, padding=1, bias=False)
        self.bn = nn.BatchNorm3d(4)

    def forward(self, x):
        return torch.relu(self.bn(self.conv(x)))


def test_flops_and_bytes_counted_from_the_model():
    cost = count_cost(OneConv(), (1, 3, 4, 8, 8))
    outputs = 4 * 4 * 8 * 8                     # (4, 4, 8, 8) output elements
    assert cost.flops == 2 * 3 * 27 * outputs   # 2 FLOPs per MAC, 3*27 MACs per output
    assert cost.params == 4 * 3 * 27 + 4 * 4    # conv weight + BN weight, bias, running mean, var
    assert cost.activation_elements == 3 * 4 * 8 * 8 + outputs  # conv reads input, writes output; BN fused
    assert cost.bytes("fp32") == 4 * (cost.params + cost.activation_elements)
    assert cost.bytes("int8") * 4 == cost.bytes("fp32")
    # batch scales FLOPs and activations, not the weights
    assert cost.bytes("fp16", batch=3) == 2 * (cost.params + 3 * cost.activation_elements)


def test_floor_is_the_slower_of_compute_and_memory():
    cost = count_cost(OneConv(), (1, 3, 4, 8, 8))
    p = load_profile("orin-nano-8gb-15w")
    for prec in ("fp32", "fp16", "int8"):
        f = floor(cost, p, prec)
        compute = 1e3 * cost.flops / (p.peak_tflops[prec] * 1e12)
        memory = 1e3 * cost.bytes(prec) / (p.bandwidth_gbs * 1e9)
        assert f.floor_ms == pytest.approx(max(compute, memory))
        assert f.bound == ("compute" if compute >= memory else "memory")
        assert f.intensity == pytest.approx(cost.flops / cost.bytes(prec))
    assert efficiency(1.0, 4.0) == 0.25


def test_roofline_in_report(host_report):
    cost = host_report["cost"]
    assert cost["flops"] > 0 and cost["params"] > 0
    for row in host_report["rows"]:
        if row["status"] == "ok":
            roof = row["roofline"]
            b1 = next(s for s in row["latency"] if s["batch_size"] == 1)
            assert roof["efficiency"] == pytest.approx(roof["floor_ms"] / b1["p50_ms"])
            assert 0 < roof["efficiency"] < 1  # nothing beats the speed of light
