"""The forward derivative engine (pinnbal.forward) against nested autograd (pinnbal.points), in float64.

Every network pinnbal builds (mlp, modified, fourier; every activation; --rwf), periodic coordinates, a
transform with unknowns, 1D/2D/3D inputs, several outputs, derivatives to order 4; a tiny network with
known weights; a user's own module (jvp, or the autograd fallback); which keys a residual reads.
"""
import itertools
import math

import pytest
import torch

import pinnbal as pb
from pinnbal import forward as fw
from pinnbal.nets import ACTIVATIONS, ARCHITECTURES, PINNModel, build_network

TOL = 1e-10  # relative to the larger of 1 and the autograd value's magnitude
NAMES = ["x", "y", "t"]


def model_for(d=2, m=1, arch="mlp", act="tanh", rwf="", periodic=(), transform=None, unknowns=None,
              width=8, depth=2, seed=0):
    box = pb.Box(periodic=list(periodic), **{n: (-1.0 + 0.3 * i, 1.5 + i) for i, n in enumerate(NAMES[:d])})
    problem = pb.Problem("test", box, ["u", "v", "w"][:m], [pb.Residual("pde", lambda p: p.u, points=8)],
                         unknowns=unknowns, transform=transform)
    torch.manual_seed(seed)
    network = build_network(box.features, m, arch=arch, width=width, depth=depth, act=act, rwf=rwf,
                            fourier_features=6)
    return PINNModel(problem, network).double()


def points_in(model, n=12, seed=1):
    low = torch.tensor(model.problem.domain.low, dtype=torch.float64)
    high = torch.tensor(model.problem.domain.high, dtype=torch.float64)
    torch.manual_seed(seed)
    return (low + (high - low) * torch.rand(n, len(low), dtype=torch.float64)).requires_grad_(True)


def up_to_second(d):
    return [k for r in (1, 2) for k in itertools.combinations_with_replacement(range(d), r)]


def relative(got, want) -> float:
    return float((got - want).abs().max()) / max(1.0, float(want.abs().max()))


def worst_error(model, keys, jvp=False, grads=False):
    """The largest relative difference between forward jets and autograd over every key and output; with
    ``grads``, over the parameter gradients of Σ (every jet entry)² too (what the loss's backward takes)."""
    x = points_in(model)
    jet = fw.forward_jets(model, x, keys, jvp=jvp)
    p = model.points(x, "test")
    worst, pairs = 0.0, []
    for key in fw.closure(keys):
        for j in range(len(model.problem.outputs)):
            want = p._derivative(j, key) if key else p.outputs[:, j: j + 1]
            got = jet[key][:, j: j + 1]
            assert got.shape == want.shape
            worst = max(worst, relative(got.detach(), want.detach()))
            pairs.append((got, want))
    if grads:
        params = [q for q in model.parameters() if q.requires_grad]
        sides = [torch.autograd.grad(sum(pair[i].pow(2).sum() for pair in pairs), params) for i in (0, 1)]
        worst = max([worst] + [relative(a, b) for a, b in zip(*sides)])
    return worst


@pytest.mark.parametrize("arch", ARCHITECTURES)
@pytest.mark.parametrize("act", list(ACTIVATIONS))
def test_every_network_and_activation_matches_autograd(arch, act):
    rwf = "on" if act in ("tanh", "gelu", "relu") else ""  # factorised layers on about half the grid
    model = model_for(2, 2, arch, act, rwf)
    assert fw.supports(model) is None
    assert worst_error(model, up_to_second(2) + [(0, 0, 1)], grads=True) <= TOL


@pytest.mark.parametrize("d, periodic", [(1, ()), (2, ("x",)), (3, ()), (3, ("x", "y"))])
def test_dimensions_and_periodic_coordinates(d, periodic):
    model = model_for(d, 3, "fourier" if d == 3 else "mlp", "sin", periodic=periodic)
    assert worst_error(model, up_to_second(d), grads=True) <= TOL


def test_fourth_order_and_mixed_third_order():
    assert worst_error(model_for(1, 1, act="tanh", depth=3), [(0, 0, 0, 0)]) <= TOL
    for act in ("silu", "gelu", "sin"):
        assert worst_error(model_for(2, 1, "modified", act), [(0, 0, 1), (1, 1, 1)]) <= TOL, act


def test_transform_with_unknowns_and_its_gradients():
    """Outputs through a hard-constraint transform that mixes coordinates, outputs and an unknown; the loss's
    gradients by every parameter (the unknown included) equal autograd's."""
    def transform(p, u):
        return torch.cat([p.x * (1 - p.y) * u[:, :1] + p.k * torch.sin(p.y), u[:, 1:] * u[:, :1] + p.x ** 2], 1)

    model = model_for(2, 2, "modified", "tanh", rwf="on", transform=transform, unknowns={"k": 0.7})
    assert worst_error(model, up_to_second(2)) <= TOL
    x = points_in(model)
    eager = fw.forward_jets(model, x, [(0, 1), (1, 1)])
    by_jvp = fw.forward_jets(model, x, [(0, 1), (1, 1)], compilable=True)  # T by jvp, as compiled
    with torch.no_grad():  # scoring candidate points: no graph, T's derivatives all the same
        scored = fw.forward_jets(model, x.detach(), [(0, 1), (1, 1)])
    assert set(eager) == set(by_jvp) == set(scored) == {(), (0,), (1,), (0, 1), (1, 1)}
    for key in eager:
        assert relative(by_jvp[key].detach(), eager[key].detach()) <= TOL
        assert relative(scored[key], eager[key].detach()) <= TOL and not scored[key].requires_grad

    def residual(p):
        return p.u_xx + p.v * p.u_y - p.k * p.v_yy + p.u_xy

    x = points_in(model)
    keys = fw.probe_keys(model, residual, x)
    grads = [torch.autograd.grad(residual(q).pow(2).mean(), list(model.parameters()))
             for q in (model.points(x, "a"), fw.forward_points(model, x, "f", keys))]
    assert len(grads[0]) == len(list(model.parameters())) and any("k" in n for n, _ in model.named_parameters())
    for a, b in zip(*grads):
        assert float((a - b).abs().max()) <= TOL * max(1.0, float(a.abs().max()))


def test_tiny_network_with_known_weights():
    """u = a tanh(w x̂ + b), x̂ = (x − c)/h: u' = a s (1 − τ²), u'' = −2 a s² τ (1 − τ²),
    u''' = a s³ (1 − τ²)(6τ² − 2), with s = w/h and τ = tanh(w x̂ + b)."""
    problem = pb.Problem("tiny", pb.Box(x=(1.0, 5.0)), ["u"], [pb.Residual("pde", lambda p: p.u, points=8)])
    model = PINNModel(problem, build_network(1, 1, width=1, depth=1)).double()
    a, w, b, c, h = 1.5, 0.8, -0.3, 3.0, 2.0
    with torch.no_grad():
        first, last = model.network.layers[0], model.network.layers[2]
        first.weight.fill_(w), first.bias.fill_(b), last.weight.fill_(a), last.bias.fill_(0.0)
    x = torch.linspace(1.0, 5.0, 9, dtype=torch.float64)[:, None]
    jet = fw.forward_jets(model, x, [(0, 0, 0)])
    tau, s = torch.tanh(w * (x - c) / h + b), w / h
    want = {(): a * tau, (0,): a * s * (1 - tau**2), (0, 0): -2 * a * s**2 * tau * (1 - tau**2),
            (0, 0, 0): a * s**3 * (1 - tau**2) * (6 * tau**2 - 2)}
    for key, value in want.items():
        assert torch.allclose(jet[key], value, rtol=0, atol=1e-14), key


class Squares(torch.nn.Module):
    """A user's own network: no closed-form rule for it."""

    def __init__(self):
        super().__init__()
        self.inner, self.outer = torch.nn.Linear(2, 6), torch.nn.Linear(6, 2)

    def forward(self, z):
        return self.outer(torch.tanh(self.inner(z)) ** 2)


def test_a_custom_module_goes_through_jvp_or_autograd():
    problem = pb.Problem("own", pb.Box(x=(0.0, 1.0), t=(0.0, 2.0)), ["u", "v"],
                         [pb.Residual("pde", lambda p: p.u, points=8)])
    torch.manual_seed(0)
    model = PINNModel(problem, Squares()).double()
    assert "Squares" in fw.supports(model) and fw.supports(model, jvp=True) is None
    assert worst_error(model, up_to_second(2), jvp=True) <= TOL
    with pytest.raises(ValueError, match="Squares"):
        fw.forward_jets(model, points_in(model), [(0,)])
    x = points_in(model)
    q, p = fw.forward_points(model, x, "f", {(0, (0, 0))}), model.points(x, "a")  # no jvp: plain autograd
    assert torch.allclose(q.u_xx + q.v_t, p.u_xx + p.v_t, rtol=0, atol=1e-14)
    with pytest.raises(fw.NotForward, match="Squares"):
        fw.forward_points(model, x, "f", {(0, (0, 0))}, strict=True).u_xx  # noqa: B018


def test_a_key_not_taken_forward_falls_back_to_autograd():
    model = model_for(2, 1, "mlp", "tanh", transform=lambda p, u: p.y * u + p.x)
    x = points_in(model)
    q, p = fw.forward_points(model, x, "f", {(0, (0, 0))}), model.points(x, "a")
    assert q.u_xx is q.u_xx
    for name in ("u_xx", "u_xxy", "u_yy"):
        assert relative(getattr(q, name).detach(), getattr(p, name).detach()) <= TOL, name
    assert fw.missed(q) == {(0, (0, 0, 1)), (0, (1, 1)), (0, (1,))}  # u_yy needs u_y first
    with pytest.raises(fw.NotForward, match=r"\(1, 1\)"):
        fw.forward_points(model, x, "f", {(0, (0, 0))}, strict=True).u_yy  # noqa: B018


def test_probing_finds_exactly_the_keys_read():
    model = model_for(3, 3)
    x = points_in(model)

    def residual(p):
        return p.u_t + p.u * p.u_x - p.d("v", "y", "x") + p.w + p.x * p.v_tt

    assert fw.probe_keys(model, residual, x) == {(0, (2,)), (0, (0,)), (1, (0, 1)), (1, (2, 2))}
    assert fw.probe_keys(model, lambda p: p.u + p.v * p.x, x) == frozenset()
    terms = [pb.Residual("momentum_x", lambda p: p.u * p.u_x + p.v * p.u_y + p.P_x - (p.u_xx + p.u_yy) / 20),
             pb.Residual("momentum_y", lambda p: p.u * p.v_x + p.v * p.v_y + p.P_y - (p.v_xx + p.v_yy) / 20),
             pb.Residual("continuity", lambda p: p.u_x + p.v_y)]
    ns = pb.Problem("ns", pb.Box(x=(-0.5, 1.0), y=(-0.5, 1.5)), ["u", "v", "P"], terms)
    model = PINNModel(ns, build_network(2, 3, width=8, depth=1)).double()
    keys = fw.term_keys(model, ns.terms, points_in(model))
    second = {(j, k) for j in (0, 1) for k in ((0, 0), (1, 1))}
    assert keys == {(j, (i,)) for j in range(3) for i in range(2)} | second


def test_dropout_while_training_uses_one_mask_for_every_derivative():
    problem = pb.Problem("drop", pb.Box(x=(0.0, 1.0), t=(0.0, 1.0)), ["u"],
                         [pb.Residual("pde", lambda p: p.u, points=8)])
    torch.manual_seed(0)
    model = PINNModel(problem, build_network(2, 1, width=8, depth=2, dropout=0.3)).double().train()
    x = points_in(model)
    burgers = lambda p: p.u_t + p.u * p.u_x - 0.01 * p.u_xx  # noqa: E731
    keys = fw.probe_keys(model, burgers, x)
    torch.manual_seed(7)
    want = burgers(model.points(x, "a"))
    torch.manual_seed(7)
    got = burgers(fw.forward_points(model, x, "f", keys))
    assert relative(got.detach(), want.detach()) <= TOL


def test_faa_di_bruno_and_leibniz_coefficients():
    assert fw.faa_di_bruno((0, 0)) == ((1, ((0, 0),)), (1, ((0,), (0,))))
    assert fw.faa_di_bruno((0, 0, 0)) == ((1, ((0, 0, 0),)), (3, ((0,), (0, 0))), (1, ((0,), (0,), (0,))))
    bell = [sum(c for c, _ in fw.faa_di_bruno(tuple(range(n)))) for n in range(1, 6)]
    assert bell == [1, 2, 5, 15, 52]
    assert sorted(fw.leibniz((0, 1))) == [(1, (), (0, 1)), (1, (0,), (1,)), (1, (0, 1), ()), (1, (1,), (0,))]
    assert fw.closure([(0, 1)]) == ((), (0,), (1,), (0, 1))


@pytest.mark.parametrize("act", list(ACTIVATIONS))
def test_activation_derivatives_to_order_five(act):
    z = torch.linspace(-2.5, 2.5, 11, dtype=torch.float64).requires_grad_(True)
    module = build_network(1, 1, width=1, depth=1, act=act).layers[1]
    sigma = fw._activation(module)(z, 5)
    value = module(z)
    for m, got in enumerate([sigma.value] + [sigma.d(m) for m in range(1, 6)]):
        if m:
            (value,) = torch.autograd.grad(value.sum(), z, create_graph=True, allow_unused=True)
            value = torch.zeros_like(z) if value is None else value
        assert torch.allclose(torch.zeros_like(z) if got is None else got, value, rtol=1e-12, atol=1e-12), (act, m)
        if m == 1:
            assert torch.allclose(sigma.first(3 * z), 3 * z * value, rtol=1e-14, atol=1e-14)


def test_a_compiled_loss_that_cannot_be_forward_runs_eagerly_with_a_reason():
    problem = pb.Problem("own", pb.Box(x=(0.0, 1.0), t=(0.0, 2.0)), ["u", "v"],
                         [pb.Residual("pde", lambda p: p.u_xx + p.v, points=8)])
    torch.manual_seed(0)
    model = PINNModel(problem, Squares()).double()
    x = points_in(model)
    run = fw.compiled_batch_losses(model, problem.terms, {(0, (0, 0))})
    (r, ell), = run(x, [None])
    assert run.reason and "Squares" in run.reason
    assert torch.allclose(r, problem.terms[0].residual(model.points(x, "a"), None), rtol=0, atol=1e-14)


@pytest.mark.parametrize("outputs", [["u"], ["u", "v", "w"]])
def test_the_whole_loss_compiles_as_one_graph_with_one_backward(outputs):
    """Dynamo captures the residual, the jets and the transform in one graph (fullgraph: no break), AOT
    autograd makes its single backward; ``aot_eager`` skips code generation, which keeps the test short.
    The output layer (1 or 3 outputs) takes the compiled path's product-and-sum rule; the points get no
    gradient (none is needed)."""
    problem = pb.Problem("burgers", pb.Box(x=(-1.0, 1.0), t=(0.0, 1.0)), outputs,
                         [pb.Residual("pde", lambda p: p.u_t + p.u * p.u_x - 0.01 * p.u_xx + p.d(outputs[-1], "t"),
                                      points=8)],
                         transform=lambda p, u: p.t * u - torch.sin(math.pi * p.x))
    torch.manual_seed(0)
    model = PINNModel(problem, build_network(2, len(outputs), width=8, depth=2)).double()
    x = points_in(model)
    keys = fw.term_keys(model, problem.terms, x)
    run = fw.compiled_batch_losses(model, problem.terms, keys, backend="aot_eager", fullgraph=True)
    (r, ell), = run(x, [None])
    assert run.reason is None, run.reason
    assert run.compile_seconds > 0
    params = list(model.parameters())
    assert torch.autograd.grad(ell.mean(), x, retain_graph=True, allow_unused=True) == (None,)
    got = torch.autograd.grad(ell.mean(), params)
    want_r = problem.terms[0].residual(model.points(x, "a"), None)
    want = torch.autograd.grad(want_r.pow(2).mean(dim=1).mean(), params)
    assert relative(r.detach(), want_r.detach()) <= TOL
    assert max(relative(a, b) for a, b in zip(got, want)) <= TOL


def test_a_neumann_term_reads_normals_and_its_keys_go_forward():
    """p.u_n on boundary points (normals from the domain) through probing and ForwardPoints alike."""
    import numpy as np

    problem = pb.Problem("neumann", pb.Box(x=(0.0, 1.0), y=(0.0, 2.0)), ["u"],
                         [pb.Residual("pde", lambda p: p.u_xx + p.u_yy, points=8),
                          pb.Boundary("walls", residual=lambda p: p.u_n + p.u, points=16)])
    torch.manual_seed(0)
    model = PINNModel(problem, build_network(2, 1, width=8, depth=2)).double()
    term = problem.terms[1]
    x, _ = term.sample(problem, np.random.default_rng(0), "uniform")
    x = torch.as_tensor(x, dtype=torch.float64).requires_grad_(True)
    assert fw.term_keys(model, [term], x) == {(0, (0,)), (0, (1,))}
    run = fw.batch_losses(model, [term], fw.term_keys(model, [term], x))
    (r, _), = run(x, [None])
    want = term.residual(model.points(x, "a", on_boundary=True), None)
    assert relative(r.detach(), want.detach()) <= TOL


@pytest.mark.parametrize("act", ["tanh", "silu", "gelu"])
def test_per_point_gradients_and_a_double_backward_work_eagerly(act):
    """What NTK traces (a vmapped backward) and meta-gradient balancers (a double backward) take from the
    residuals: the same from the forward jets as from autograd."""
    model = model_for(2, 1, "mlp", act, rwf="on", transform=lambda p, u: p.y * u + p.x)
    x = points_in(model)
    burgers = lambda p: p.u_y + p.u * p.u_x - 0.01 * p.u_xx  # noqa: E731
    keys = fw.probe_keys(model, burgers, x)
    params = list(model.parameters())
    sides = []
    for q in (model.points(x, "a"), fw.forward_points(model, x, "f", keys)):
        r = burgers(q)[:, 0]
        rows = torch.autograd.grad(r[:4], params, torch.eye(4, dtype=r.dtype), is_grads_batched=True, retain_graph=True)
        g = torch.autograd.grad(r.pow(2).mean(), params, create_graph=True)
        hv = torch.autograd.grad(sum((gi * gi).sum() for gi in g), params)
        sides.append(rows + hv)
    assert max(relative(a, b) for a, b in zip(*sides)) <= TOL
