"""The NADE and MADE page's analysis (engine/made_analysis.py): the chain-rule terms of one image add up to
its exact NLL for MADE and NADE, what an output pixel sees agrees with the masks and the ordering, the
connectivity summary is strictly lower-triangular in the ordering, and of two ways to combine masks only the
mixture is a distribution once the members' orderings differ (all 2^10 images enumerated)."""
from __future__ import annotations

import pytest
import torch

from engine import made_analysis
from engine.models.made import ranks
from tests.test_made_nade_math import made, nade


@pytest.mark.parametrize("which", ["made-natural", "made-random", "nade-random"])
def test_chain_terms_add_up_to_the_exact_nll(which):
    model = (nade(ordering="random", order_seed=2) if which.startswith("nade") else
             made(hidden=(16, 16), ordering=which.split("-")[1], order_seed=3)).float()
    x = (torch.rand(model.n_dims, generator=torch.Generator().manual_seed(1)) < 0.4).float()
    terms = made_analysis.chain_terms(model, x)
    with torch.no_grad():
        exact = -float(model.log_prob(x[None])[0])
    assert terms["total"] == pytest.approx(exact, rel=1e-5)
    assert float(terms["cumulative"][-1]) == pytest.approx(exact, rel=1e-5)
    assert torch.equal(terms["order"], model.order)
    # the i-th term is the conditional of the i-th pixel of the ordering: p_on where x = 1, 1 - p_on where x = 0
    p = torch.where(x.bool(), terms["p_on"], 1 - terms["p_on"])
    assert torch.allclose(terms["nats"], -p.log(), atol=1e-5)
    assert terms["bits_per_dim"] == pytest.approx(exact / (model.n_dims * torch.log(torch.tensor(2.0)).item()))


@pytest.mark.parametrize("ordering", ["natural", "random"])
def test_connectivity_summary_is_strictly_lower_triangular_in_the_ordering(ordering):
    s = made_analysis.connectivity_summary(12, (10, 10), ordering=ordering, order_seed=4, mask_seed=2)
    lower = s["in_order"]
    assert not torch.triu(lower).any()  # the diagonal and above are empty
    assert s["connected"] == int(lower.sum()) <= s["allowed"] == 66
    assert s["connected"] > 0
    order = s["order"]
    assert torch.equal(s["dependency"][order][:, order], lower)


def test_connectivity_follows_the_seeds():
    a = made_analysis.connectivity_summary(784, (500,), mask_seed=0)
    b = made_analysis.connectivity_summary(784, (500,), mask_seed=1)
    c = made_analysis.connectivity_summary(784, (500,), ordering="random", order_seed=7, mask_seed=0)
    assert not torch.equal(a["degrees"][1], b["degrees"][1])
    assert not torch.equal(a["order"], c["order"]) and not torch.triu(c["in_order"]).any()
    assert torch.equal(made_analysis.connectivity_summary(784, (500,), mask_seed=0)["dependency"], a["dependency"])


def test_dependency_map_marks_the_pixel_its_inputs_and_the_unconnected_earlier_ones():
    s = made_analysis.connectivity_summary(784, (500,), ordering="random", order_seed=1, mask_seed=0)
    rank = ranks(s["order"])
    for pixel in (0, 406, 783):
        seen = made_analysis.dependency_map(s["dependency"], s["order"], pixel)
        assert seen[pixel] == 3 and int((seen == 3).sum()) == 1
        earlier = rank < rank[pixel]
        assert int(((seen == 1) | (seen == 2)).sum()) == int(earlier.sum())  # every earlier pixel is 1 or 2
        assert torch.equal(seen == 2, s["dependency"][pixel])  # 2 exactly where the masks connect
        assert not (seen[~earlier] == 2).any()


def test_only_the_mixture_is_a_distribution_when_orderings_differ():
    demo = made_analysis.averaged_logits_demo()
    for kind in ("shared", "different"):
        assert demo[kind]["mixture"] == pytest.approx(1.0, abs=1e-5)
    assert demo["shared"]["averaged_logits"] == pytest.approx(1.0, abs=1e-5)  # still autoregressive, one ordering
    assert abs(demo["different"]["averaged_logits"] - 1.0) > 1e-2  # not normalized
    with pytest.raises(ValueError):
        made_analysis.combination_totals([(made(side=(5, 5)).float(), 0)])
