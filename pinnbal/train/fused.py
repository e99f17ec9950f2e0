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
2026-12-07, a ``/tmp`` script calling both on one trainer): the gradient took 7.6-7.7 ms in one graph against
9.5-9.75 ms for the compiled losses and an eager backward (1.26×), gradients equal to 6e-6 absolute (the
sums are ordered differently).  A whole ``fixed`` step (``pinnbal bench speed --compiled``,
``gallery/benchmarks/speed-engines-2026-12-07.md``): 7.30 ms against 17.14 by nested autograd (2.35×).

The per-term gradients J_k = ∇_θ L_k (K × P, for gradient balancers and aggregators) come from a second
graph: one ``torch.func.vjp`` per distinct batch and one pull-back per term on it, so terms on disjoint
batches cost one backward together (``lra`` 0.98× ``fixed``, ``pcgrad`` 1.07×, ``gradnorm`` 1.17× in the
report above, all compiled).

Used on the steps whose weights do not depend on the step's own statistics (:func:`weights_ahead`:
``fixed`` on every step; a cadence balancer such as ``lra`` between its updates), for the second stage's
fixed-weight objective, and (rows) on the steps that need J over every parameter; steps with per-point
weights or J over a subset (``params=last``) keep the per-batch compiled graphs.  Both graphs are compiled
whole (``fullgraph``): when one cannot be (a residual calling scipy), or fails to run, the run goes on with
the per-batch graphs, one line saying why.
"""

from __future__ import annotations

import sys
import time

import torch
from torch import nn

from .. import forward
from ..balancers.base import Balancer
from ..nets import PINNModel
from ..problem import Regularisation


def plain_losses(balancer: Balancer) -> bool:
    """True when ``balancer``'s term losses are the plain means of the pointwise losses (what the one-graph
    gradient computes): no per-point weights, no learned loss shape."""
    return type(balancer).losses is Balancer.losses


def weights_ahead(balancer: Balancer, step: int) -> bool:
    """True when ``balancer``'s weights at ``step`` are its current ones whatever the step measures: a
    term-weight method on the base class's update and plain mean term losses, not due at ``step``."""
    return (balancer.kind == "weights" and type(balancer).update is Balancer.update and plain_losses(balancer)
            and not balancer.due(step))


class _Objective(nn.Module):
    """The pointwise losses ℓ_k of the terms, as a module whose parameters are the model's (so
    ``functional_call`` can evaluate it at other parameters): every term's, or those of one group (the terms
    on one distinct batch, or one penalty term)."""

    def __init__(self, model: PINNModel, groups: list):
        super().__init__()
        self.model = model
        self.groups = groups  # [(evaluate, [term index])]: a batch's losses function, or a penalty term

    def forward(self, inputs: list, group: int | None = None) -> dict[int, torch.Tensor]:
        chosen = range(len(self.groups)) if group is None else [group]
        pointwise: dict[int, torch.Tensor] = {}
        for g in chosen:
            evaluate, indices = self.groups[g]
            if isinstance(evaluate, Regularisation):
                pointwise[indices[0]] = evaluate.penalty(self.model).reshape(1)
                continue
            x, values, normals = inputs[g]
            for k, (_, ell) in zip(indices, evaluate(x, values, normals)):
                pointwise[k] = ell
        return pointwise


def gradient_of(objective: _Objective):
    """f(params, weights, inputs) → (∇ Σ_k w_k L_k by parameter name, (the sum, [ℓ_k])), detached:
    ``objective`` at ``params`` by ``functional_call``, differentiated by ``torch.func.grad``."""

    def gradient(params: dict, weights: torch.Tensor, inputs: list):
        def total(ps):
            pointwise = torch.func.functional_call(objective, ps, (inputs,))
            ordered = [pointwise[k] for k in range(len(pointwise))]
            value = sum(w * ell.mean() for w, ell in zip(weights, ordered))
            return value, (value.detach(), [ell.detach() for ell in ordered])
        return torch.func.grad(total, has_aux=True)(params)

    return gradient


def rows_of(objective: _Objective, names: list[str]):
    """f(params, inputs) → (J, [ℓ_k]): J (K, P) the per-term gradients J_k = ∇ L_k over ``names`` in order,
    one ``torch.func.vjp`` per group and one pull-back per term of it.  Terms on disjoint batches never
    share a graph, so the K rows cost one backward of all the batches together."""

    def rows(params: dict, inputs: list):
        found: dict[int, torch.Tensor] = {}
        pointwise: dict[int, torch.Tensor] = {}
        for g, (_, indices) in enumerate(objective.groups):
            def losses(ps, g=g):
                ells = torch.func.functional_call(objective, ps, (inputs, g))
                return torch.stack([ells[k].mean() for k in indices]), {k: ells[k].detach() for k in indices}
            value, pull, ells = torch.func.vjp(losses, params, has_aux=True)
            pointwise.update(ells)
            for j, k in enumerate(indices):
                (grads,) = pull(torch.eye(len(indices), dtype=value.dtype, device=value.device)[j])
                found[k] = torch.cat([grads[name].reshape(-1) for name in names])
        return torch.stack([found[k] for k in range(len(found))]), [pointwise[k] for k in range(len(pointwise))]

    return rows


class FusedGradient:
    """The gradient of Σ_k w_k L_k, or the K per-term gradients, over the trainable parameters of ``model`` on
    ``batches`` (a :class:`pinnbal.batches.Batches`), each compiled as one graph; ``reason`` (one line) once
    either has failed."""

    def __init__(self, model: PINNModel, batches):
        self.model, self.batches = model, batches
        self.names = [name for name, p in model.named_parameters() if p.requires_grad]
        owners: dict[str, list[int]] = {}
        groups = []
        for k, (term, x, _) in enumerate(batches.items):
            if x is None:
                groups.append((term, [k]))
            else:
                owners.setdefault(term.shares or term.name, []).append(k)
        terms = [term for term, _, _ in batches.items]
        self.owners = owners
        self.separate = all(len(ks) == 1 for ks in owners.values())  # every term on a batch of its own
        groups = [(forward.batch_losses(model, [terms[k] for k in ks], batches.derivative_keys(model, owner),
                                        strict=True), ks) for owner, ks in owners.items()] + groups
        self.objective = _Objective(model, groups)
        named = [f"model.{name}" for name in self.names]
        # fullgraph: a graph break would run torch.func eagerly, slower than the per-batch graphs; fail instead
        self.compiled = {"gradient": forward.compile_own(gradient_of(self.objective), fullgraph=True),
                         "rows": forward.compile_own(rows_of(self.objective, named), fullgraph=True)}
        self.reason: str | None = None
        self.compile_seconds: dict[str, float] = {}  # each graph's first call (tracing and compiling)
        self.uncounted: float | None = None  # first-call seconds the trainer's clock has not yet taken

    def take_compile_seconds(self) -> float | None:
        """The first calls' time since the last take, for the clock that counts it apart from the step times."""
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

    def run(self, which: str, params: list[torch.Tensor], *args):
        """The compiled graph ``which`` at ``params``, or None when it fails (then :attr:`reason` says why)."""
        if self.reason is not None:
            return None
        named = {f"model.{name}": p.detach() for name, p in zip(self.names, params)}
        start = time.perf_counter()
        try:
            out = self.compiled[which](named, *args, self.inputs())
        except Exception as error:  # noqa: BLE001 (any failure: the per-batch path still trains)
            self.reason = forward.one_line(error)
            sys.stderr.write(f"pinnbal: --compile on: the one-graph gradient failed, per-batch graphs from now "
                             f"on: {self.reason}\n")
            return None
        if which not in self.compile_seconds:
            self.compile_seconds[which] = time.perf_counter() - start
            self.uncounted = (self.uncounted or 0.0) + self.compile_seconds[which]
        return out

    def __call__(self, params: list[torch.Tensor], weights: torch.Tensor):
        """Set each of ``params``' ``.grad`` (the model's trainable parameters, in order) to ∇ Σ_k w_k L_k and
        return (Σ_k w_k L_k, the pointwise losses ℓ_k), detached; None (nothing set) when the graph fails."""
        out = self.run("gradient", params, weights)
        if out is None:
            return None
        grads, (total, pointwise) = out
        for name, p in zip(self.names, params):
            p.grad = grads[f"model.{name}"]
        return total, pointwise

    def rows(self, params: list[torch.Tensor]):
        """(J (K, P), the pointwise losses ℓ_k): the per-term gradients over ``params`` (the model's
        trainable parameters, in order, flattened and joined); None when the graph fails."""
        return self.run("rows", params)
