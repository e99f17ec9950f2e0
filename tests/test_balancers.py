"""Balancer behaviour with known answers, and the checks every balancer shares."""
import dataclasses
import math

import pytest
import torch

import pinnbal as pb
from pinnbal.balancers import BALANCERS, Stats, TermInfo, make_balancer, parse_spec
from pinnbal.batches import TermValues
from pinnbal.errors import OptionError
from pinnbal.train import TrainConfig, Trainer

F64 = torch.float64
TERMS = [TermInfo("pde", "residual", 1.0), TermInfo("bc", "boundary", 1.0)]
#: the shared checks' three terms, with unequal point counts (per-point state is sized by them)
POINTS = (6, 4, 5)
TERMS3 = [TermInfo("pde", "residual", 1.0, POINTS[0]), TermInfo("bc", "boundary", 1.0, POINTS[1]),
          TermInfo("ic", "initial", 1.0, POINTS[2])]

#: what the engine attaches before init: a space-time box (for causal) and a user rule (for rules); also the
#: tiny problem whose training context the validation-driven balancers get (terms as TERMS3)
PROBLEM = pb.Problem("shared", pb.Box(x=(0.0, 1.0), t=(0.0, 1.0)), ["u"],
                     [pb.Residual("pde", lambda p: p.u_t - p.u_xx, points=POINTS[0]),
                      pb.Boundary("bc", on=pb.Face("x"), value=0.0, points=POINTS[1]),
                      pb.Initial("ic", value=lambda p: torch.sin(math.pi * p.x), points=POINTS[2])],
                     weights=lambda state: {"pde": 1.0 + state["progress"]})

#: the balancers that read Stats.context (learned, meta): without one they return their weights unchanged
CONTEXT = {name for name, cls in BALANCERS.items() if "context" in cls.needs}
#: their learned parameters phi, which an update must move
PHI = {"learned": ("mlp_w2", "mlp_b2"), "meta": ("logit",)}
#: the same methods with a cadence that makes every step of the shared checks an update
EVERY_STEP = {"learned": "learned:every=1", "meta": "meta:k=1"}


@pytest.fixture(scope="module")
def context():
    """The TrainingContext a real Trainer builds for a validation-driven balancer on PROBLEM: its model
    (width 8, float64) as a function of its parameters, its training batch and a held-out validation batch."""
    config = TrainConfig(steps=1, lbfgs=0, width=8, depth=1, device="cpu", dtype="float64")
    trainer = Trainer(PROBLEM, "learned", config)
    assert trainer.context is not None and [t.name for t in trainer.context.terms] == ["pde", "bc", "ic"]
    return trainer.context


class PermutedContext:
    """``context`` with its terms seen in ``order``: what a trainer on the reordered problem would hand over."""

    def __init__(self, context, order):
        self.context, self.order = context, list(order)
        self.terms = [context.terms[i] for i in self.order]
        self.optimizer = context.optimizer

    @property
    def lr(self):
        return self.context.lr

    def parameters(self):
        return self.context.parameters()

    def evaluate(self, params=None, part="train"):
        values = self.context.evaluate(params, part)
        return TermValues(*([getattr(values, field)[i] for i in self.order]
                            for field in ("residuals", "pointwise", "terms")))


def build(spec):
    """A balancer as the engine prepares it: made from its spec and attached to a problem."""
    balancer = make_balancer(spec)
    balancer.attach(PROBLEM)
    return balancer


def jacobian_with_scales(pde_scale: float, bc_scale: float, P: int = 50) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    signs = torch.randint(0, 2, (2, P), generator=g).double() * 2 - 1
    return signs * torch.tensor([[pde_scale], [bc_scale]], dtype=torch.float64)


def full_stats(losses, J, context=None):
    """Every statistic the engine can measure, with NTK traces standing in as squared row norms of J
    and each term's loss as its one point's pointwise loss."""
    return Stats(losses=losses, jacobian=J, ntk_traces=J.double().square().sum(dim=1),
                 pointwise=[loss.reshape(1) for loss in losses],
                 points=[torch.tensor([[0.5, 0.5]], dtype=torch.float64)] * len(losses), context=context)


def varied_stats(step):
    """Statistics for TERMS3 at ``step`` with nothing equal across the terms: pointwise losses of different
    sizes around 2, 0.3 and 0.02 falling at different rates (the losses are their means), non-parallel
    gradient rows of different norms (the third conflicting with the first), NTK traces in other ratios."""
    g = torch.Generator().manual_seed(100 + step)
    scale = torch.tensor([2.0, 0.3, 0.02], dtype=F64) * torch.tensor([0.9, 0.5, 0.97], dtype=F64) ** step
    pointwise = [2 * scale[k] * torch.rand(n, generator=g, dtype=F64) for k, n in enumerate(POINTS)]
    J = torch.randn(3, 20, generator=g, dtype=F64)
    J[2] -= 0.8 * J[0]
    J *= torch.tensor([[1.0], [0.2], [3.0]], dtype=F64)
    points = [torch.rand(n, 2, generator=g, dtype=F64) for n in POINTS]
    return Stats(losses=torch.stack([ell.mean() for ell in pointwise]), jacobian=J,
                 ntk_traces=J.square().sum(dim=1) * torch.tensor([1.0, 5.0, 0.1], dtype=F64),
                 pointwise=pointwise, points=points)


def reordered(stats, order, context=None):
    """``stats`` (and ``context``, if given) with the terms taken in ``order``."""
    return Stats(losses=stats.losses[order], jacobian=stats.jacobian[order], ntk_traces=stats.ntk_traces[order],
                 pointwise=[stats.pointwise[i] for i in order], points=[stats.points[i] for i in order],
                 context=None if context is None else PermutedContext(context, order))


def run_updates(balancer, J, steps):
    state = balancer.init(TERMS)
    losses = torch.tensor([1.0, 1.0], dtype=torch.float64)
    weights = state["weights"]
    for step in range(steps):
        stats = Stats(losses=losses, jacobian=J if "jacobian" in balancer.needs_at(step) else None)
        weights, state = balancer.update(stats, state, step=step, progress=step / steps)
    return weights, state


def test_lra_raises_the_weight_of_a_term_with_100x_smaller_gradients():
    J = jacobian_with_scales(1.0, 0.01)  # max|grad pde| = 1, mean|grad bc| = 0.01
    lra = make_balancer("lra:every=1,alpha=0.9")
    weights, _ = run_updates(lra, J, 1)
    # first update: w_bc = 0.9 * 1 + 0.1 * (1 / (1 * 0.01)) = 10.9; the PDE weight stays 1
    assert weights.tolist() == pytest.approx([1.0, 10.9])
    weights, _ = run_updates(lra, J, 400)
    # weighted form's fixed point: w = 1 / (w * 0.01)  =>  w = sqrt(100) = 10
    assert weights.tolist() == pytest.approx([1.0, 10.0], rel=1e-6)


def test_lra_paper_form_converges_to_the_plain_ratio():
    J = jacobian_with_scales(1.0, 0.01)
    weights, _ = run_updates(make_balancer("lra:every=1,form=paper"), J, 400)
    assert weights.tolist() == pytest.approx([1.0, 100.0], rel=1e-6)


def test_lra_mean_variant_uses_mean_of_reference_gradients():
    J = jacobian_with_scales(1.0, 0.01)
    J[0, :10] *= 7.0  # max|grad pde| = 7, mean = (10*7 + 40)/50 = 2.2
    w_max, _ = run_updates(make_balancer("lra:every=1,form=paper,alpha=0"), J, 1)
    w_mean, _ = run_updates(make_balancer("lra:every=1,form=paper,alpha=0,variant=mean"), J, 1)
    assert float(w_max[1]) == pytest.approx(700.0)
    assert float(w_mean[1]) == pytest.approx(220.0)


def test_lra_bounds_hold_on_extreme_ratios():
    J = jacobian_with_scales(1.0, 1e-12)
    weights, _ = run_updates(make_balancer("lra:every=1,alpha=0,form=paper,max=500"), J, 3)
    assert float(weights[1]) == 500.0


def test_lra_keeps_weights_between_updates_and_only_asks_for_J_on_its_cadence():
    lra = make_balancer("lra:every=10")
    assert "jacobian" in lra.needs_at(0) and "jacobian" not in lra.needs_at(5)
    J = jacobian_with_scales(1.0, 0.01)
    state = lra.init(TERMS)
    w0, state = lra.update(Stats(torch.ones(2), J), state, step=0, progress=0.0)
    w5, state = lra.update(Stats(torch.ones(2), None), state, step=5, progress=0.5)
    assert torch.equal(w0, w5)


def test_non_finite_gradients_leave_weights_unchanged_and_are_counted():
    lra = make_balancer("lra:every=1")
    J = jacobian_with_scales(1.0, 0.01)
    J[1, 3] = float("nan")
    weights, state = run_updates(lra, J, 2)
    assert weights.tolist() == [1.0, 1.0]
    assert int(state["skipped"]) == 2


def test_fixed_returns_the_initial_weights():
    fixed = make_balancer("fixed")
    state = fixed.init([TermInfo("pde", "residual", 1.0), TermInfo("bc", "boundary", 100.0)])
    weights, _ = fixed.update(Stats(torch.ones(2)), state, step=0, progress=0.0)
    assert weights.tolist() == [1.0, 100.0]
    assert fixed.needs_at(0) == frozenset({"losses"})


@pytest.mark.parametrize("name", sorted(BALANCERS))
def test_every_balancer_gives_finite_non_negative_weights_on_hostile_inputs(name, context):
    balancer = build(EVERY_STEP.get(name, name))
    terms = [TermInfo("pde", "residual", 1.0), TermInfo("bc", "boundary", 1.0), TermInfo("ic", "initial", 1.0)]
    state = first = balancer.init(terms)
    g = torch.Generator().manual_seed(0)
    for step, scale in enumerate([1e-30, 1.0, 1e30, 0.0, 1e-8]):
        J = torch.randn(3, 20, generator=g, dtype=torch.float64) * torch.tensor([[1.0], [scale], [1e-3]])
        losses = torch.tensor([1.0, scale, 1e-6], dtype=torch.float64)
        weights, state = balancer.update(full_stats(losses, J, context), state, step=step, progress=step / 5)
        assert weights.shape == (3,)
        assert torch.isfinite(weights).all() and (weights >= 0).all()
        # learned and per-point state (sigma, lambda, phi, ...) stays finite too
        assert all(torch.isfinite(v).all() for v in state.values() if v.is_floating_point())
    if name in CONTEXT:  # every step was an update: one meta-gradient step on phi each, none skipped
        assert int(state["adam_t"]) == 5 and int(state["skipped"]) == 0
        assert all(not torch.equal(state[n], first[n]) for n in PHI[name])
    # a non-finite statistic (a diverging term) on a step every method is due: nothing moves, and it is counted
    before = state
    J = torch.ones(3, 20, dtype=torch.float64)
    J[1, 0] = float("inf")
    losses = torch.tensor([float("nan"), 1.0, 1e-6], dtype=torch.float64)
    weights, state = balancer.update(full_stats(losses, J, context), state, step=1000, progress=1.0)
    assert torch.equal(weights, before["weights"])
    assert int(state["skipped"]) == int(before["skipped"]) + (name != "fixed")  # fixed is never due
    assert state.keys() == before.keys() and all(torch.equal(state[k], before[k]) for k in state if k != "skipped")


#: specs that give the permutation check something to permute: a target pde misses and ic meets; a ramp on bc
PERMUTATION_SPECS = {"performance": "performance:pde<0.5,ic<0.5", "schedule": "schedule:bc=1>3"}
#: term weights that stay at the declared ones by design: fixed, and the per-point schemes alone (their
#: per-point state is checked instead)
EQUAL_BY_DESIGN = {"fixed"} | {name for name, cls in BALANCERS.items() if cls.point_scheme}


@pytest.mark.parametrize("spec", sorted(set(BALANCERS) - {"rlw"}) + ["gradnorm-eq:every=1+causal+sa", "upgrad+rba"])
def test_permuting_terms_permutes_weights_and_state(spec, context):
    """Unequal losses, gradients, NTK traces and pointwise losses over four steps, with the terms in two
    orders: each term gets the same weight and state in both.  rlw is left out (its draw belongs to term
    positions, its docstring says); pcgrad's projection order is random for K >= 3 (its docstring), so it is
    checked on two terms, where the order does not matter.  learned (every=10) updates once here, at step 0:
    from its second update on its MLP reads the terms by position through the random input weights W1, so
    the term order changes its weights (learned:every=1 fails this check)."""
    name = spec.split("+")[0].split(":")[0]
    order, perm = ([0, 2], [2, 0]) if name == "pcgrad" else ([0, 1, 2], [2, 0, 1])

    def run(order):
        balancer = build(PERMUTATION_SPECS.get(spec, spec))
        state = balancer.init([TERMS3[i] for i in order])
        for step in range(4):
            stats = reordered(varied_stats(step), order, context if name in CONTEXT else None)
            weights, state = balancer.update(stats, state, step=step, progress=step / 3)
        return weights, state

    (w1, s1), (w2, s2) = run(order), run(perm)
    back = [perm.index(i) for i in order]  # where each term of the first run sits in the second
    assert torch.allclose(w1, w2[back], rtol=1e-6, atol=1e-12), (w1, w2[back])
    spread = float(w1.max() - w1.min())
    if name in EQUAL_BY_DESIGN:
        assert spread == 0.0
    else:  # unequal inputs must give unequal weights, or the check above proves nothing
        assert spread > 1e-6 * float(w1.abs().max()), w1
    assert s1.keys() == s2.keys()
    for key, v1 in s1.items():
        # per-term entries: by name (rba/pde) as they are, by position (K, ...) permuted; the rest as they are
        v2 = s2[key][back] if "/" not in key and v1.dim() and v1.shape[0] == len(order) else s2[key]
        same = torch.allclose(v1, v2, rtol=1e-6, atol=1e-12) if v1.is_floating_point() else torch.equal(v1, v2)
        assert same, (key, v1, v2)


@pytest.mark.parametrize("name", sorted(BALANCERS))
def test_state_is_a_dict_of_tensors_that_survives_save_and_load(name, context, tmp_path):
    """Two updates, save, load; then the original and a fresh balancer given the loaded state (a resumed run)
    continue for two more updates identically."""
    spec = EVERY_STEP.get(name, name)
    balancer = build(spec)
    stats = [dataclasses.replace(varied_stats(step), context=context) for step in range(4)]
    state = first = balancer.init(TERMS3)
    for step in (0, 1):
        _, state = balancer.update(stats[step], state, step=step, progress=step / 4)
    assert all(isinstance(v, torch.Tensor) for v in state.values())
    torch.save(state, tmp_path / "s.pt")
    loaded = torch.load(tmp_path / "s.pt", weights_only=True)
    assert loaded.keys() == state.keys() and all(torch.equal(loaded[k], state[k]) for k in state)
    resumed = build(spec)
    resumed.init(TERMS3)
    a, b = state, loaded
    for step in (2, 3):
        w_a, a = balancer.update(stats[step], a, step=step, progress=step / 4)
        w_b, b = resumed.update(stats[step], b, step=step, progress=step / 4)
        assert torch.equal(w_a, w_b)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    if name in CONTEXT:  # each of the four updates took a meta-gradient step on phi, also after the reload
        assert int(state["adam_t"]) == 2 and int(a["adam_t"]) == 4 and int(a["skipped"]) == 0
        assert all(not torch.equal(state[n], first[n]) and not torch.equal(a[n], state[n]) for n in PHI[name])


def test_spec_parsing():
    assert parse_spec("lra") == ("lra", {})
    assert parse_spec(" lra:alpha=0.5, every=3 ") == ("lra", {"alpha": "0.5", "every": "3"})
    lra = make_balancer("lra:alpha=0.5,every=3")
    assert lra.opts["alpha"] == 0.5 and lra.opts["every"] == 3


@pytest.mark.parametrize("spec, fragment", [
    ("lrx", "did you mean 'lra'"), ("lra:alpah=0.9", "unknown option 'alpah'"), ("lra:alpha", "not key=value"),
    ("lra:every=zero", "every='zero'"), ("lra:every=0", "every=0"), ("lra:alpha=1.5", "alpha"),
    ("lra:variant=median", "variant"), ("", "empty"), ("lra:every=1,every=2", "twice"),
    ("lra:min=10,max=1", "min < max"), ("lra:alpha=nan", "alpha"),
])
def test_bad_specs_are_option_errors(spec, fragment):
    with pytest.raises(OptionError, match=fragment):
        make_balancer(spec)


def test_uncertainty_learns_sigma_squared_equal_to_fixed_losses():
    """The optimum of exp(-s) L + s is s = log L, i.e. sigma^2 = L and weight 1/L."""
    terms = [TermInfo("pde", "residual", 1.0), TermInfo("bc", "boundary", 1.0)]
    balancer = make_balancer("uncertainty:lr=0.05")
    state = balancer.init(terms)
    losses = torch.tensor([0.5, 4e-3], dtype=torch.float64)
    for step in range(3000):
        weights, state = balancer.update(Stats(losses), state, step=step, progress=step / 3000)
    assert torch.exp(state["log_var"]).tolist() == pytest.approx(losses.tolist(), rel=1e-2)
    assert weights.tolist() == pytest.approx((1 / losses).tolist(), rel=1e-2)


def test_update_never_mutates_the_callers_state():
    balancer = make_balancer("uncertainty")
    state = balancer.init(TERMS)
    before = {k: v.clone() for k, v in state.items()}
    balancer.update(Stats(torch.tensor([1.0, 2.0])), state, step=0, progress=0.0)
    assert all(torch.equal(before[k], state[k]) for k in before)


def test_bayes_weights_are_posterior_mean_precisions():
    terms = [TermInfo("pde", "residual", 1.0, points=1000), TermInfo("bc", "boundary", 1.0, points=10)]
    balancer = make_balancer("bayes:alpha=0,a0=1,b0=0.1,min=0,max=1e9")
    state = balancer.init(terms)
    losses = torch.tensor([1e-2, 1e-2], dtype=torch.float64)
    weights, _ = balancer.update(Stats(losses), state, step=0, progress=0.0)
    tau = torch.tensor([(1 + 500) / (0.1 + 5.0), (1 + 5) / (0.1 + 0.05)], dtype=torch.float64)
    assert weights.tolist() == pytest.approx((2 * tau / tau.sum()).tolist())
    # equal losses (1/L = 100), but the term with fewer points is pulled toward the prior mean a0/b0 = 10
    assert float(weights[1]) < 0.5 * float(weights[0])


def test_bayes_gives_the_term_with_the_smaller_residuals_the_larger_weight():
    terms = [TermInfo("pde", "residual", 1.0, points=4096), TermInfo("bc", "boundary", 1.0, points=512)]
    balancer = make_balancer("bayes:alpha=0")
    weights, _ = balancer.update(Stats(torch.tensor([1e-1, 1e-4])), balancer.init(terms), step=0, progress=0.0)
    assert float(weights[1]) > 10 * float(weights[0])



def test_bayes_warmup_holds_the_initial_weights_until_its_fraction_of_adam():
    terms = [TermInfo("pde", "residual", 1.0, points=4096), TermInfo("obs", "data", 1.0, points=200)]
    balancer = make_balancer("bayes:alpha=0,warmup=0.5")
    state = balancer.init(terms)
    losses = Stats(torch.tensor([1e-6, 1e-1]))
    held, state = balancer.update(losses, state, step=10, progress=0.4)
    assert held.tolist() == [1.0, 1.0]
    moved, _ = balancer.update(losses, state, step=60, progress=0.5)
    unheld, _ = make_balancer("bayes:alpha=0").update(losses, balancer.init(terms), step=60, progress=0.5)
    assert moved.tolist() == unheld.tolist() and float(moved[0]) > 100 * float(moved[1])


@pytest.mark.parametrize("spec", ["bayes:warmup=-0.1", "bayes:warmup=1.5"])
def test_bayes_warmup_outside_zero_to_one_is_refused(spec):
    with pytest.raises(OptionError, match="warmup"):
        make_balancer(spec)

CUSTOM_BALANCER = '''
import pinnbal as pb


class LossRatio(pb.Balancer):
    """w_k = L_k / mean(L): louder terms get more weight."""
    name = "loss-ratio"
    options = {"every": 1, "alpha": 0.0, "min": 1e-3, "max": 1e3}

    def target(self, stats, state, *, step, progress):
        losses = stats.losses.double().clamp_min(1e-30)
        return losses / losses.mean()
'''


@pytest.mark.parametrize("how", ["module", "file"])
def test_custom_balancer_from_a_module_or_file(how, tmp_path, monkeypatch):
    (tmp_path / "mybal.py").write_text(CUSTOM_BALANCER)
    monkeypatch.chdir(tmp_path)
    source = "mybal" if how == "module" else str(tmp_path / "mybal.py")
    balancer = make_balancer(f"{source}:LossRatio:alpha=0.5")
    assert balancer.opts["alpha"] == 0.5
    weights, _ = balancer.update(Stats(torch.tensor([3.0, 1.0])), balancer.init(TERMS), step=0, progress=0.0)
    assert weights.tolist() == pytest.approx([0.5 * 1 + 0.5 * 1.5, 0.5 * 1 + 0.5 * 0.5])
    assert make_balancer(balancer.spec).opts == balancer.opts  # the saved spec round-trips


@pytest.mark.parametrize("spec, fragment", [("nosuchmod:X", "cannot import"), ("mybal:Nope", "no Balancer subclass"),
                                            ("missing.py:X", "no such file")])
def test_custom_balancer_errors_are_one_line(spec, fragment, tmp_path, monkeypatch):
    (tmp_path / "mybal.py").write_text(CUSTOM_BALANCER)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(OptionError, match=fragment):
        make_balancer(spec)


def test_ntk_weights_follow_eq_6_4():
    """tr(K) of 1 and 1e-4: the small-trace term gets (1 + 1e-4) / 1e-4, the other (1 + 1e-4) / 1."""
    ntk = make_balancer("ntk:alpha=0,every=1,max=1e6")
    traces = torch.tensor([1.0, 1e-4], dtype=torch.float64)
    weights, _ = ntk.update(Stats(torch.ones(2), ntk_traces=traces), ntk.init(TERMS), step=0, progress=0.0)
    assert weights.tolist() == pytest.approx([1.0001, 10001.0])
