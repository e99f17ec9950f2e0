"""Gradient-based balancers (gradscale, gradnorm-eq, gradnorm): known answers and robustness."""
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from pinnbal.balancers.base import Stats, TermInfo
from pinnbal.balancers.gradnorm import GradNorm
from pinnbal.balancers.gradnorm_eq import GradNormEq
from pinnbal.balancers.gradscale import GradScale, grad_norms
from pinnbal.balancers.lra import LRA
from pinnbal.errors import OptionError

CLASSES = [GradScale, GradNormEq, GradNorm]
F64 = torch.float64


def terms(k: int, weight: float = 1.0) -> list[TermInfo]:
    kinds = ["residual", "boundary", "initial", "data"]
    return [TermInfo(f"t{i}", kinds[i % 4], weight) for i in range(k)]


def jacobian_with_scales(*scales: float, P: int = 50) -> torch.Tensor:
    """Rows of ±scale_k with a fixed sign pattern: ‖J_k‖ = scale_k √P."""
    g = torch.Generator().manual_seed(0)
    signs = torch.randint(0, 2, (len(scales), P), generator=g).to(F64) * 2 - 1
    return signs * torch.tensor(scales, dtype=F64)[:, None]


def run(balancer, J, steps, losses=None, state=None, start=0):
    """``steps`` engine-like updates; J (and losses) may be callables of the step."""
    state = balancer.init(terms(J.shape[0] if torch.is_tensor(J) else J(0).shape[0])) if state is None else state
    weights = state["weights"]
    for step in range(start, start + steps):
        Js = J(step) if callable(J) else J
        L = losses(step) if callable(losses) else (torch.ones(Js.shape[0], dtype=F64) if losses is None else losses)
        stats = Stats(losses=L, jacobian=Js if "jacobian" in balancer.needs_at(step) else None)
        weights, state = balancer.update(stats, state, step=step, progress=0.0)
    return weights, state


def weighted_norms(weights, J):
    return weights * grad_norms(J)


@pytest.mark.parametrize("make", [GradScale, GradNormEq, GradNorm, lambda: LRA(form="paper", every="1")],
                         ids=["gradscale", "gradnorm-eq", "gradnorm", "lra-paper"])
@pytest.mark.parametrize("scales", [(1.0, 1e-3), (1e-3, 1.0), (1e4, 10.0)])
def test_weighted_gradient_norms_end_within_2x_when_gradients_differ_1000x(make, scales):
    J = jacobian_with_scales(*scales)
    before = weighted_norms(torch.ones(2, dtype=F64), J)
    assert float(before.max() / before.min()) == pytest.approx(1000.0)
    weights, _ = run(make(), J, 2000)
    after = weighted_norms(weights, J)
    assert torch.isfinite(weights).all()
    assert float(after.max() / after.min()) < 2.0


def test_gradscale_matches_its_formula_and_sums_to_k():
    J = torch.tensor([[3.0, 0.0], [0.0, 4.0], [0.0, 12.0]], dtype=F64)  # norms 3, 4, 12
    weights, _ = run(GradScale(alpha="0", every="1", eps="0"), J, 1)
    inv = torch.tensor([1 / 3, 1 / 4, 1 / 12], dtype=F64)
    assert weights.tolist() == pytest.approx((3 * inv / inv.sum()).tolist())  # [1.5, 1.125, 0.375]
    assert float(weights.sum()) == pytest.approx(3.0)
    weights, _ = run(GradScale(), J, 1)  # defaults: eps=1e-8, EMA alpha=0.9 from w=1
    assert weights.tolist() == pytest.approx([0.9 + 0.1 * 1.5, 0.9 + 0.1 * 1.125, 0.9 + 0.1 * 0.375])


def test_gradnorm_eq_matches_its_formula():
    J = torch.tensor([[3.0, 0.0], [0.0, 4.0], [0.0, 12.0]], dtype=F64)
    weights, _ = run(GradNormEq(alpha="0", every="1"), J, 1)
    assert weights.tolist() == pytest.approx([19 / 3, 19 / 4, 19 / 12])
    weights, _ = run(GradNormEq(every="1"), J, 1)
    assert weights.tolist() == pytest.approx([0.9 + 0.1 * 19 / 3, 0.9 + 0.1 * 19 / 4, 0.9 + 0.1 * 19 / 12])


@pytest.mark.parametrize("slow", [0, 1])
def test_gradnorm_gives_the_slower_learning_term_the_larger_weight(slow):
    J = jacobian_with_scales(1.0, 1.0)  # identical gradient norms

    def losses(step):  # both start at 1; one decays 10x faster than the other
        rates = [0.999, 0.99] if slow == 0 else [0.99, 0.999]
        return torch.tensor([r ** step for r in rates], dtype=F64)

    weights, _ = run(GradNorm(asymmetry="1.5"), J, 200, losses)
    assert float(weights[slow]) > 1.5 * float(weights[1 - slow])
    assert float(weights.sum()) == pytest.approx(2.0)
    equal, _ = run(GradNorm(asymmetry="0"), J, 200, losses)  # a = 0: equal gradient norms whatever the rates
    assert equal.tolist() == pytest.approx([1.0, 1.0], rel=0.05)


def test_gradnorm_options_and_defaults():
    b = GradNorm(asymmetry="1.5", lr="0.05", every="2")
    assert b.opts == {"asymmetry": 1.5, "lr": 0.05, "space": "log", "every": 2, "alpha": 0.0, "min": 1e-3,
                      "max": 1e3, "params": "all"}
    for bad in ({"asymmetry": "-1"}, {"lr": "0"}, {"space": "cubic"}, {"params": "first"}):
        with pytest.raises(OptionError):
            GradNorm(**bad)
    with pytest.raises(OptionError, match="eps"):
        GradScale(eps="-1")
    assert all(cls.needs == frozenset({"losses", "jacobian"}) for cls in CLASSES)


def test_gradnorm_linear_space_takes_the_papers_plain_step():
    J = torch.tensor([[3.0, 0.0], [0.0, 4.0]], dtype=F64)  # G = (3, 4), mean 3.5, r = 1
    weights, _ = run(GradNorm(space="linear", lr="0.01"), J, 1)
    w = torch.tensor([1 + 0.01 * 3, 1 - 0.01 * 4], dtype=F64)  # w - lr sign(G - 3.5) n, then sum -> 2
    assert weights.tolist() == pytest.approx((2 * w / w.sum()).tolist())


@pytest.mark.parametrize("cls", CLASSES)
def test_single_term(cls):
    for scale in (1.0, 0.0, 1e30):
        weights, _ = run(cls(every="1"), jacobian_with_scales(scale), 5)
        assert weights.shape == (1,) and weights.tolist() == pytest.approx([1.0])


@pytest.mark.parametrize("cls", CLASSES)
def test_zero_gradients_give_finite_weights(cls):
    for J in (torch.zeros(3, 10, dtype=F64), jacobian_with_scales(0.0, 1.0, 1e-3)):
        weights, state = run(cls(every="1"), J, 5)
        assert torch.isfinite(weights).all() and (weights >= 0).all() and int(state["skipped"]) == 0


SCALES = st.one_of(st.sampled_from([0.0, 1e-30, 1e30, 1.0]), st.floats(1e-30, 1e30))


@settings(max_examples=60, deadline=None)
@given(cls=st.sampled_from(CLASSES), scales=st.lists(st.lists(SCALES, min_size=1, max_size=4), min_size=1,
                                                      max_size=4).filter(lambda s: len({len(r) for r in s}) == 1),
       losses=st.lists(SCALES, min_size=4, max_size=4), seed=st.integers(0, 2**16))
def test_property_finite_non_negative_weights_for_any_gradient_scale(cls, scales, losses, seed):
    g = torch.Generator().manual_seed(seed)
    K = len(scales[0])
    Js = [torch.randn(K, 7, generator=g, dtype=F64) * torch.tensor(s, dtype=F64)[:, None] for s in scales]
    balancer, L = cls(every="1"), torch.tensor(losses[:K], dtype=F64)
    weights, state = run(balancer, lambda step: Js[step], len(Js), L)
    assert weights.shape == (K,) and torch.isfinite(weights).all() and (weights >= 0).all()
    assert int(state["skipped"]) == 0


@pytest.mark.parametrize("cls", CLASSES)
def test_state_saved_and_loaded_mid_sequence_continues_identically(cls, tmp_path):
    def J(step):
        return jacobian_with_scales(1.0 + 0.1 * math.sin(step), 1e-3, 5.0)

    def losses(step):
        return torch.tensor([0.99 ** step, 0.999 ** step, 1.0], dtype=F64)

    _, mid = run(cls(every="3"), J, 17, losses)
    assert all(isinstance(v, torch.Tensor) for v in mid.values())
    torch.save(mid, tmp_path / "state.pt")
    loaded = torch.load(tmp_path / "state.pt", weights_only=True)
    w_a, s_a = run(cls(every="3"), J, 20, losses, state=mid, start=17)
    w_b, s_b = run(cls(every="3"), J, 20, losses, state=loaded, start=17)
    assert torch.equal(w_a, w_b) and all(torch.equal(s_a[k], s_b[k]) for k in s_a)
    w_full, _ = run(cls(every="3"), J, 37, losses)
    assert torch.equal(w_a, w_full)
