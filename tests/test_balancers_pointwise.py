"""Per-point schemes (rba, sa, causal, rad, rar), compositions, user rules and params=last: known answers."""
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
from pinnbal.train import TrainConfig, Trainer, fit

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


# -- per-point state that follows its points ----------------------------------------------------------
HEAT = "problems/heat_inverse.py"


def point_entries(state):
    """The per-point state entries, ``<prefix>/<term>`` -> tensor (rba, sa and its Adam moments/counts)."""
    return {k: v for k, v in state.items() if "/" in k and k.split("/")[0] in ("rba", "sa", "sa_m", "sa_v", "sa_n")}


def test_resize_point_state_keeps_appended_points_and_restarts_any_other_change():
    from pinnbal.balancers.pointwise import resize_point_state

    old = torch.tensor([0.5, 0.25, 0.125], dtype=F64)
    assert resize_point_state(old, 3, 1.0) is old  # same points: untouched
    assert resize_point_state(old, 5, 1.0).tolist() == [0.5, 0.25, 0.125, 1.0, 1.0]  # appended: new at initial
    assert resize_point_state(old, 2, 1.0).tolist() == [1.0, 1.0]  # fewer points: another set, afresh
    assert resize_point_state(None, 2, 3.0).tolist() == [3.0, 3.0]  # no state yet
    assert old.tolist() == [0.5, 0.25, 0.125]  # never modified in place


@pytest.mark.parametrize("spec", ["rba", "sa", "lra+rba", "learned+sa"])
def test_point_schemes_train_on_a_holdout_batch(spec):
    """Issue 11: 200 declared observations, 160 trained on (holdout 0.2); per-point state of 200 crashed."""
    run = pb.train(HEAT, spec, steps=3, lbfgs=0, holdout=0.2, width=8, depth=1, log_every=1)
    assert [row["step"] for row in run.history] == [0, 1, 2]
    assert all(math.isfinite(row["loss"]) for row in run.history)


@pytest.mark.parametrize("spec", ["rba", "sa", "lra+rba", "learned+sa"])
def test_per_point_state_fits_the_batch_even_when_sized_from_the_declared_counts(spec):
    """The schemes are robust by themselves: state sized from the declared counts (200 observations, not
    the 160 of the batch) is refitted to the batch, and after training every entry has one value per point."""
    problem = pb.load_problem(HEAT)
    trainer = Trainer(problem, spec, TrainConfig(steps=3, lbfgs=0, holdout=0.2, width=8, depth=1))
    sizes = {t.name: len(x) for t, x, _ in trainer.batches.items}
    assert sizes["obs"] == 160
    declared = [TermInfo(t.name, t.kind, t.weight, t.points) for t in problem.terms]  # obs: 200
    trainer.state = trainer.balancer.init(declared)
    fit(trainer, progress_bar=False)
    entries = point_entries(trainer.state)
    assert entries and all(len(v) == sizes[k.split("/")[1]] for k, v in entries.items())
    assert all(torch.isfinite(v).all() for v in entries.values())


def test_rba_and_sa_refit_mismatched_state_appended_kept_shrunk_afresh():
    rba = make_balancer("rba:eta=0.1,gamma=0.5")
    state = rba.init(one_term(200))
    ell = torch.ones(160, dtype=F64)
    assert len(rba.multipliers([ell], [None], state)[0]) == 160
    _, state = rba.update(stats_for(ell), state, step=0, progress=0.0)
    assert state["rba/pde"].tolist() == pytest.approx([0.1] * 160)  # afresh from 0: γ·0 + η·1
    _, state = rba.update(stats_for(torch.ones(170, dtype=F64)), state, step=1, progress=0.0)
    assert state["rba/pde"].tolist() == pytest.approx([0.15] * 160 + [0.1] * 10)  # 10 appended start at 0
    sa = make_balancer("sa:lr=0.01,init=2")
    state = sa.init(one_term(4))
    _, state = sa.update(stats_for(torch.ones(4, dtype=F64)), state, step=0, progress=0.0)
    _, state = sa.update(stats_for(torch.ones(6, dtype=F64)), state, step=1, progress=0.0)
    # kept points: their second Adam step; appended ones: a first step (bias-corrected: exactly lr) from init
    assert state["sa_n/pde"].tolist() == [2, 2, 2, 2, 1, 1]
    assert state["sa/pde"][4:].tolist() == pytest.approx([2.01, 2.01])
    assert state["sa/pde"][:4].tolist() == pytest.approx([2.02] * 4, abs=1e-3)  # about lr again (gradient moved)
    _, state = sa.update(stats_for(torch.ones(3, dtype=F64)), state, step=2, progress=0.0)
    assert state["sa/pde"].tolist() == pytest.approx([2.01] * 3) and state["sa_n/pde"].tolist() == [1, 1, 1]


# -- rad and rar (RAR-D) -----------------------------------------------------------------------------
BUMP = pb.Problem("bump", pb.Box(x=(0.0, 1.0)), ["u"],
                  [pb.Residual("pde", lambda p: p.u_xx - 1e3 * torch.exp(-((p.x - 0.8) / 0.02) ** 2), points=400),
                   pb.Boundary("ends", value=0.0, points=2)])


def near_bump(x):
    return np.mean(np.abs(np.asarray(x).ravel() - 0.8) < 0.05)  # 10% of the box


@pytest.mark.parametrize("name", ["rad", "rar"])
def test_resamplers_draw_only_where_the_residual_is_nonzero_when_c_is_zero(name):
    scheme = make_balancer(f"{name}:k=1,c=0")
    ell = np.zeros(100)
    ell[[3, 50, 77]] = [1.0, 4.0, 9.0]
    assert sorted(scheme.select(ell, 3, np.random.default_rng(0)).tolist()) == [3, 50, 77]
    # more wanted than have a residual: those, the rest uniformly, never a repeat
    picked = scheme.select(ell, 10, np.random.default_rng(0))
    assert len(set(picked.tolist())) == 10 and {3, 50, 77} <= set(picked.tolist())


@pytest.mark.parametrize("name", ["rad", "rar"])
def test_resampling_density_is_residual_over_mean_plus_c(name):
    scheme = make_balancer(f"{name}:k=1,c=1")
    ell = np.array([0.0, 4.0])  # |r| = 0, 2: p ~ 0/1 + 1, 2/1 + 1 -> 1/4, 3/4
    assert scheme.density(ell).tolist() == pytest.approx([0.25, 0.75])
    rng = np.random.default_rng(0)
    picks = [int(scheme.select(ell, 1, rng)[0]) for _ in range(4000)]
    assert np.mean(picks) == pytest.approx(0.75, abs=0.03)


def test_a_density_concentrated_on_a_spike_selects_near_the_spike_more_often_than_uniform():
    """k=1, c=1 over 20000 uniform candidates with a narrow residual spike at 0.3: of 500 drawn, far more
    than the uniform 4% lie within 0.02 of it; p puts ~1/2 of its mass there (mean |r| ≈ c)."""
    rng = np.random.default_rng(7)
    x = rng.random(20_000)
    r = 40.0 * np.exp(-((x - 0.3) / 0.008) ** 2)  # mean |r| ≈ 40·0.008·√π ≈ 0.57
    chosen = make_balancer("rad").select(r**2, 500, rng)
    near = np.mean(np.abs(x[chosen] - 0.3) < 0.02)
    uniform = np.mean(np.abs(x - 0.3) < 0.02)
    assert uniform == pytest.approx(0.04, abs=0.01)
    # binomial(500, 0.04) exceeds 0.25 with negligible probability: the spike draws points
    assert near > 0.25 and len(set(chosen.tolist())) == 500


def test_rad_replaces_every_point_and_keeps_the_count():
    """u'' = f with a sharp bump at x = 0.8: after a redraw, points crowd around the bump."""
    trainer = Trainer(BUMP, "rad:every=1,k=2,c=0,candidates=20", TrainConfig(steps=2, lbfgs=0, width=8, depth=1))
    before = trainer.batches.items[0][1].detach().numpy().ravel()
    ends = trainer.batches.items[1][1].detach().clone()
    trainer.resample_by_residual()
    after = trainer.batches.items[0][1].detach().numpy().ravel()
    assert len(after) == len(before) and not np.isin(after, before).any()
    assert near_bump(before) < 0.15 and near_bump(after) > 0.6
    assert torch.equal(trainer.batches.items[1][1], ends)  # terms=residual: the boundary points stay


def test_rar_grows_by_add_points_per_round_and_keeps_the_old_points():
    trainer = Trainer(BUMP, "rar:every=1,add=40,k=2,c=0,candidates=10", TrainConfig(steps=2, lbfgs=0, width=8, depth=1))
    first = trainer.batches.items[0][1].detach().clone()
    trainer.resample_by_residual()
    grown = trainer.batches.items[0][1].detach().clone()
    trainer.resample_by_residual()
    again = trainer.batches.items[0][1]
    assert [len(first), len(grown), len(again)] == [400, 440, 480]
    assert torch.equal(grown[:400], first) and torch.equal(again[:440], grown)  # kept, first and in order
    assert near_bump(grown[400:].numpy()) > 0.8  # the new points go where the residual is
    assert again.requires_grad and len(trainer.batches.items[1][1]) == 2


def test_rar_default_add_is_a_tenth_of_the_initial_points_and_max_points_caps_it():
    trainer = Trainer(BUMP, "rar:every=1,candidates=2,max_points=470", TrainConfig(steps=2, lbfgs=0, width=8, depth=1))
    counts = []
    for _ in range(3):
        trainer.resample_by_residual()
        counts.append(len(trainer.batches.items[0][1]))
    assert counts == [440, 470, 470]  # 10% of 400 per round (not of the grown batch), capped at 470


def test_rba_state_of_kept_points_survives_rar_growth():
    trainer = Trainer(BUMP, "rba+rar:every=1,add=25,candidates=5", TrainConfig(steps=2, lbfgs=0, width=8, depth=1))
    fit(trainer, progress_bar=False)  # 2 steps; rar redraws at step 1 (after step 0 set the attention)
    lam = trainer.state["rba/pde"]
    assert len(lam) == len(trainer.batches.items[0][1]) == 425 and len(trainer.state["rba/ends"]) == 2
    kept, ends = trainer.state["rba/pde"].clone(), trainer.state["rba/ends"].clone()
    trainer.resample_by_residual()
    lam = trainer.state["rba/pde"]
    assert len(lam) == 450 and torch.equal(lam[:425], kept) and lam[425:].tolist() == [0.0] * 25
    assert torch.equal(trainer.state["rba/ends"], ends)  # a term rar does not touch keeps its state
    assert (kept[:400] > 0).all()  # the original points' attention is the one built from step 0 on


def test_rad_restarts_per_point_state_and_compositions_allow_one_resampler():
    trainer = Trainer(BUMP, "sa+rad:every=1,candidates=2", TrainConfig(steps=1, lbfgs=0, width=8, depth=1))
    fit(trainer, progress_bar=False)
    assert (trainer.state["sa/pde"] != 1.0).all()
    trainer.resample_by_residual()
    assert trainer.state["sa/pde"].tolist() == [1.0] * 400
    with pytest.raises(OptionError, match="at most one resampling scheme"):
        make_balancer("lra+rad+rar")
    with pytest.raises(OptionError, match="add=1.5"):
        make_balancer("rar:add=1.5")
    assert make_balancer("lra+rar").resampler().name == "rar"


def test_a_resumed_run_with_grown_batches_continues_exactly(tmp_path):
    """RAR-D grows the batches every 3 steps; a run stopped after step 4 and resumed from its checkpoint
    (which holds the grown batches and the per-point state) matches an uninterrupted one, L-BFGS included."""
    from interruption import interrupted_run

    from pinnbal.rundir import CHECKPOINT, load_state
    from pinnbal.workflow import resume

    path = "problems/poisson1d.py"
    settings = dict(steps=12, lbfgs=2, width=8, depth=1, log_every=1, eval_every=4, checkpoint_every=4, seed=3)
    spec = "rba+rar:every=3,add=7,candidates=4"
    whole = pb.train(path, spec, out=tmp_path / "whole", render=False, **settings)
    interrupted_run(path, spec, tmp_path / "cut", stop_after=4, settings=settings)
    assert len(load_state(tmp_path / "cut" / CHECKPOINT)["batches"][0]) == 512 + 7  # one round (step 3) done
    resumed = resume(tmp_path / "cut", render=False)
    strip = lambda h: [{k: v for k, v in row.items() if k != "wall_s"} for row in h]  # noqa: E731
    assert strip(resumed.history) == strip(whole.history) and resumed.metrics["rel_l2"] == whole.metrics["rel_l2"]
    a, b = load_state(tmp_path / "whole" / CHECKPOINT), load_state(tmp_path / "cut" / CHECKPOINT)
    assert len(a["batches"][0]) == 512 + 3 * 7  # rounds at 3, 6, 9
    assert all(torch.equal(x, y) for x, y in zip(a["batches"], b["batches"]) if x is not None)
    assert all(torch.equal(a["balancer"][k], b["balancer"][k]) for k in a["balancer"])
    assert len(a["balancer"]["rba/pde"]) == 512 + 3 * 7


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
    fit(trainer, progress_bar=False)
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
