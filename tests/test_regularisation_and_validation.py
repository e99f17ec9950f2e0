"""Regularisation terms (pb.L1/L2/ElasticNet), dropout, held-out validation data and early stopping."""
import json
import math

import numpy as np
import pytest
import torch

import pinnbal as pb
from pinnbal.batches import Batches
from pinnbal.cli import main
from pinnbal.train.early_stop import EarlyStopping
from pinnbal.train import TrainConfig, Trainer


def poisson(*extra, data=None):
    terms = [pb.Residual("pde", lambda p: p.u_xx + math.pi**2 * torch.sin(math.pi * p.x), points=32),
             pb.Boundary("ends", value=0.0, points=2), *extra]
    if data is not None:
        terms.append(data)
    return pb.Problem("poisson", pb.Box(x=(0.0, 1.0)), ["u"], terms, reference=lambda p: torch.sin(math.pi * p.x))


def network_weights(trainer):
    return torch.cat([m.weight.reshape(-1) for m in trainer.model.network.modules() if isinstance(m, torch.nn.Linear)])


@pytest.mark.parametrize("term, expected", [
    (pb.L1(), lambda w: w.abs().mean()),
    (pb.L2(), lambda w: w.square().mean()),
    (pb.ElasticNet(l1_ratio=0.25), lambda w: 0.25 * w.abs().mean() + 0.75 * w.square().mean()),
])
def test_penalties_are_means_over_the_weight_matrices_only(term, expected):
    trainer = Trainer(poisson(term), "fixed", TrainConfig(steps=1, lbfgs=0, width=8, depth=2))
    with torch.no_grad():
        for m in trainer.model.network.modules():
            if isinstance(m, torch.nn.Linear):
                m.bias.fill_(100.0)  # biases are not penalised
    value = term.penalty(trainer.model).detach()
    assert float(value) == pytest.approx(float(expected(network_weights(trainer))), rel=1e-6)


def test_an_l2_term_is_balanced_like_any_other_and_shrinks_the_weights():
    loose = pb.train(poisson(), "fixed", steps=150, lbfgs=0, width=16, depth=2, seed=1)
    tight = pb.train(poisson(pb.L2(weight=10.0)), "fixed", steps=150, lbfgs=0, width=16, depth=2, seed=1)
    size = lambda run: float(sum(p.square().sum() for n, p in run.model.named_parameters() if "weight" in n))  # noqa
    assert size(tight) < 0.8 * size(loose)  # 150 Adam steps at lr 5e-3 under a strong L2 pull
    assert "loss/l2" in tight.history[-1] and tight.history[-1]["weight/l2"] == 10.0
    lra = pb.train(poisson(pb.L2(weight=1e-3)), "lra:every=2", steps=6, lbfgs=2, width=8, depth=1)
    assert math.isfinite(lra.metrics["rel_l2"])


def test_bad_elasticnet_ratio_is_a_problem_error():
    with pytest.raises(pb.ProblemError, match="l1_ratio=2"):
        poisson(pb.ElasticNet(l1_ratio=2))


def test_dropout_is_on_for_adam_only_and_predictions_are_deterministic():
    run = pb.train(poisson(), "fixed", steps=20, lbfgs=3, width=16, depth=2, dropout=0.2)
    assert any(isinstance(m, torch.nn.Dropout) for m in run.model.modules())
    x = np.linspace(0, 1, 50)[:, None]
    assert np.array_equal(run.predict(x), run.predict(x))


def test_bad_dropout_is_one_line_exit_2(capsys):
    assert main(["run", "problems/poisson1d.py", "--dropout", "1.5", "--quiet", "--steps", "2"]) == 2
    assert "--dropout 1.5" in capsys.readouterr().err


def test_holdout_splits_observations_into_disjoint_training_and_validation_parts():
    x = np.linspace(0, 1, 20)[:, None]
    data = pb.Data("obs", x=x, values=np.sin(math.pi * x))
    problem = poisson(data=data)
    config = TrainConfig(holdout=0.25)
    train = Batches(problem, config, "cpu", torch.float64, holdout=0.25)
    valid = Batches(problem, config, "cpu", torch.float64, part="validation", holdout=0.25)
    xt, xv = train.items[2][1].numpy().ravel(), valid.items[2][1].numpy().ravel()
    assert len(xt) == 15 and len(xv) == 5 and not set(xt) & set(xv) and sorted(np.r_[xt, xv]) == sorted(x.ravel())
    assert not np.array_equal(train.items[0][1].detach().numpy(), valid.items[0][1].detach().numpy())  # fresh collocation points


def test_early_stopping_keeps_the_best_model_after_patience_runs_out():
    model = torch.nn.Linear(1, 1)
    stopper = EarlyStopping(patience=2)
    for step, score in enumerate([3.0, 2.0, 2.5, 2.6, 1.0]):
        with torch.no_grad():
            model.weight.fill_(score)  # the parameter records which evaluation this is
        stopper.latest = (step, score)
        if stopper.should_stop(step, model):
            break
    assert stopper.stopped_at == 3 and float(model.weight) == 2.0  # best was at step 1, restored


def test_early_stopping_ends_a_run_with_an_event_and_a_validation_column(tmp_path):
    out = tmp_path / "run"
    assert main(["run", "problems/poisson1d.py", "--balancer", "fixed", "--steps", "400", "--lbfgs", "20",
                 "--width", "8", "--depth", "1", "--eval-every", "10", "--early-stop", "1", "--lr", "0.2",
                 "--quiet", "--no-render", "--out", str(out)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["status"] == "completed" and metrics["steps"] < 400 and metrics["lbfgs_iterations"] == 0
    assert "early stop" in metrics["events"][-1]["action"]
    header = (out / "history.csv").read_text().splitlines()[0].split(",")
    assert "val_loss" in header


def test_early_stopping_also_watches_the_second_stage(monkeypatch):
    """Validation scores fall through Adam and rise in the second stage: the stage stops after `patience`
    evaluations without a better one, the best model (the one scored best) comes back, the event names the
    stage; the patience counter starts afresh at the switch."""
    # Adam evaluates at steps 0, 10, 20, 29 (best at 10, two worse after it); then the second stage
    scores = iter([5.0, 4.0, 4.5, 4.6, 4.7, 3.0, 3.1, 3.2, 3.3, 3.4, 3.5, 3.6])
    kept = {}

    def measure(self, model, validation, step):
        self.latest = (step, next(scores))
        kept[step] = {k: v.clone() for k, v in model.state_dict().items()}
        return self.latest[1]

    monkeypatch.setattr(EarlyStopping, "measure", measure)
    run = pb.train("problems/poisson1d.py", "fixed", render=False, steps=30, lbfgs=200, then="lbfgs", width=8, depth=1,
                   log_every=5, eval_every=10, early_stop=3)
    event = run.metrics["events"][-1]
    assert "of lbfgs" in event["event"] and "early stop" in event["action"]
    assert 0 < run.metrics["lbfgs_iterations"] < 200
    # without the fresh patience the stage would have stopped at its first evaluation (4.7: a third worse one)
    best_step = sorted(kept)[5]  # 3.0, the second evaluation of the second stage
    assert best_step >= 30 and len(kept) == 9  # stopped at the third worse evaluation after it
    state = run.model.state_dict()
    assert all(torch.equal(state[k].to(v), v) for k, v in kept[best_step].items())
