"""``--compile on``: a step's whole gradient, forward and backward of every batch, in one compiled graph.

For weights w known before the step, the gradient is

    g = ∇_θ Σ_k w_k L_k(θ),   L_k = mean_i ℓ_k(x_i; θ),

taken by ``torch.func.grad`` of a pure function of the parameters
(``torch.func.functional_call`` of the model with the derivatives carried
forward, :func:`pinnbal.forward.batch_losses`), all under one
``torch.compile``.  Inductor then sees the forward and its backward as one
graph: it fuses the elementwise work of the backward into the forward's
kernels and frees what the backward no longer needs, which a compiled loss
followed by an eager ``backward()`` (:class:`pinnbal.forward.Compiled`, one
graph per batch and autograd's engine between them) cannot.

Measured (Burgers, 4 × 32 tanh, 8192 + 512 + 512 points, float32, 2 threads, 150 calls, same process,
2026-12-07, ``/tmp`` script calling both on the same trainer): the gradient took 7.6-7.7 ms in one graph
against 9.5-9.75 ms for today's compiled losses and eager backward (1.26×), gradients equal to 6e-6
absolute (rounding: the sums are ordered differently).

Used on the steps whose weights do not depend on the step's own statistics (:func:`weights_ahead`:
``fixed`` on every step; a cadence balancer such as ``lra`` between its updates) and for the second stage's
fixed-weight objective; steps that need per-term gradients, NTK traces or per-point weights keep the
per-batch compiled path.  When the graph cannot be compiled or run, the run goes on with that path, one
line saying why.
"""

from __future__ import annotations

import sys
import time

import torch
from torch import nn

from . import forward
from .balancers.base import Balancer
from .nets import PINNModel


def weights_ahead(balancer: Balancer, step: int) -> bool:
    """True when ``balancer``'s weights at ``step`` are its current ones whatever the step measures: a
    term-weight method on the base class's update and plain mean term losses, not due at ``step``."""
    kind = type(balancer)
    return (balancer.kind == "weights" and kind.update is Balancer.update and kind.losses is Balancer.losses
            and not balancer.due(step))


class _Objective(nn.Module):
    """Σ_k w_k L_k of the terms on their batches, as a module whose parameters are the model's (so
    ``functional_call`` can evaluate it at other parameters); also, detached, the sum and each term's pointwise
    loss ℓ_k."""

    def __init__(self, model: PINNModel, groups: list):
        super().__init__()
        self.model = model
        self.groups = groups  # [(evaluate, [term index]) per distinct batch] and [(term, index)] of penalties

    def forward(self, weights: torch.Tensor, inputs: list) -> tuple[torch.Tensor, list[torch.Tensor]]:
        batches, penalties = self.groups
        pointwise: dict[int, torch.Tensor] = {}
        for (evaluate, indices), (x, values, normals) in zip(batches, inputs):
            for k, (_, ell) in zip(indices, evaluate(x, values, normals)):
                pointwise[k] = ell
        for term, k in penalties:
            pointwise[k] = term.penalty(self.model).reshape(1)
        ordered = [pointwise[k] for k in range(len(pointwise))]
        total = sum(w * ell.mean() for w, ell in zip(weights, ordered))
        return total, (total.detach(), [ell.detach() for ell in ordered])


def gradient_of(objective: _Objective):
    """f(params, weights, inputs) → (∇ Σ_k w_k L_k by parameter name, (the sum, ℓ_k)): ``objective``
    evaluated at ``params`` by ``functional_call``, differentiated by ``torch.func.grad``."""

    def gradient(params: dict, weights: torch.Tensor, inputs: list):
        def total(ps):
            return torch.func.functional_call(objective, ps, (weights, inputs))
        return torch.func.grad(total, has_aux=True)(params)

    return gradient


class FusedGradient:
    """The gradient of Σ_k w_k L_k over the trainable parameters of ``model`` on ``batches``
    (a :class:`pinnbal.batches.Batches`), compiled as one graph; ``reason`` (one line) once it has failed."""

    def __init__(self, model: PINNModel, batches):
        self.model, self.batches = model, batches
        self.names = [name for name, p in model.named_parameters() if p.requires_grad]
        owners: dict[str, list[int]] = {}
        penalties = []
        for k, (term, x, _) in enumerate(batches.items):
            if x is None:
                penalties.append((term, k))
            else:
                owners.setdefault(term.shares or term.name, []).append(k)
        self.owners = owners
        terms = [term for term, _, _ in batches.items]
        groups = [(forward.batch_losses(model, [terms[k] for k in ks], batches.derivative_keys(model, owner),
                                        strict=True), ks) for owner, ks in owners.items()]
        self.objective = _Objective(model, [groups, penalties])
        self.compiled = torch.compile(forward.own_code(gradient_of(self.objective)))
        self.reason: str | None = None
        self.compile_seconds: float | None = None  # the first call's wall time (tracing and compiling)
        self.uncounted: float | None = None  # the same, until the trainer's clock takes it

    def take_compile_seconds(self) -> float | None:
        """The first call's time once, for the clock that counts it apart from the step times."""
        seconds, self.uncounted = self.uncounted, None
        return seconds

    def inputs(self) -> list:
        """Each distinct batch's points (detached: every derivative is carried forward), its terms'
        observations and, on boundary points, the outward normals (numpy code: outside the graph)."""
        items = self.batches.items
        out = []
        for ks in self.owners.values():
            term, x, _ = items[ks[0]]
            normals = self.model.normals_at(x) if term.on_boundary else None
            out.append((x.detach(), [items[k][2] for k in ks], normals))
        return out

    def __call__(self, params: list[torch.Tensor], weights: torch.Tensor):
        """Set each of ``params``' ``.grad`` (the model's trainable parameters, in order) and return
        (Σ_k w_k L_k, the pointwise losses ℓ_k), detached; None (nothing set) when the graph fails, with
        :attr:`reason` saying why."""
        if self.reason is not None:
            return None
        named = {f"model.{name}": p.detach() for name, p in zip(self.names, params)}
        start = time.perf_counter()
        try:
            grads, (total, pointwise) = self.compiled(named, weights, self.inputs())
        except Exception as error:  # noqa: BLE001 (any failure: the per-batch path still trains)
            self.reason = forward.one_line(error)
            sys.stderr.write(f"pinnbal: --compile on: the one-graph gradient failed, per-batch graphs from now "
                             f"on: {self.reason}\n")
            return None
        if self.compile_seconds is None:
            self.compile_seconds = self.uncounted = time.perf_counter() - start
        for name, p in zip(self.names, params):
            p.grad = grads[f"model.{name}"]
        return total, pointwise
