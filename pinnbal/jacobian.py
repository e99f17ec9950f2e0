"""Per-term parameter gradients: the K × P Jacobian J with J[k] = ∂L_k/∂θ.

Both strategies differentiate the same forward graph:

- ``loop``: K calls of ``torch.autograd.grad`` (graph retained between them),
  one per term loss;
- ``batched``: one call with ``is_grads_batched=True``, which vmaps the
  vector–Jacobian product over the rows of the identity.

The term losses come as K separate scalars, not as one stacked (K,) tensor:
the backward of ``stack(L)[k]`` hands zero-filled gradients to every other
term's graph and autograd computes through all of them, so each row of the
loop cost a full backward pass (on Burgers: 21 ms for a 512-point boundary
term whose own graph takes well under 1 ms).  From the scalar L_k, row k
walks term k's graph alone, and J costs about one ordinary backward.

Which is faster depends on the device and the graph.  On CPU ``auto`` takes
the loop: on a 2-core CPU it won every case we measured (Burgers, 3 terms,
8192 + 1024 points, 4×32 tanh: 17–21 ms against 58–61 ms for the vmapped
pass, ``pinnbal bench speed``), and a fixed choice keeps same-seed CPU runs
bit-identical (the two strategies agree only to rounding).  On CUDA ``auto`` times both once on the
first step that needs J and keeps the faster.  On such a step the update direction is Σ_k w_k J[k], taken from J
itself, never from a second backward pass.
"""

from __future__ import annotations

import time
from typing import Sequence, Union

import torch

from .errors import OptionError

STRATEGIES = ("auto", "loop", "batched")


def flat_grads(grads, params) -> torch.Tensor:
    return torch.cat([(g if g is not None else torch.zeros_like(p)).reshape(-1) for g, p in zip(grads, params)])


Losses = Union[torch.Tensor, Sequence[torch.Tensor]]  # K scalars (preferred), or a (K,) tensor


def jacobian_loop(losses: Losses, params: list[torch.Tensor], retain_graph: bool = False) -> torch.Tensor:
    """J (K, P) by one ``autograd.grad`` per term loss."""
    rows = []
    for k, loss in enumerate(losses):
        keep = retain_graph or k < len(losses) - 1
        grads = torch.autograd.grad(loss, params, retain_graph=keep, allow_unused=True)
        rows.append(flat_grads(grads, params))
    return torch.stack(rows)


def jacobian_batched(losses: Losses, params: list[torch.Tensor], retain_graph: bool = False) -> torch.Tensor:
    """J (K, P) by one vmapped ``autograd.grad`` over the rows of the identity."""
    losses = losses if isinstance(losses, torch.Tensor) else torch.stack(list(losses))
    eye = torch.eye(losses.shape[0], dtype=losses.dtype, device=losses.device)
    grads = torch.autograd.grad(losses, params, eye, retain_graph=retain_graph, is_grads_batched=True,
                                allow_unused=True)
    return torch.cat([(g if g is not None else torch.zeros((losses.shape[0], *p.shape), dtype=p.dtype,
                                                            device=p.device)).reshape(losses.shape[0], -1)
                      for g, p in zip(grads, params)], dim=1)


class JacobianEngine:
    """Computes J by ``strategy``; ``auto`` measures both once and keeps the faster."""

    def __init__(self, strategy: str = "auto"):
        if strategy not in STRATEGIES:
            raise OptionError(f"unknown --jacobian {strategy!r}; choose one of {', '.join(STRATEGIES)}")
        self.strategy = strategy
        self.timings: dict[str, float] = {}

    def __call__(self, losses: Losses, params: list[torch.Tensor], retain_graph: bool = False) -> torch.Tensor:
        """J (K, P) of the K term losses; ``retain_graph`` keeps the graph for a backward pass afterwards."""
        if self.strategy == "loop":
            return jacobian_loop(losses, params, retain_graph)
        if self.strategy == "batched":
            return jacobian_batched(losses, params, retain_graph)
        device = losses[0].device
        if device.type == "cpu":
            self.strategy = "loop"
            return jacobian_loop(losses, params, retain_graph)
        return self._measure_and_pick(losses, params, retain_graph)

    def _measure_and_pick(self, losses: Losses, params, retain_graph: bool = False) -> torch.Tensor:
        # batched, loop, batched: the second batched call is past vmap's warm-up.
        plan = (("batched", jacobian_batched), ("loop", jacobian_loop), ("batched", jacobian_batched))
        device = losses[0].device
        for i, (name, fn) in enumerate(plan):
            sync(device)
            start = time.perf_counter()
            J = fn(losses, params, retain_graph=retain_graph or i < len(plan) - 1)
            sync(device)
            self.timings[name] = min(self.timings.get(name, float("inf")), time.perf_counter() - start)
        self.strategy = min(self.timings, key=self.timings.get)
        return J


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def ntk_traces(residuals: list[torch.Tensor], params: list[torch.Tensor], points: int) -> torch.Tensor:
    """Per-term NTK trace estimates, (K,): mean over a subsample of ‖∂r_i/∂θ‖².

    tr(K_kk) = Σ_i ‖∂r_i/∂θ‖² over the term's points (Wang, Yu & Perdikaris
    2022); the mean over the first ``points`` residual entries of the batch
    (already a random draw) estimates it per point, so terms with different
    point counts compare fairly.  The per-point gradients come from one
    vmapped pass per term; the graph is kept for the step's own backward.
    """
    traces = []
    for r in residuals:
        sample = r.reshape(-1)[:points]
        rows = jacobian_batched(sample, params, retain_graph=True)
        traces.append(rows.double().square().sum(dim=1).mean())
    return torch.stack(traces).detach()
