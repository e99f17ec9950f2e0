"""Loss-based balancers (dwa, softadapt, relobralo, rlw, resnorm, schedule, performance):
known answers, option errors, term-order invariance, resumable state and a property test."""
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from pinnbal.balancers import parse_spec
from pinnbal.balancers.base import Stats, TermInfo
from pinnbal.balancers.dwa import DWA
from pinnbal.balancers.performance import Performance
from pinnbal.balancers.relobralo import ReLoBRaLo
from pinnbal.balancers.resnorm import ResNorm
from pinnbal.balancers.rlw import RLW
from pinnbal.balancers.schedule import Schedule
from pinnbal.balancers.softadapt import SoftAdapt
from pinnbal.errors import OptionError

TERMS = [TermInfo("pde", "residual", 1.0), TermInfo("ic", "initial", 1.0)]
THREE = TERMS + [TermInfo("bc", "boundary", 1.0)]

#: every class, configured so that its state and options matter
FACTORIES = {
    "dwa": lambda: DWA(T="2.0"),
    "softadapt": lambda: SoftAdapt(beta="0.5"),
    "softadapt-raw-weighted": lambda: SoftAdapt(normalized="false", loss_weighted="true"),
    "relobralo": lambda: ReLoBRaLo(rho="0.5", lookback="0.9", seed="3"),
    "rlw": lambda: RLW(seed="1"),
    "resnorm": lambda: ResNorm(lr="0.1"),
    "schedule": lambda: Schedule(**{"ic": "100>1", "pde": "0.1>1", "shape": "cosine"}),
    "schedule-trigger": lambda: Schedule(**{"ic": "100>1", "trigger": "ic<1e-3", "span": "4"}),
    "performance": lambda: Performance(**{"ic": "<1e-4", "pde": "<1e-2", "every": "2"}),
    "dwa-every-2": lambda: DWA(every="2", alpha="0.5"),
}
#: the same classes with no options at all (what `--balancer NAME` builds)
DEFAULTS = [DWA, SoftAdapt, ReLoBRaLo, RLW, ResNorm, Schedule, Performance]


def run(balancer, sequence, terms=TERMS, state=None, start=0, steps=None):
    """Feed loss vectors; return the list of weight vectors and the final state."""
    state = balancer.init(terms) if state is None else state
    out = []
    for i, losses in enumerate(sequence):
        step = start + i
        w, state = balancer.update(Stats(torch.as_tensor(losses, dtype=torch.float64)), state,
                                   step=step, progress=step / (steps or len(sequence)))
        out.append(w.clone())
    return out, state


def softmax_k(x):
    e = [math.exp(v - max(x)) for v in x]
    return [len(x) * v / sum(e) for v in e]


# -- known answers -----------------------------------------------------------------------

def test_dwa_matches_its_formula_on_a_hand_computed_example():
    terms = [TermInfo("pde", "residual", 1.0), TermInfo("ic", "initial", 3.0)]
    ws, _ = run(DWA(T=2.0), [[2.0, 1.0], [1.0, 1.0], [5.0, 7.0], [1.0, 1.0]], terms)
    assert ws[0].tolist() == ws[1].tolist() == [1.0, 3.0]  # fewer than two previous losses
    assert ws[2].tolist() == pytest.approx(softmax_k([0.5 / 2, 1.0 / 2]), rel=1e-12)  # r = L(1)/L(0)
    assert ws[3].tolist() == pytest.approx(softmax_k([5.0 / 2, 7.0 / 2]), rel=1e-12)  # r = L(2)/L(1)


def test_softadapt_matches_its_formula():
    seq = [[2.0, 4.0], [1.0, 4.0]]
    assert run(SoftAdapt(), seq)[0][0].tolist() == [1.0, 1.0]
    assert run(SoftAdapt(), seq)[0][1].tolist() == pytest.approx(softmax_k([0.1 * -0.5, 0.0]))
    assert run(SoftAdapt(normalized=False), seq)[0][1].tolist() == pytest.approx(softmax_k([0.1 * -1.0, 0.0]))
    weighted = run(SoftAdapt(loss_weighted=True, beta=2.0), seq)[0][1]
    expected = [1.0 * math.exp(2.0 * -0.5), 4.0 * math.exp(0.0)]
    assert weighted.tolist() == pytest.approx([2 * v / sum(expected) for v in expected])


@pytest.mark.parametrize("rho, hist", [("1", "previous"), ("0", "initial-losses")])
def test_relobralo_matches_its_formula_for_each_lookback_draw(rho, hist):
    seq = [[1.0, 2.0], [0.5, 2.0], [0.5, 1.0]]
    ws, _ = run(ReLoBRaLo(lookback=0.75, tau=1.0, rho=rho), seq)
    assert ws[0].tolist() == [1.0, 1.0]
    bal_0 = softmax_k([0.5, 1.0])  # L(1)/L(0) and L(1)/L(t-1) coincide at t = 1
    lam1 = [0.75 * ((w if hist == "previous" else b)) + 0.25 * b for w, b in zip([1.0, 1.0], bal_0)]
    assert ws[1].tolist() == pytest.approx(lam1)
    bal_first, bal_prev = softmax_k([0.5, 0.5]), softmax_k([1.0, 0.5])
    hist2 = lam1 if hist == "previous" else bal_first
    assert ws[2].tolist() == pytest.approx([0.75 * h + 0.25 * b for h, b in zip(hist2, bal_prev)])


@pytest.mark.parametrize("make", [DWA, SoftAdapt, ReLoBRaLo, lambda: SoftAdapt(normalized="false", beta="1"),
                                  lambda: SoftAdapt(loss_weighted="true")])
def test_weight_moves_to_the_term_whose_loss_falls_slowest(make):
    ws, _ = run(make(), [[0.5 ** t, 1.0] for t in range(30)])
    assert float(ws[-1][1]) > float(ws[-1][0])
    assert float(ws[-1].sum()) == pytest.approx(2.0, abs=1e-3)  # sums to K, up to the min=1e-3 bound


def test_rlw_is_reproducible_differs_across_steps_and_sums_to_k():
    a, _ = run(RLW(seed=7, min=0.0), [[1.0, 1.0, 1.0]] * 20, THREE)
    b, _ = run(RLW(seed=7, min=0.0), [[5.0, 0.0, 1e30]] * 20, THREE)  # losses are ignored
    c, _ = run(RLW(seed=8, min=0.0), [[1.0, 1.0, 1.0]] * 20, THREE)
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    assert not torch.equal(a[0], c[0])
    assert len({tuple(w.tolist()) for w in a}) == 20
    assert all(float(w.sum()) == pytest.approx(3.0) and (w > 0).all() for w in a)
    assert max(float(w.max()) for w in a) > 1.5  # really random, not near-uniform


def test_resnorm_moves_weighted_losses_toward_each_other():
    seq = [[1000.0, 1.0]] * 300
    ws, _ = run(ResNorm(), seq)
    gaps = [float(w[0] * 1000 / w[1]) for w in ws]
    assert all(b < a for a, b in zip(gaps, gaps[1:]))
    assert gaps[-1] < 100
    assert all(float(w.sum()) == pytest.approx(2.0) for w in ws)
    ws, _ = run(ResNorm(lr=0.1), seq)
    assert 0.8 < float(ws[-1][0] * 1000 / ws[-1][1]) < 1.25  # balanced: w_k L_k equal


@pytest.mark.parametrize("shape, formula", [
    ("linear", lambda s: 100 + (1 - 100) * s),
    ("exponential", lambda s: 100 * (1 / 100) ** s),
    ("cosine", lambda s: 1 + (100 - 1) * (1 + math.cos(math.pi * s)) / 2),
    ("step", lambda s: 100.0 if s < 0.3 else 1.0),
])
def test_schedule_equals_its_formula_at_given_progress(shape, formula):
    sched = Schedule(**{"ic": "100>1", "shape": shape, "at": "0.3"})
    terms = [TermInfo("pde", "residual", 2.0), TermInfo("ic", "initial", 5.0)]
    state = sched.init(terms)
    for step, s in enumerate([0.0, 0.1, 0.25, 0.3, 0.5, 0.75, 1.0]):
        w, state = sched.update(Stats(torch.ones(2)), state, step=step, progress=s)
        assert float(w[0]) == 2.0  # not named: keeps its initial weight
        assert float(w[1]) == pytest.approx(formula(s), rel=1e-12)


def test_schedule_trigger_starts_the_ramp_at_the_step_the_loss_crosses():
    sched = Schedule(**{"ic": "100>1", "trigger": "ic<1e-3", "span": "10"})
    ic = [1.0, 0.1, 0.01, 0.0009, 1.0] + [1.0] * 12  # crosses at step 3, then rises again
    ws, state = run(sched, [[1.0, v] for v in ic], steps=1000)
    assert [float(w[1]) for w in ws[:4]] == [100.0] * 4
    assert int(state["trigger_step"]) == 3
    for step in range(3, len(ic)):
        assert float(ws[step][1]) == pytest.approx(100 - 99 * min((step - 3) / 10, 1.0))
    never, state = run(sched, [[1.0, 1.0]] * 5, steps=5)  # progress reaches 0.8: irrelevant without a trigger
    assert [float(w[1]) for w in never] == [100.0] * 5 and int(state["trigger_step"]) == -1
    stepped, _ = run(Schedule(ic="100>1", trigger="ic<1e-3", shape="step", at="0"), [[1.0, v] for v in ic[:5]])
    assert [float(w[1]) for w in stepped] == [100.0, 100.0, 100.0, 1.0, 1.0]


def test_performance_raises_missing_and_lowers_met_terms_within_floor_and_bounds():
    perf = Performance(**{"ic": "<1e-4", "pde": "<1e-2"})
    losses = [1e-3, 1.0, 5.0]  # pde meets its target, ic misses it, bc has none
    ws, _ = run(perf, [losses] * 100, THREE)
    assert ws[0].tolist() == pytest.approx([0.95, 1.1, 1.0])
    assert ws[2].tolist() == pytest.approx([0.95 ** 3, 1.1 ** 3, 1.0])
    assert ws[-1].tolist() == pytest.approx([0.1, 1000.0, 1.0])  # floor 0.1 x initial; max 1e3
    smooth, _ = run(Performance(ic="<1e-4", alpha=0.5), [losses], THREE)
    assert float(smooth[0][1]) == pytest.approx(0.5 + 0.5 * 1.1)


@pytest.mark.parametrize("opts", [{"ic": "<1e-4"}, {"ic": "<=1e-4"}, {"ic<": "1e-4"}, {"ic": "1e-4"}])
def test_performance_target_spellings_agree(opts):
    perf = Performance(**opts)
    assert perf.targets == {"ic": 1e-4}
    again = Performance(**parse_spec(perf.spec)[1])
    assert again.spec == perf.spec


# -- options -------------------------------------------------------------------------------

@pytest.mark.parametrize("make, fragment", [
    (lambda: Schedule(icc="100>1"), "no term named 'icc'"),
    (lambda: Schedule(ic="1>2", trigger="pdee<1"), "no term named 'pdee'"),
    (lambda: Performance(**{"walls": "<1e-4"}), "no term named 'walls'"),
])
def test_unknown_term_names_are_one_line_option_errors_at_init(make, fragment):
    balancer = make()
    with pytest.raises(OptionError, match=fragment) as info:
        balancer.init(TERMS)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("make, fragment", [
    (lambda: Schedule(ic="abc"), "neither an option"), (lambda: Schedule(shap="cosine"), "neither an option"),
    (lambda: Schedule(ic="1>"), "ic='1>'"), (lambda: Schedule(ic="-1>2"), "ic='-1>2'"),
    (lambda: Schedule(shape="spline"), "shape"), (lambda: Schedule(ic="0>1", shape="exponential"), "> 0"),
    (lambda: Schedule(trigger="ic"), "trigger"), (lambda: Schedule(trigger="ic<x"), "trigger"),
    (lambda: Schedule(at="2"), "at"), (lambda: Performance(ic="<x"), "neither an option"),
    (lambda: Performance(up="0.5"), "up"), (lambda: DWA(T="0"), "T=0"), (lambda: DWA(tau="1"), "unknown option"),
    (lambda: ReLoBRaLo(rho="2"), "rho"), (lambda: ReLoBRaLo(tau="0"), "tau"), (lambda: ResNorm(lr="0"), "lr"),
    (lambda: RLW(seed="x"), "seed"), (lambda: SoftAdapt(normalized="maybe"), "normalized"),
])
def test_bad_options_are_option_errors(make, fragment):
    with pytest.raises(OptionError, match=fragment) as info:
        make()
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("key", sorted(FACTORIES))
def test_spec_round_trips(key):
    balancer = FACTORIES[key]()
    name, opts = parse_spec(balancer.spec)
    assert name == balancer.name
    assert type(balancer)(**opts).spec == balancer.spec


# -- shared contract -----------------------------------------------------------------------

SEQUENCE = [[1.0, 2.0, 1e-6], [0.5, 1.9, 1e-30], [0.2, 1.8, 1e30], [0.0, 1e-4, 0.0], [0.1, 1e-5, 1e-8],
            [0.05, 2e-5, 3.0], [0.01, 1e-3, 2.0], [1e-5, 1e-3, 1.0], [1e-3, 1e-6, 0.5], [2e-3, 1e-6, 0.1]]


@pytest.mark.parametrize("key", sorted(FACTORIES))
def test_save_and_load_mid_sequence_continues_identically(key, tmp_path):
    terms = THREE
    straight, _ = run(FACTORIES[key](), SEQUENCE, terms, steps=10)
    first, state = run(FACTORIES[key](), SEQUENCE[:4], terms, steps=10)
    assert all(isinstance(v, torch.Tensor) for v in state.values())
    torch.save(state, tmp_path / "state.pt")
    state = torch.load(tmp_path / "state.pt", weights_only=True)
    snapshot = {k: v.clone() for k, v in state.items()}
    rest, _ = run(FACTORIES[key](), SEQUENCE[4:], terms, state=state, start=4, steps=10)
    assert all(torch.equal(a, b) for a, b in zip(straight, first + rest))
    assert state.keys() == snapshot.keys() and all(torch.equal(state[k], snapshot[k]) for k in state)  # not mutated


@pytest.mark.parametrize("key", sorted(k for k in FACTORIES if not k.startswith("rlw")))
def test_permuting_terms_permutes_weights(key):
    forward, _ = run(FACTORIES[key](), SEQUENCE, THREE)
    backward, _ = run(FACTORIES[key](), [s[::-1] for s in SEQUENCE], THREE[::-1])
    for a, b in zip(forward, backward):
        assert torch.allclose(a, b.flip(0), rtol=1e-12, atol=0)


@pytest.mark.parametrize("cls", DEFAULTS, ids=lambda c: c.name)
def test_defaults_give_finite_non_negative_weights_on_hostile_inputs(cls):
    for scale in [1e-30, 1.0, 1e30, 0.0, 1e-8]:
        ws, state = run(cls(), [[1.0, scale, 1e-6], [scale, 1.0, 0.0], [0.0, 0.0, 0.0], [1e30, 1e-30, scale]], THREE)
        assert all(w.shape == (3,) and torch.isfinite(w).all() and (w >= 0).all() for w in ws)
        assert int(state["skipped"]) == 0


@pytest.mark.parametrize("make", [DWA, SoftAdapt, lambda: ReLoBRaLo(rho=0.5), ResNorm,
                                  lambda: Performance(ic="<1e-4")], ids=["dwa", "softadapt", "relobralo", "resnorm",
                                                                         "performance"])
def test_non_finite_losses_are_skipped_and_not_recorded(make):
    good = [[1.0, 2.0, 3.0], [0.3, 1.0, 0.5], [0.2, 0.1, 0.5], [0.1, 0.1, 0.4]]
    bad = [[0.5, float("nan"), 1.0], [0.4, float("inf"), 1.0]]
    ws, state = run(make(), good[:1] + bad + good[1:], THREE)
    assert int(state["skipped"]) == 2 and torch.equal(ws[1], ws[0]) and torch.equal(ws[2], ws[0])
    balancer, clean = make(), []
    state = balancer.init(THREE)
    for step, losses in zip([0, 3, 4, 5], good):  # the same steps without the bad ones
        w, state = balancer.update(Stats(torch.tensor(losses, dtype=torch.float64)), state, step=step,
                                   progress=step / 6)
        clean.append(w)
    assert all(torch.equal(a, b) for a, b in zip(ws[3:], clean[1:]))


LOSS = st.one_of(st.sampled_from([0.0, 1e-30, 1e30, 1.0, 1e-300, 3e38]),
                 st.floats(min_value=0.0, max_value=1e30, allow_nan=False))


@settings(max_examples=40, deadline=None)
@given(k=st.integers(1, 4), dtype=st.sampled_from([torch.float32, torch.float64]), data=st.data())
def test_property_weights_are_finite_and_non_negative(k, dtype, data):
    terms = [TermInfo(f"t{i}", "residual", data.draw(st.sampled_from([0.0, 1.0, 100.0]))) for i in range(k)]
    seq = data.draw(st.lists(st.lists(LOSS, min_size=k, max_size=k), min_size=1, max_size=8))
    targets = {"t0": data.draw(st.sampled_from(["1e-3>1", "0>5", "7"]))}
    balancers = [cls() for cls in DEFAULTS] + [
        SoftAdapt(normalized=False, loss_weighted=True, beta=1e10), DWA(T=1e-10, min=0.0, max=1e300),
        ReLoBRaLo(rho=0.5, tau=1e-10, min=0.0, max=1e300), ResNorm(asymmetry=1e10, lr=1e10, min=0.0, max=1e300),
        Schedule(**targets, shape=data.draw(st.sampled_from(["linear", "cosine", "step"]))),
        Performance(t0="<1e-3", up=10.0, floor=0.0, min=0.0, max=1e300)]
    for balancer in balancers:
        state = balancer.init(terms)
        for step, losses in enumerate(seq):
            w, state = balancer.update(Stats(torch.tensor(losses, dtype=dtype)), state,
                                       step=step, progress=step / len(seq))
            assert w.shape == (k,) and torch.isfinite(w).all() and (w >= 0).all(), (balancer.spec, losses)
