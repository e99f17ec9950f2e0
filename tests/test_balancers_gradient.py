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


#: two distinct, non-parallel gradients with norms 3 and 4
J_34 = torch.tensor([[3.0, 0.0], [2.4, 3.2]], dtype=F64)
#: after n updates toward a constant target t from w = 1, the EMA with alpha = 0.9 is 1 + (1 - 0.9^n)(t - 1)
MOVED_5 = 1 - 0.9 ** 5


def gradnorm_by_hand(losses, steps, a=1.5, lr=0.025):
    """GradNorm's update in log space, written out for the norms (3, 4) of J_34: G_k = w_k n_k, r_k the loss
    ratio L_k(t)/L_k(0) over its mean, lambda_k = log w_k - lr sign(G_k - mean(G) r_k^a) G_k / mean(G), then
    w = 2 softmax(lambda)."""
    n, w = (3.0, 4.0), [1.0, 1.0]
    for step in range(steps):
        rel = [loss / first for loss, first in zip(losses(step), losses(0))]
        r = [x / (sum(rel) / 2) for x in rel]
        G = [w[k] * n[k] for k in range(2)]
        Gbar = sum(G) / 2
        lam = [math.log(w[k]) - lr * math.copysign(1.0, G[k] - Gbar * r[k] ** a) * G[k] / Gbar for k in range(2)]
        w = [2 * math.exp(x) / sum(math.exp(y) for y in lam) for x in lam]
    return w


#: (balancer, expected weights after 5 updates every step on J_34, unit losses), each from its formula
FORMULA_CASES = {
    # target 2 (1/3, 1/4) / (1/3 + 1/4) = (8/7, 6/7) (eps = 1e-8 is negligible), EMA alpha = 0.9
    "gradscale": (lambda: GradScale(every="1"), [1 + MOVED_5 * (8 / 7 - 1), 1 + MOVED_5 * (6 / 7 - 1)]),
    # target (3 + 4) / (3, 4) = (7/3, 7/4), EMA alpha = 0.9
    "gradnorm-eq": (lambda: GradNormEq(every="1"), [1 + MOVED_5 * (7 / 3 - 1), 1 + MOVED_5 * (7 / 4 - 1)]),
    # equal loss rates (r = 1): five log-space steps toward G_1 = G_2
    "gradnorm": (GradNorm, gradnorm_by_hand(lambda step: [1.0, 1.0], 5)),
}


@pytest.mark.parametrize("name", FORMULA_CASES)
def test_two_distinct_gradients_give_the_formula_weights_after_five_updates(name):
    make, expected = FORMULA_CASES[name]
    weights, state = run(make(), J_34, 5)
    assert weights.tolist() == pytest.approx(expected, rel=1e-9)
    assert abs(expected[0] - expected[1]) > 0.05 and int(state["skipped"]) == 0


@pytest.mark.parametrize("second, other", [((0.9, 1.1), 1.0), ((0.93, 1.07), 2.0)])
def test_gradnorm_loss_ratios_and_asymmetry_by_hand(second, other):
    """Step 0 (r = 1): lambda = (+0.025 * 3/3.5, -0.025 * 4/3.5), w = 2 / (1 + e^(-/+0.05)) = (1.025, 0.975).
    Step 1, losses ``second`` against (1, 1) at step 0: r = ``second``, and G / mean(G) = (3.075, 3.9) / 3.4875
    = (0.882, 1.118) lies between r^a and r^other, so the step's signs differ from those of asymmetry=other."""
    weights, _ = run(GradNorm(), J_34, 1)
    assert weights.tolist() == pytest.approx([2 / (1 + math.exp(-0.05)), 2 / (1 + math.exp(0.05))], rel=1e-12)

    def losses(step):
        return [1.0, 1.0] if step == 0 else list(second)

    weights, _ = run(GradNorm(), J_34, 2, lambda step: torch.tensor(losses(step), dtype=F64))
    assert weights.tolist() == pytest.approx(gradnorm_by_hand(losses, 2), rel=1e-12)
    assert weights.tolist() != pytest.approx(gradnorm_by_hand(losses, 2, a=other), rel=1e-3)


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
