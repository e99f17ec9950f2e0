"""Every balancer optimises the same declared objective: aggregators see the rows w_k g_k, rlw averages to the
declared weights, schedules reach their end, L-BFGS minimises one fixed function, normalisations hold."""
import pytest
import torch

import pinnbal as pb
from pinnbal.balancers import BALANCERS, Stats, TermInfo, make_balancer
from pinnbal.balancers.aggregators import MGDA, ConFIG, GradDrop, DirectionBalancer
from pinnbal.train import TrainConfig, Trainer, adam_progress, fit


HEAT = "problems/heat_inverse.py"


def small_trainer(balancer, problem=HEAT, **settings):
    from pinnbal.loader import load_problem

    settings = {"steps": 3, "lbfgs": 0, "width": 8, "depth": 1, "dtype": "float64"} | settings
    return Trainer(load_problem(problem), balancer, TrainConfig(**settings))


class Unit(DirectionBalancer):
    """An aggregator whose direction is the plain sum of the rows it is handed: records what it saw."""

    name = "unit-sum"
    requires = ()

    def target(self, stats, state, *, step, progress):
        self.seen = stats.jacobian.clone()
        return torch.ones(len(stats.losses), dtype=torch.float64)


def per_term_gradients(trainer):
    from pinnbal.batches import evaluate_terms

    values = evaluate_terms(trainer.model, trainer.batches)
    rows = []
    for loss in values.terms:
        grads = torch.autograd.grad(loss, trainer.params, retain_graph=True, allow_unused=True)
        rows.append(torch.cat([(torch.zeros_like(p) if g is None else g).reshape(-1)
                               for g, p in zip(grads, trainer.params)]))
    return torch.stack(rows)


def test_an_aggregator_sees_the_rows_of_the_declared_objective_and_held_terms_enter_at_their_weight():
    trainer = small_trainer(Unit(), weights={"pde": 2.0, "walls": 0.0, "obs": 0.5})
    J = per_term_gradients(trainer)
    trainer.step(trainer.adam, 0)
    scale = torch.tensor([2.0, 0.0, 0.5], dtype=torch.float64)
    assert torch.allclose(trainer.balancer.seen, scale[:, None] * J, rtol=1e-10, atol=1e-14)
    grad = torch.cat([p.grad.reshape(-1) for p in trainer.params])
    # coefficients 1 on the scaled rows: the gradient of the declared objective 2 L_pde + 0 L_walls + 0.5 L_obs
    assert torch.allclose(grad, scale @ J, rtol=1e-10, atol=1e-14)


def test_a_held_regularisation_term_is_outside_the_aggregation_at_its_declared_weight(tmp_path):
    path = tmp_path / "reg.py"
    path.write_text(open(HEAT).read().replace(
        'pb.Data("obs", x=x_obs, values=u_obs[:, None]),',
        'pb.Data("obs", x=x_obs, values=u_obs[:, None]),\n        pb.L2("l2", weight=0.01),'))
    trainer = small_trainer(Unit(), problem=str(path))
    J = per_term_gradients(trainer)
    _, weights = trainer.step(trainer.adam, 0)
    assert trainer.balancer.seen[3].abs().max() == 0.0  # the aggregator never sees the held row
    grad = torch.cat([p.grad.reshape(-1) for p in trainer.params])
    assert torch.allclose(grad, torch.tensor([1.0, 1.0, 1.0, 0.01], dtype=torch.float64) @ J, rtol=1e-10, atol=1e-14)
    assert weights.tolist() == pytest.approx([1.0, 1.0, 1.0, 0.01])


def test_mgda_leaves_a_switched_off_term_out_instead_of_returning_the_zero_step():
    J = torch.tensor([[1.0, 0.0], [0.0, 2.0], [0.0, 0.0]])
    mgda = MGDA()
    state = mgda.init([TermInfo(n, "residual", 1.0) for n in "abc"])
    weights, state = mgda.update(Stats(losses=torch.ones(3), jacobian=J), state, step=0, progress=0.0)
    d = mgda.combine(J, weights, state)
    # min-norm point of conv{(1,0), (0,2)}: alpha = (0.8, 0.2), d = (0.8, 0.4); the zero row gets 0
    assert weights.tolist() == pytest.approx([0.8, 0.2, 0.0], abs=2e-2)
    assert d.norm() > 0.5


@pytest.mark.parametrize("cls, target", [(GradDrop, "direction"), (ConFIG, None)])
def test_config_and_graddrop_compute_their_direction_once_per_step(cls, target, monkeypatch):
    import pinnbal.balancers.aggregators as agg

    calls = []
    if target:
        original = cls.direction
        monkeypatch.setattr(cls, "direction", lambda self, *a: calls.append(1) or original(self, *a))
    else:
        original = agg._config_operator
        monkeypatch.setattr(agg, "_config_operator", lambda: calls.append(1) or original())
    trainer = small_trainer(cls())
    trainer.step(trainer.adam, 0)
    direction = torch.cat([p.grad.reshape(-1) for p in trainer.params])
    assert len(calls) == 1
    assert torch.equal(direction, trainer.state["direction"].to(direction))


def test_rlw_draws_average_to_the_declared_weights_and_lbfgs_uses_them():
    rlw = make_balancer("rlw")
    state = rlw.init([TermInfo("a", "residual", 2.0), TermInfo("b", "boundary", 1.0)])
    draws = torch.stack([rlw.update(Stats(losses=torch.ones(2)), state, step=s, progress=0.0)[0]
                         for s in range(4000)])
    assert draws.mean(dim=0).tolist() == pytest.approx([2.0, 1.0], rel=0.03)
    assert draws.std(dim=0).min() > 0.1  # random, not constant
    assert rlw.fixed_weights(state).tolist() == [2.0, 1.0]


def test_an_aggregator_and_rlw_enter_lbfgs_with_the_declared_weights():
    for spec in ("rlw", "upgrad"):
        trainer = small_trainer(spec, lbfgs=2, log_every=1, weights={"obs": 3.0})
        run = fit(trainer, progress_bar=False)
        last = run.history[-1]
        assert last["phase"] != "adam"
        assert [last[f"weight/{t}"] for t in ("pde", "walls", "obs")] == [1.0, 1.0, 3.0]


def test_progress_is_zero_at_the_first_adam_step_and_one_at_the_last():
    assert [adam_progress(s, 5) for s in range(5)] == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert adam_progress(0, 1) == 1.0


def test_a_linear_schedule_reaches_its_end_weight_at_the_last_adam_step():
    run = fit(small_trainer("schedule:pde=1>3", steps=5, log_every=1), progress_bar=False)
    assert [row["weight/pde"] for row in run.history] == pytest.approx([1.0, 1.5, 2.0, 2.5, 3.0])


def test_per_point_multipliers_are_frozen_through_lbfgs_at_their_values_at_the_switch():
    from pinnbal.batches import evaluate_terms

    trainer = small_trainer("lra:every=1+rba", steps=4)
    fit(trainer, progress_bar=False)

    def multipliers_now():
        values = evaluate_terms(trainer.model, trainer.batches)
        return trainer.balancer.multipliers([e.detach() for e in values.pointwise], trainer.batches.points,
                                            trainer.state)

    at_switch = multipliers_now()
    trainer.config.lbfgs = 5
    fit(trainer, progress_bar=False)
    assert trainer.lbfgs_done == 5
    for frozen, expected, moved in zip(trainer.frozen, at_switch, multipliers_now()):
        assert torch.equal(frozen, expected)
        assert not torch.equal(moved, expected)  # rba would have moved the objective under the line search


def test_lra_params_weights_differentiates_the_weight_matrices_only():
    trainer = small_trainer("lra:params=weights")
    linear = [m for m in trainer.model.network.modules() if isinstance(m, torch.nn.Linear)]
    assert [id(p) for p in trainer.jacobian_params] == [id(m.weight) for m in linear]
    assert all(p is not trainer.model.unknowns["kappa"] for p in trainer.jacobian_params)
    trainer.step(trainer.adam, 0)  # trains: J over the weights, the step a backward of the weighted sum
    assert all(p.grad is not None for p in trainer.params)


def unequal_stats(step, K=3, P=40):
    g = torch.Generator().manual_seed(step)
    losses = torch.tensor([1.0, 0.1, 0.01]) * (1 + 0.1 * torch.rand(K, generator=g))
    J = torch.randn(K, P, generator=g) * torch.tensor([[1.0], [0.3], [0.05]])
    return Stats(losses=losses, jacobian=J, ntk_traces=J.square().sum(dim=1),
                 pointwise=[torch.full((4,), float(v)) for v in losses], points=[torch.rand(4, 2, generator=g)] * K)


@pytest.mark.parametrize("name", sorted(n for n, cls in BALANCERS.items() if cls.weight_sum and n not in
                                        ("learned", "meta")))  # those two need a training context
def test_a_claimed_weight_sum_holds_through_ema_whenever_no_bound_binds(name):
    terms = [TermInfo("pde", "residual", 1.0), TermInfo("bc", "boundary", 1.0), TermInfo("ic", "initial", 1.0)]
    balancer = make_balancer(name)
    balancer.attach(pb.Problem("p", pb.Box(x=(0.0, 1.0), t=(0.0, 1.0)), ["u"],
                               [pb.Residual("pde", lambda p: p.u_t - p.u_xx, points=1)]))
    state = balancer.init(terms)
    total = 3.0  # K, and the sum of the unit initial weights
    opts = balancer.opts
    checked = 0
    for step in range(30):
        weights, state = balancer.update(unequal_stats(step), state, step=step, progress=step / 29)
        inside = bool(((weights > opts.get("min", 0.0)) & (weights < opts.get("max", float("inf")))).all())
        if inside and step > 0:
            assert float(weights.sum()) == pytest.approx(total, rel=1e-9)
            checked += 1
    assert checked > 0
