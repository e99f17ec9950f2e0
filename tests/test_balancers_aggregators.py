"""Gradient aggregators (pinnbal.balancers.aggregators): known answers, the shared balancer checks,
save/load/resume, and two short trainings.  Skipped without torchjd (the optional extra)."""
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torchjd")

import torch  # noqa: E402

import pinnbal  # noqa: E402
from pinnbal.balancers import Stats, TermInfo  # noqa: E402
from pinnbal.balancers import aggregators as agg  # noqa: E402
from pinnbal.errors import OptionError  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
F64 = torch.float64
CLASSES = {cls.name: cls for cls in agg.AGGREGATORS}
NAMES = sorted(CLASSES)
#: pcgrad's projection order is random (per seed and step), so only K = 2 is order-free
ORDER_FREE = [n for n in NAMES if n != "pcgrad"]
#: specs that carry state across steps, besides the defaults of every method
STATEFUL = ["config:momentum=true", "nashmtl:update_weights_every=2"]


def make(spec: str):
    name, _, rest = spec.partition(":")
    cls = CLASSES[name]
    missing = [m for m in cls.requires if importlib.util.find_spec(m) is None]
    if missing:
        pytest.skip(f"{name} needs {missing[0]}")
    opts = dict(item.split("=") for item in rest.split(",") if item)
    return cls(**opts)


def terms(K: int) -> list[TermInfo]:
    return [TermInfo(f"t{k}", "residual" if k == 0 else "boundary", 1.0) for k in range(K)]


def run(balancer, jacobians, state=None, start=0, names=None):
    """Feed J's as the engine does (update, then combine); return [(weights, direction)], state."""
    K = jacobians[0].shape[0]
    state = balancer.init(names or terms(K)) if state is None else state
    out = []
    for i, J in enumerate(jacobians):
        assert "jacobian" in balancer.needs_at(start + i)
        weights, state = balancer.update(Stats(losses=torch.ones(K, dtype=F64), jacobian=J), state,
                                         step=start + i, progress=0.0)
        out.append((weights, balancer.combine(J, weights, state)))
    return out, state


def direction(spec: str, J: torch.Tensor) -> torch.Tensor:
    return run(make(spec), [J])[0][0][1]


def weights(spec: str, J: torch.Tensor) -> torch.Tensor:
    return run(make(spec), [J])[0][0][0]


def random_jacobians(n: int, K: int = 3, P: int = 12, seed: int = 0) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(K, P, generator=g, dtype=F64) * torch.tensor([[1.0], [0.3], [2.0], [0.7], [1.5]][:K],
                                                                       dtype=F64) for _ in range(n)]


# -- known answers --------------------------------------------------------------------------
def test_pcgrad_projects_two_conflicting_gradients_onto_each_others_normal_planes():
    g1, g2 = torch.tensor([1.0, 0.0], dtype=F64), torch.tensor([-0.9, 0.5], dtype=F64)
    J = torch.stack([g1, g2])
    d = direction("pcgrad", J)
    expected = (g1 - g1 @ g2 / (g2 @ g2) * g2) + (g2 - g1 @ g2 / (g1 @ g1) * g1)
    assert torch.allclose(d, expected, atol=1e-12)
    assert (J @ d >= -1e-12).all()


@pytest.mark.parametrize("spec", ["mgda", "upgrad:reg_eps=1e-12", "dualproj:reg_eps=1e-12"])
def test_upgrad_mgda_and_dualproj_directions_do_not_conflict(spec, tol=1e-9):
    g = torch.Generator().manual_seed(1)
    conflicts = 0
    for _ in range(25):
        K = int(torch.randint(2, 6, (1,), generator=g))
        P = K + int(torch.randint(0, 6, (1,), generator=g))
        J = torch.randn(K, P, generator=g, dtype=F64) * torch.randn(K, 1, generator=g, dtype=F64).exp()
        J = J / J.norm()  # the methods are scale-free: ||J||_F = 1 makes the tolerance relative
        conflicts += bool((J @ J.mean(dim=0)).min() < 0)
        d = direction(spec, J)
        assert (J @ d).min() >= -tol, (K, P, (J @ d).tolist())
    assert conflicts >= 5  # the mean direction conflicts often: the check means something


def test_upgrad_default_ridge_bounds_the_conflict_by_reg_eps():
    """With torchjd's reg_eps = 1e-4, J d >= -reg_eps * ||J||_F^2 * w (the ridge), not exactly 0."""
    g = torch.Generator().manual_seed(2)
    for _ in range(20):
        J = torch.randn(4, 6, generator=g, dtype=F64)
        w = weights("upgrad", J)
        d = w @ J
        assert ((J @ d) >= -1e-4 * J.square().sum() * w - 1e-12).all()


def test_upgrad_and_imtl_do_not_depend_on_the_gradient_scale():
    """torchjd alone turns UPGrad into the mean when ||J||_F^2 < 1e-4 and IMTL-G into zeros near 1e30;
    the trace normalisation keeps the method the same at every scale."""
    J = torch.tensor([[1.0, 0.0], [-0.9, 0.5]], dtype=F64)
    for spec in ("upgrad", "imtl", "dualproj", "cagrad", "aligned-mtl", "mgda"):
        reference = weights(spec, J)
        for scale in (1e-6, 1e30):
            assert torch.allclose(weights(spec, J * scale), reference, rtol=1e-6), (spec, scale)
    d = direction("upgrad", J * 1e-3)
    assert (J @ d > 0).all()


def test_mgda_is_the_min_norm_point_of_the_convex_hull():
    # segment from (2, 0) to (0, 1): the closest point to 0 is 0.2 (2, 0) + 0.8 (0, 1) = (0.4, 0.8)
    J = torch.tensor([[2.0, 0.0], [0.0, 1.0]], dtype=F64)
    assert torch.allclose(weights("mgda", J), torch.tensor([0.2, 0.8], dtype=F64), atol=1e-9)
    assert torch.allclose(direction("mgda", J), torch.tensor([0.4, 0.8], dtype=F64), atol=1e-9)
    # segment from (1, 0) to (2, 1): the closest point is the vertex (1, 0)
    J = torch.tensor([[1.0, 0.0], [2.0, 1.0]], dtype=F64)
    assert torch.allclose(direction("mgda", J), torch.tensor([1.0, 0.0], dtype=F64), atol=1e-9)
    # three orthonormal gradients: the centroid
    assert torch.allclose(direction("mgda", torch.eye(3, dtype=F64)), torch.full((3,), 1 / 3, dtype=F64))


@pytest.mark.parametrize("K", [2, 3, 4])
def test_config_direction_has_equal_cosine_with_every_gradient(K):
    for J in random_jacobians(3, K=K, P=9, seed=K):
        d = direction("config", J)
        cos = (J @ d) / J.norm(dim=1) / d.norm()
        assert torch.allclose(cos, cos.mean().expand(K), rtol=1e-9) and cos.min() > 0
        # the two libraries agree (conflictfree computes it; torchjd's ConFIG is an independent check)
        from torchjd.aggregation import ConFIG as TorchjdConFIG
        assert torch.allclose(d, TorchjdConFIG()(J), rtol=1e-9, atol=1e-12)
        # logged weights: effective weights c / ||g_k|| (equal projections on the unit gradients)
        w = weights("config", J)
        assert torch.allclose(w * J.norm(dim=1), (w * J.norm(dim=1)).mean().expand(K), rtol=1e-9)


def test_config_ignores_a_zero_gradient_instead_of_returning_nan():
    J = torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, 0.0], [-0.5, 1.0, 0.0]], dtype=F64)
    d = direction("config", J)
    assert torch.allclose(d, direction("config", J[[0, 2]]))
    assert torch.allclose(direction("config", J[:2]), J[0])  # one gradient left: ConFIG of it is itself


def test_config_momentum_matches_conflictfree_pseudo_momentum_operator():
    pytest.importorskip("conflictfree")
    from conflictfree.grad_operator import ConFIGOperator
    from conflictfree.momentum_operator import PseudoMomentumOperator

    Js = [J.float() for J in random_jacobians(5, K=3, P=7, seed=3)]  # float32: conflictfree's own default path
    reference = PseudoMomentumOperator(num_vectors=3, gradient_operator=ConFIGOperator())
    expected = [reference.calculate_gradient([0, 1, 2], list(J.unbind(0))) for J in Js]
    got = [d for _, d in run(make("config:momentum=true"), Js)[0]]
    for e, d in zip(expected, got):
        assert torch.allclose(d, e, rtol=1e-4, atol=1e-6)


def test_graddrop_is_reproducible_per_seed_and_step_and_matches_torchjd():
    from torchjd.aggregation import GradDrop as TorchjdGradDrop

    J = random_jacobians(1, K=3, P=200, seed=4)[0]
    balancer = make("graddrop:seed=7")
    first = balancer.direction(J, 5)
    assert torch.equal(first, make("graddrop:seed=7").direction(J, 5))
    assert not torch.equal(first, balancer.direction(J, 6))
    assert not torch.equal(first, make("graddrop:seed=8").direction(J, 5))
    with torch.random.fork_rng(devices=[]):  # torchjd draws U from the global generator: seed it the same way
        torch.random.default_generator.manual_seed(agg.step_seed(7, 5))
        expected = TorchjdGradDrop()(J)
    assert torch.allclose(first, expected, rtol=1e-12, atol=1e-12)
    assert torch.allclose(make("graddrop:leak=1").direction(J, 0), J.sum(dim=0))  # full leak: the plain sum
    state_before = torch.get_rng_state()
    run(balancer, [J])
    assert torch.equal(torch.get_rng_state(), state_before)


def test_pcgrad_is_reproducible_and_leaves_the_global_random_state_alone():
    Js = random_jacobians(4, K=4, P=3, seed=5)  # K > P: many conflicts, the random order matters
    before = torch.get_rng_state()
    a = run(make("pcgrad:seed=3"), Js)[0]
    assert torch.equal(torch.get_rng_state(), before)
    b = run(make("pcgrad:seed=3"), Js)[0]
    assert all(torch.equal(x[1], y[1]) for x, y in zip(a, b))


def test_nashmtl_on_orthogonal_gradients_gives_inverse_norm_weights():
    """alpha_k (G alpha)_k = 1 with G = diag(4, 0.25): alpha = (1/2, 2), d = (1, 1); max_norm=1 clips to |d| = 1."""
    J = torch.tensor([[2.0, 0.0], [0.0, 0.5]], dtype=F64)
    assert torch.allclose(weights("nashmtl:max_norm=0", J), torch.tensor([0.5, 2.0], dtype=F64), rtol=1e-3)
    d = direction("nashmtl", J)
    assert torch.allclose(d, torch.tensor([1.0, 1.0], dtype=F64) / 2**0.5, rtol=1e-3)


def test_aligned_mtl_and_cagrad_known_answers():
    J = torch.tensor([[2.0, 0.0], [0.0, 0.5]], dtype=F64)
    # orthogonal rows: the aligned gradients all get the smallest singular value 0.5; mean = (0.25, 0.25)
    assert torch.allclose(direction("aligned-mtl", J), torch.tensor([0.25, 0.25], dtype=F64))
    # c = 0: CAGrad is the mean gradient
    J = random_jacobians(1, K=3, P=5, seed=6)[0]
    assert torch.allclose(direction("cagrad:c=0", J), J.mean(dim=0), atol=1e-9)


def test_signed_coefficients_build_the_direction_and_the_logged_weights_stay_non_negative():
    """Three nearly dependent gradients: IMTL-G's coefficients have mixed signs."""
    from torchjd.aggregation import IMTLG as TorchjdIMTLG

    J = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.7, 0.7, 0.05]], dtype=F64)
    balancer = make("imtl")
    [(w, d)], state = run(balancer, [J])
    assert (state["coef"] < 0).any() and (w >= 0).all()
    assert torch.allclose(d, TorchjdIMTLG()(J))
    assert torch.allclose(d, state["coef"] @ J)
    unit = J / J.norm(dim=1, keepdim=True)
    assert torch.allclose(unit @ d, (unit @ d).mean().expand(3))  # equal projections on the unit gradients
    assert balancer.logged_state == ("coef",)


# -- the checks every balancer shares, on these ---------------------------------------------
@pytest.mark.parametrize("name", NAMES)
def test_interface(name):
    cls = CLASSES[name]
    assert cls.kind == "direction" and "jacobian" in cls.needs and cls.summary
    assert not {"every", "alpha", "min", "max"} & set(cls.options)
    balancer = make(name)
    assert all("jacobian" in balancer.needs_at(step) for step in range(5))
    assert balancer.spec.startswith(name)


@pytest.mark.parametrize("name", NAMES + STATEFUL)
def test_finite_non_negative_weights_and_finite_directions_on_hostile_jacobians(name):
    balancer = make(name)
    state = balancer.init(terms(3))
    g = torch.Generator().manual_seed(0)
    for step, scale in enumerate([1e-30, 1.0, 1e30, 0.0, 1e-8]):
        J = torch.randn(3, 20, generator=g, dtype=F64) * torch.tensor([[1.0], [scale], [1e-3]], dtype=F64)
        stats = Stats(losses=torch.tensor([1.0, scale, 1e-6], dtype=F64), jacobian=J,
                      ntk_traces=J.square().sum(dim=1))
        w, state = balancer.update(stats, state, step=step, progress=step / 5)
        d = balancer.combine(J, w, state)
        assert w.shape == (3,) and torch.isfinite(w).all() and (w >= 0).all(), (scale, w)
        assert d.shape == (20,) and torch.isfinite(d).all(), scale
    zero = torch.zeros(3, 20, dtype=F64)
    w, state = balancer.update(Stats(losses=torch.ones(3, dtype=F64), jacobian=zero), state, step=5, progress=1.0)
    d = balancer.combine(zero, w, state)
    assert torch.isfinite(w).all() and torch.isfinite(d).all()
    if "momentum" not in name:  # momentum keeps moving on a zero gradient
        assert torch.equal(d, torch.zeros(20, dtype=F64))


@pytest.mark.parametrize("name", ORDER_FREE + ["config:momentum=true"])
def test_permuting_the_terms_permutes_the_weights_and_keeps_the_direction(name):
    perm = [2, 0, 1]
    Js = random_jacobians(3, K=3, P=6, seed=8)
    names = terms(3)
    a = run(make(name), Js, names=names)[0]
    b = run(make(name), [J[perm] for J in Js], names=[names[i] for i in perm])[0]
    for (w1, d1), (w2, d2) in zip(a, b):
        assert torch.allclose(w1[perm], w2, rtol=1e-5, atol=1e-8), (w1, w2)
        assert torch.allclose(d1, d2, rtol=1e-5, atol=1e-8)


def test_pcgrad_with_two_terms_is_order_free():
    J = torch.tensor([[1.0, 0.0, 0.3], [-0.9, 0.5, 0.1]], dtype=F64)
    (w1, d1), = run(make("pcgrad"), [J])[0]
    (w2, d2), = run(make("pcgrad"), [J.flip(0)])[0]
    assert torch.allclose(w1, w2.flip(0)) and torch.allclose(d1, d2)


@pytest.mark.parametrize("name", NAMES + STATEFUL)
def test_save_load_mid_sequence_continues_identically(name, tmp_path):
    Js = random_jacobians(6, K=3, P=8, seed=9)
    straight = run(make(name), Js)[0]
    first, state = run(make(name), Js[:3])
    assert all(isinstance(v, torch.Tensor) for v in state.values())
    torch.save(state, tmp_path / "state.pt")
    loaded = torch.load(tmp_path / "state.pt", weights_only=True)
    assert loaded.keys() == state.keys() and all(torch.equal(loaded[k], state[k]) for k in state)
    resumed, _ = run(make(name), Js[3:], state=loaded, start=3)  # a fresh object: nothing hidden in the old one
    for (w1, d1), (w2, d2) in zip(straight, first + resumed):
        assert torch.equal(w1, w2) and torch.equal(d1, d2)


def test_update_never_mutates_the_callers_state():
    J = random_jacobians(1, K=3, P=6)[0]
    for spec in ("config:momentum=true", "nashmtl", "imtl", "graddrop"):
        balancer = make(spec)
        state = balancer.init(terms(3))
        run(balancer, [J])  # warm any caches
        before = {k: v.clone() for k, v in state.items()}
        balancer.update(Stats(losses=torch.ones(3, dtype=F64), jacobian=J), state, step=0, progress=0.0)
        assert all(torch.equal(before[k], state[k]) for k in before), spec


# -- options and missing libraries -------------------------------------------------------------
@pytest.mark.parametrize("spec, fragment", [
    ("cagrad:c=-1", "c=-1.0"), ("aligned-mtl:scale_mode=max", "scale_mode"), ("graddrop:leak=2", "leak"),
    ("config:beta1=1", "beta1"), ("mgda:epsilon=0", "epsilon"), ("nashmtl:optim_niter=0", "optim_niter"),
    ("upgrad:reg_eps=-1", "reg_eps"), ("pcgrad:seed=-1", "seed"), ("upgrad:alpha=0.9", "unknown option 'alpha'"),
])
def test_bad_options_are_one_line_option_errors(spec, fragment):
    with pytest.raises(OptionError, match=fragment):
        make(spec)


@pytest.mark.parametrize("name, library", [("upgrad", "torchjd"), ("cagrad", "cvxpy"), ("config", "conflictfree")])
def test_a_missing_library_is_a_one_line_option_error(name, library, monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(agg.importlib.util, "find_spec", lambda m, *a: None if m == library else real(m, *a))
    with pytest.raises(OptionError) as err:
        CLASSES[name]()
    assert str(err.value) == f"balancer {name!r} needs {library}: pip install 'pinnbal[jd]'"


def test_importing_the_module_imports_no_optional_library():
    code = ("import sys, pinnbal, pinnbal.balancers.aggregators; "
            "assert not {'torchjd', 'conflictfree', 'cvxpy'} & set(sys.modules), sorted(sys.modules)")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)


# -- end to end -------------------------------------------------------------------------------
@pytest.mark.parametrize("cls", [agg.UPGrad, agg.PCGrad])
def test_training_poisson1d_lowers_the_loss(cls):
    run_ = pinnbal.train(str(REPO / "problems" / "poisson1d.py"), balancer=cls(), steps=20, lbfgs=0, width=8,
                         depth=1)
    rows = run_.history
    total = [sum(v for k, v in row.items() if k.startswith("loss/")) for row in rows]
    assert rows[0]["step"] == 0 and rows[-1]["step"] == 19
    assert total[-1] < total[0]
    assert run_.metrics["status"] == "completed"
