"""The batched Jacobian equals the K-pass one, and the engine's combined step equals a plain backward."""
import pytest
import torch

from pinnbal.jacobian import JacobianEngine, jacobian_batched, jacobian_loop


def three_losses():
    torch.manual_seed(1)
    net = torch.nn.Sequential(torch.nn.Linear(2, 16), torch.nn.Tanh(), torch.nn.Linear(16, 1)).double()
    x = torch.rand(64, 2, dtype=torch.float64, requires_grad=True)
    u = net(x)
    (ux,) = torch.autograd.grad(u.sum(), x, create_graph=True)
    losses = torch.stack([(ux[:, :1] - u).square().mean(), u[:8].square().mean(), (u[8:16] - 1).abs().mean()])
    return net, losses


def test_batched_equals_loop():
    net, losses = three_losses()
    params = list(net.parameters())
    J_loop = jacobian_loop(losses, params, retain_graph=True)
    J_batched = jacobian_batched(losses, params)
    assert J_loop.shape == (3, sum(p.numel() for p in params))
    assert torch.allclose(J_loop, J_batched, rtol=1e-10, atol=1e-12)


def test_rows_are_per_term_gradients():
    net, losses = three_losses()
    params = list(net.parameters())
    J = jacobian_loop(losses, params, retain_graph=True)
    w = torch.tensor([0.5, 2.0, 3.0], dtype=torch.float64)
    grads = torch.autograd.grad((w * losses).sum(), params)
    assert torch.allclose(w @ J, torch.cat([g.reshape(-1) for g in grads]))


def test_unused_parameter_gives_zero_column():
    a = torch.tensor(2.0, requires_grad=True)
    unused = torch.tensor(1.0, requires_grad=True)
    losses = torch.stack([a**2, 3 * a])
    J = jacobian_batched(losses, [a, unused], retain_graph=True)
    assert torch.equal(J, torch.tensor([[4.0, 0.0], [3.0, 0.0]]))
    assert torch.equal(jacobian_loop(losses, [a, unused]), J)


def test_auto_takes_the_loop_on_cpu_without_timing():
    net, losses = three_losses()
    engine = JacobianEngine("auto")
    J = engine(losses, list(net.parameters()))
    assert engine.strategy == "loop" and engine.timings == {}
    assert J.shape[0] == 3


def test_measuring_times_both_and_keeps_the_faster():
    net, losses = three_losses()
    engine = JacobianEngine("auto")
    J = engine._measure_and_pick(losses, list(net.parameters()))
    assert set(engine.timings) == {"loop", "batched"}
    assert engine.strategy == min(engine.timings, key=engine.timings.get)
    net2, losses2 = three_losses()  # same seed: the same network and losses
    assert torch.allclose(J, jacobian_loop(losses2, list(net2.parameters())))


def test_unknown_strategy_is_an_option_error():
    from pinnbal.errors import OptionError

    with pytest.raises(OptionError, match="jacobian"):
        JacobianEngine("vmap")


def test_ntk_traces_are_mean_squared_per_point_gradients():
    """r_i = a * x_i with parameter a: dr_i/da = x_i, so the trace per point is mean(x_i^2)."""
    from pinnbal.jacobian import ntk_traces

    a = torch.tensor(1.5, dtype=torch.float64, requires_grad=True)
    x = torch.tensor([[1.0], [2.0], [3.0], [4.0]], dtype=torch.float64)
    r = a * x
    assert ntk_traces([r, 2 * r], [a], points=4).tolist() == pytest.approx([7.5, 30.0])
    assert ntk_traces([r], [a], points=2).tolist() == pytest.approx([2.5])  # a subsample of the first two


def test_each_row_walks_only_its_own_terms_graph():
    """From K separate scalars (as training hands them), row k never runs another term's backward; from a
    stacked (K,) tensor every row would run all of them with zero gradients (a full backward per row)."""
    from pinnbal.batches import evaluate_terms
    from pinnbal.loader import load_problem
    from pinnbal.train import TrainConfig, Trainer

    from conftest import PROBLEMS

    trainer = Trainer(load_problem(PROBLEMS / "burgers.py"), "fixed", TrainConfig(steps=1, lbfgs=0, width=8, depth=1))
    values = evaluate_terms(trainer.model, trainer.batches)
    visits = [0] * len(values.residuals)
    for k, r in enumerate(values.residuals):
        r.register_hook(lambda grad, k=k: visits.__setitem__(k, visits[k] + 1))
    J = jacobian_loop(values.terms, trainer.params, retain_graph=True)
    assert visits == [1, 1, 1]  # one backward through each term's graph in all
    assert torch.equal(J, jacobian_loop(values.losses, trainer.params))  # the same rows, at K times the cost
    assert visits == [4, 4, 4]
