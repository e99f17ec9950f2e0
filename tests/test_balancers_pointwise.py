"""Per-point schemes (rba, sa, causal, rar), compositions, user rules and params=last: known answers."""
import json
import math

import numpy as np
import pytest
import torch

import pinnbal as pb
from pinnbal.balancers import Stats, TermInfo, make_balancer
from pinnbal.balancers.compose import Composite
from pinnbal.cli import main
from pinnbal.errors import OptionError
from pinnbal.train import TrainConfig, Trainer

F64 = torch.float64
SPACE_TIME = pb.Problem("st", pb.Box(x=(0.0, 1.0), t=(0.0, 2.0)), ["u"],
                        [pb.Residual("pde", lambda p: p.u_t - p.u_xx, points=8)])


def one_term(n, kind="residual"):
    return [TermInfo("pde", kind, 1.0, n)]


def stats_for(ell, t=None):
    ell = torch.as_tensor(ell, dtype=F64)
    points = None if t is None else [torch.stack([torch.zeros_like(ell), torch.as_tensor(t, dtype=F64)], 1)]
    return Stats(losses=ell.mean().reshape(1), pointwise=[ell], points=points)


# -- rba -------------------------------------------------------------------------------------------
def test_rba_first_update_is_eta_times_normalised_residual_and_stays_below_its_bound():
    rba = make_balancer("rba:eta=0.1,gamma=0.9")
    state = rba.init(one_term(3))
    ell = torch.tensor([4.0, 1.0, 0.0], dtype=F64)  # |r| = 2, 1, 0
    m = rba.multipliers([ell], [None], state)[0]
    assert m.tolist() == pytest.approx([0.1**2, 0.05**2, 0.0])  # power 2: (lambda r)^2 as in the paper
    for step in range(500):
        _, state = rba.update(stats_for(ell), state, step=step, progress=0.0)
    lam = state["rba/pde"]
    assert lam.tolist() == pytest.approx([1.0, 0.5, 0.0], rel=1e-6)  # fixed point eta/(1-gamma) * |r|/max|r|
    assert float(lam.max()) <= 0.1 / (1 - 0.9) + 1e-12


def test_rba_term_loss_is_the_attention_weighted_mean():
    rba = make_balancer("rba:eta=1,gamma=0,power=1")
    state = rba.init(one_term(2))
    ell = torch.tensor([9.0, 1.0], dtype=F64, requires_grad=True)
    (loss,) = rba.losses([ell], [None], state)
    assert float(loss.detach()) == pytest.approx((1.0 * 9 + (1 / 3) * 1) / 2)
    loss.backward()  # the multipliers are detached: dL/dl_i = m_i / N
    assert ell.grad.tolist() == pytest.approx([0.5, 1 / 6])


# -- sa --------------------------------------------------------------------------------------------
def test_sa_weights_rise_most_where_the_residual_stays_large():
    sa = make_balancer("sa:lr=0.01")
    state = sa.init(one_term(3))
    ell = torch.tensor([1e-6, 1e-2, 1.0], dtype=F64)
    _, state = sa.update(stats_for(ell), state, step=0, progress=0.0)
    # the first bias-corrected Adam step moves every lambda with a positive gradient by exactly lr
    assert state["sa/pde"].tolist() == pytest.approx([1.01] * 3)
    for step in range(1, 300):
        ell = ell * torch.tensor([0.5, 0.9, 1.0], dtype=F64)  # point 0 is solved fast, point 2 never
        _, state = sa.update(stats_for(ell), state, step=step, progress=0.0)
    lam = state["sa/pde"]
    assert lam[0] < lam[1] < lam[2]
    assert float(lam[2]) > 1 + 0.9 * 300 * 0.01  # Adam steps of about lr while its gradient persists


def test_sa_is_a_min_max_game_the_multiplier_is_the_mask():
    sa = make_balancer("sa:q=2,init=3")
    state = sa.init(one_term(2))
    assert sa.multipliers([torch.ones(2)], [None], state)[0].tolist() == [9.0, 9.0]


# -- causal ----------------------------------------------------------------------------------------
def test_causal_slice_weights_follow_the_formula_and_never_increase_in_time():
    causal = make_balancer("causal:eps=0.5,slices=3")
    causal.attach(SPACE_TIME)
    state = causal.init(one_term(6))
    t = torch.tensor([0.1, 0.5, 0.7, 1.2, 1.5, 1.9], dtype=F64)  # slices of [0, 2]: 2 points each
    ell = torch.tensor([1.0, 3.0, 2.0, 2.0, 5.0, 1.0], dtype=F64)
    means, w, *_ = causal.slice_weights(ell, t, 0.5)
    assert means.tolist() == [2.0, 2.0, 3.0]
    assert w.tolist() == pytest.approx([1.0, math.exp(-0.5 * 2), math.exp(-0.5 * 4)])
    (loss,) = causal.losses([ell], [torch.stack([torch.zeros(6, dtype=F64), t], 1)], state)
    assert float(loss) == pytest.approx(float((w * means).mean()))
    g = torch.Generator().manual_seed(0)
    for _ in range(20):  # any losses, any times: weights non-increasing in time
        tt, ee = torch.rand(50, generator=g, dtype=F64) * 2, torch.rand(50, generator=g, dtype=F64) * 10
        w = causal.slice_weights(ee, tt, 1.0)[1]
        assert (w[1:] <= w[:-1]).all()


def test_causal_raises_eps_once_every_slice_is_fitted():
    causal = make_balancer("causal:eps=0.01,growth=10,eps_max=1,delta=0.99,slices=4")
    causal.attach(SPACE_TIME)
    state = causal.init(one_term(4))
    t = [0.1, 0.6, 1.1, 1.6]
    _, state = causal.update(stats_for([10.0, 10.0, 10.0, 10.0], t), state, step=0, progress=0.0)
    assert float(state["causal_eps"]) == 0.01  # min weight exp(-0.01*30) < 0.99: keep eps
    for step in range(1, 4):
        _, state = causal.update(stats_for([1e-4] * 4, t), state, step=step, progress=0.0)
    assert float(state["causal_eps"]) == 1.0  # 0.01 -> 0.1 -> 1, capped at eps_max
    assert 0 < float(state["causal_min"][0]) <= 1


def test_causal_needs_a_time_coordinate():
    with pytest.raises(OptionError, match="no coordinate 'tau'"):
        make_balancer("causal:time=tau").attach(SPACE_TIME)


# -- rar -------------------------------------------------------------------------------------------
def test_rar_draws_only_where_the_residual_is_nonzero_when_c_is_zero():
    rar = make_balancer("rar:k=1,c=0")
    ell = np.zeros(100)
    ell[[3, 50, 77]] = [1.0, 4.0, 9.0]
    chosen = rar.select(ell, 3, np.random.default_rng(0))
    assert sorted(chosen.tolist()) == [3, 50, 77]


def test_rar_density_is_residual_over_mean_plus_c():
    rar = make_balancer("rar:k=1,c=1")
    ell = np.array([0.0, 4.0])  # |r| = 0, 2: p ~ 0/1 + 1, 2/1 + 1 -> 1/4, 3/4
    rng = np.random.default_rng(0)
    picks = [int(rar.select(ell, 1, rng)[0]) for _ in range(4000)]
    assert np.mean(picks) == pytest.approx(0.75, abs=0.03)


def test_rar_moves_the_collocation_points_toward_a_large_residual():
    """u'' = f with a sharp bump at x = 0.8: after a redraw, points crowd around the bump."""
    bump = "lambda p: p.u_xx - 1e3 * torch.exp(-((p.x - 0.8) / 0.02) ** 2)"
    problem = pb.Problem("bump", pb.Box(x=(0.0, 1.0)), ["u"],
                         [pb.Residual("pde", eval(bump, {"torch": torch}), points=400),
                          pb.Boundary("ends", value=0.0, points=2)])
    trainer = Trainer(problem, "rar:every=1,k=2,c=0", TrainConfig(steps=2, lbfgs=0, width=8, depth=1))
    before = trainer.batches.items[0][1].detach().numpy().ravel()
    trainer.resample_by_residual()
    after = trainer.batches.items[0][1].detach().numpy().ravel()
    near = lambda x: np.mean(np.abs(x - 0.8) < 0.05)  # noqa: E731
    # 10% of the box; drawing 400 of 1600 candidates without replacement can put at most ~40% there
    assert near(before) < 0.15 and near(after) > 0.35 and len(after) == len(before)


# -- composition -----------------------------------------------------------------------------------
def test_composition_multiplies_point_weights_and_lets_the_term_method_set_term_weights():
    both = make_balancer("lra:every=1,alpha=0,form=paper+rba:eta=1,gamma=0,power=1")
    assert isinstance(both, Composite) and both.name == "lra+rba" and both.kind == "weights"
    assert make_balancer(both.spec).spec == both.spec  # the saved spec round-trips
    terms = [TermInfo("pde", "residual", 1.0, 2), TermInfo("bc", "boundary", 1.0, 2)]
    state = both.init(terms)
    ell = [torch.tensor([4.0, 1.0], dtype=F64), torch.tensor([1.0, 1.0], dtype=F64)]
    assert [float(L) for L in both.losses(ell, [None, None], state)] == pytest.approx([(4 + 0.5) / 2, 1.0])
    J = torch.tensor([[1.0, -1.0], [0.01, 0.01]], dtype=F64)
    w, state = both.update(Stats(torch.ones(2, dtype=F64), J, pointwise=ell), state, step=0, progress=0.0)
    assert w.tolist() == pytest.approx([1.0, 100.0])  # lra's paper form: max|J_pde| / mean|J_bc|
    assert state["rba/pde"].tolist() == pytest.approx([1.0, 0.5])


@pytest.mark.parametrize("spec, fragment", [
    ("lra+relobralo", "at most one term-level"), ("lra+fixed+rba", "at most one term-level"),
    ("rba+rba", "at most once"), ("lra+rba:eta=oops", "eta='oops'"),
    ("meta:param=poly+rba", "reshapes the pointwise loss"),
])
def test_bad_compositions_are_refused_clearly(spec, fragment):
    with pytest.raises(OptionError, match=fragment):
        make_balancer(spec)


def test_a_plus_inside_a_number_is_not_a_composition():
    assert make_balancer("lra:max=1e+3").opts["max"] == 1000.0


# -- user rules --------------------------------------------------------------------------------------
RULED = '''
import math
import torch
import pinnbal as pb

problem = pb.Problem("ruled", pb.Box(x=(0.0, 1.0)), ["u"], [
    pb.Residual("pde", lambda p: p.u_xx + math.pi**2 * torch.sin(math.pi * p.x), points=32),
    pb.Boundary("ends", value=0.0, points=2)])

def weights(state):
    return {RULE}
'''


def test_rules_follow_the_problem_files_function(tmp_path):
    path = tmp_path / "ruled.py"
    path.write_text(RULED.replace("{RULE}", '{"ends": 10.0 if state["step"] < 5 else 1.0}'))
    run = pb.train(str(path), "rules", steps=10, lbfgs=0, width=8, depth=1, log_every=1)
    ends = [row["weight/ends"] for row in run.history]
    assert ends == [10.0] * 5 + [1.0] * 5 and all(row["weight/pde"] == 1.0 for row in run.history)


@pytest.mark.parametrize("rule, fragment", [
    ('{"walls": 1.0}', "'walls' is not a term"), ('{"ends": -1}', "ends=-1.0"), ('[1, 2]', "return a dict"),
    ('{"ends": 1 / 0}', "ZeroDivisionError"),
])
def test_a_broken_rule_is_one_line_and_exit_2_before_anything_is_written(rule, fragment, tmp_path, capsys):
    path = tmp_path / "ruled.py"
    path.write_text(RULED.replace("{RULE}", rule))
    out = tmp_path / "run"
    assert main(["run", str(path), "--balancer", "rules", "--steps", "2", "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert fragment in err and len(err.splitlines()) == 1 and not out.exists()


def test_a_rule_that_breaks_mid_run_leaves_no_run_directory(tmp_path, capsys):
    """The rule is fine for 3 steps, then returns NaN: one line, exit 2, and the --out made for it is gone."""
    path = tmp_path / "ruled.py"
    path.write_text(RULED.replace("{RULE}", '{"ends": 1.0 if state["step"] < 3 else float("nan")}'))
    out = tmp_path / "run"
    assert main(["run", str(path), "--balancer", "rules", "--steps", "6", "--lbfgs", "0", "--out", str(out),
                 "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert "ends" in err and len(err.splitlines()) == 1 and not out.exists()


def test_rules_without_a_rule_says_how_to_add_one(capsys):
    assert main(["run", "problems/poisson1d.py", "--balancer", "rules", "--steps", "2", "--quiet"]) == 2
    assert "def weights(state)" in capsys.readouterr().err


# -- params=last -------------------------------------------------------------------------------------
def test_params_last_takes_gradients_over_the_output_layer_only():
    problem = pb.load_problem("problems/poisson1d.py")
    trainer = Trainer(problem, "lra:params=last,every=1", TrainConfig(steps=1, lbfgs=0, width=8, depth=2))
    assert sum(p.numel() for p in trainer.jacobian_params) == 8 + 1  # one output: 8 weights and a bias
    seen = {}
    update = trainer.balancer.update

    def spy(stats, *args, **kwargs):
        seen["J"] = stats.jacobian
        return update(stats, *args, **kwargs)

    trainer.balancer.update = spy
    trainer.fit(progress_bar=False)
    assert seen["J"].shape == (2, 9)
    assert all(p.grad is not None for p in trainer.params)  # the step itself still moves every parameter


def test_params_option_is_checked():
    with pytest.raises(OptionError, match="params='first'"):
        make_balancer("gradnorm:params=first")


def test_history_records_plain_losses_even_with_point_weights(tmp_path):
    run = pb.train("problems/poisson1d.py", "rba", steps=3, lbfgs=0, width=8, depth=1, log_every=1)
    plain = pb.train("problems/poisson1d.py", "fixed", steps=1, lbfgs=0, width=8, depth=1, log_every=1)
    assert run.history[0]["loss/pde"] == plain.history[0]["loss/pde"]  # same seed, same model at step 0
    json.dumps(run.history)
