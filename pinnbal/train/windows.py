"""Time-marching: ``--time-windows N`` trains an x–t problem window by window.

The time interval [t₀, t₁] is cut into N equal windows; the network is a
:class:`pinnbal.nets.Windowed` (one network per window).  Window i trains,
with the whole ``--steps``/``--then`` schedule, on a problem of its own
(:func:`window_problem`): the domain cut to [a_i, b_i]; the residual and
boundary terms as declared (their point counts per window); observations
inside the window; and in place of each ``pb.Initial`` term, for i > 0, a
:class:`WindowStart` on the face t = a_i whose target is what window i − 1
gives there:

    r_start(x) = r_init(p_i; x) − r_init(p_{i−1}; x),    x on t = a_i

with r_init the declared initial term's own residual (u − g(x) for a value,
u_t for ``residual=lambda p: p.u_t``).  For a value condition this is
u_i(x, a_i) = u_{i−1}(x, a_i): each window's initial condition is the
previous window's prediction; a condition on derivatives carries them too
(a wave needs u and u_t).  Window i's network starts from window i − 1's
weights; the unknowns are shared and keep training in every window.  This
is the sequence-to-sequence time-marching of Krishnapriyan et al. 2021
("Characterizing possible failure modes in physics-informed neural
networks") and of jaxpi (Wang et al. 2023, "An expert's guide to training
physics-informed neural networks").

The balancer starts afresh in each window (its state is about that window's
terms).  The second stage's float64 stays for the later windows once a
window has switched (casting back would round the finished windows).
"""

from __future__ import annotations

import copy
from typing import Callable

import numpy as np
import torch

from ..csg import Product
from ..errors import OptionError
from ..geometry import Box, Face
from ..problem import Initial, Problem


def check(problem: Problem, windows: int) -> None:
    """Refuse ``--time-windows`` where it has no meaning, in one line."""
    if windows < 1:
        raise OptionError(f"--time-windows {windows}: need an integer >= 1 (1: no windows)")
    if windows == 1:
        return
    time = problem.time
    if time is None:
        raise OptionError(f"--time-windows {windows}: problem {problem.name!r} has no time coordinate (a pb.Initial "
                          f"term's face or a coordinate named t)")
    domain = problem.domain
    if not (domain.is_box() or isinstance(domain, Product) and time in domain.time.names):
        raise OptionError(f"--time-windows {windows}: the domain {domain!r} is not a box or a shape × pb.Box({time}=...)")
    if time in domain.periodic:
        raise OptionError(f"--time-windows {windows}: {time} is periodic; windows need an initial time")
    k = domain.names.index(time)
    for term in problem.terms:
        faces = getattr(term, "faces", None) or []
        if term.kind not in ("initial", "residual") and any(axis == k for axis, _ in faces):
            raise OptionError(f"--time-windows {windows}: term {term.name!r} is on a face of {time}; only pb.Initial "
                              f"terms may be (a final-time condition has no window to live in)")


def bounds(problem: Problem, i: int, windows: int) -> tuple[float, float]:
    """Window ``i``'s time interval."""
    k = problem.domain.names.index(problem.time)
    low, high = float(problem.domain.low[k]), float(problem.domain.high[k])
    return low + (high - low) * i / windows, low + (high - low) * (i + 1) / windows


def window_domain(domain, time: str, a: float, b: float):
    """``domain`` with ``time`` cut to [a, b]."""
    if isinstance(domain, Product):
        return Product(domain.space, window_domain(domain.time, time, a, b))
    ranges = {n: (float(lo), float(hi)) for n, lo, hi in zip(domain.names, domain.low, domain.high)}
    ranges[time] = (a, b)
    return Box(periodic=domain.periodic, **ranges)


class WindowStart(Initial):
    """Window i's initial condition: the declared initial term's residual equal to window i − 1's on t = a_i."""

    def __init__(self, term: Initial, on: Face, previous: Callable[[Initial, np.ndarray], np.ndarray]):
        super().__init__(term.name, on=on, residual=lambda p: term.residual(p, None), outputs=term.outputs,
                         points=term.points, weight=term.weight, loss=term.loss)
        self.original, self.previous = term, previous
        self.shares = term.shares

    def sample(self, problem, rng, method):
        x, _ = super().sample(problem, rng, method)
        return x, self.previous(self.original, x)

    def residual(self, p, values):
        return super().residual(p, None) - values


def window_problem(problem: Problem, i: int, windows: int,
                   previous: Callable[[Initial, np.ndarray], np.ndarray]) -> Problem:
    """The problem window ``i`` trains on (module docstring); ``previous(term, x)`` is the declared initial
    term's residual on window i − 1 at the points ``x`` (N, c)."""
    time = problem.time
    k = problem.domain.names.index(time)
    a, b = bounds(problem, i, windows)
    terms, dropped = [], set()
    for term in problem.terms:
        if term.shares in dropped:
            dropped.add(term.name)
            continue
        if term.kind == "initial" and i > 0:
            terms.append(WindowStart(term, Face(**{time: a}), previous))
        elif term.kind == "data":
            t = term.x[:, k]
            rows = (t >= a) & ((t < b) if i < windows - 1 else (t <= b))
            if not rows.any():  # no observation in this window: the term sits it out
                dropped.add(term.name)
                continue
            clone = copy.copy(term)
            clone.x_raw, clone.values_raw = term.x[rows], term.values[rows]
            terms.append(clone)
        else:
            terms.append(copy.copy(term))
    return Problem(name=problem.name, domain=window_domain(problem.domain, time, a, b), outputs=problem.outputs,
                   terms=terms, unknowns=problem.unknowns, transform=problem.transform, weights=problem.rules,
                   error_outputs=problem.error_outputs)


def previous_window(model, i: int) -> Callable[[Initial, np.ndarray], np.ndarray]:
    """``previous(term, x)``: ``term``'s residual at ``x`` with window ``i − 1``'s network (derivatives by
    autograd, detached)."""
    def evaluate(term: Initial, x: np.ndarray) -> np.ndarray:
        network = model.network
        param = next(model.parameters())
        active, network.active = network.active, i - 1
        try:
            xt = torch.as_tensor(np.ascontiguousarray(x), dtype=param.dtype, device=param.device).requires_grad_(True)
            with torch.enable_grad():
                r = term.residual(model.points(xt, f"term {term.name!r}", on_boundary=True), None)
            return r.detach().cpu().double().numpy()
        finally:
            network.active = active

    return evaluate
