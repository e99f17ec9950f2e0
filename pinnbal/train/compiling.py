"""``--compile``: the Adam stage's loss evaluation under ``torch.compile``.

With the derivatives carried forward (:mod:`pinnbal.forward`) a term's loss is
one plain forward graph, which ``torch.compile`` captures whole; each
distinct batch (the terms sharing it) is one compiled function of its points
and observations (:func:`pinnbal.forward.compiled_batch_losses`).  A compile
or run failure falls back to the eager path with one line, never a crash.

What a compiled graph cannot do, it is not asked to: a double backward
(meta-gradient balancers, which also ask for a training context), a
vmapped backward (``--jacobian batched``, NTK traces), nested autograd
(``--derivatives autograd``).  Those runs train uncompiled, with one line
saying why.  The second stage's loss is compiled again in its dtype
(float64 by default) before its first chunk, ``lm`` excepted (its per-point
Jacobian).  Measured (Burgers, ``fixed``, 200 Adam steps then 600
self-scaled Broyden iterations, one thread, cold inductor caches,
2026-12-03; README "Command line"): an iteration took 98-107 ms compiled
against 124-149 ms eagerly (1.3-1.5×), for a compile of 23-28 s, so it pays
back after roughly 1000 iterations — the wave's and the cavity's stages,
not Burgers' 1400 with a 35-40 s Adam compile before them.

``auto`` is off, from measurement.  With the one-graph gradient (2026-12-07, ``pinnbal run problems/burgers.py``
with its recipe, 2 threads, cold inductor caches): the compiles took 26.9 s (Adam's two graphs) and 8.2 s
(the float64 stage), Adam steps 8.75 ms against 19.2 eagerly and self-scaled Broyden iterations 45.7 ms
against 53.7, so the run took 108.1 s against 95.5 eagerly: 1000 Adam steps do not pay back the compile.
(Earlier, 2026-12-02, per-batch graphs: a 25 s compile, 41.2 against 30.9 ms per step.)  No GPU measurement
exists yet, so ``auto`` is off there too.  ``metrics.json`` reports ``compile_s`` (the first compiled step:
tracing, compiling its forward and backward graphs, and the step; plus the first call of a one-graph
gradient that first runs later) and ``stage_compile_s`` (the second stage's) apart from ``ms_per_step``.

Mode: inductor's default.  ``max-autotune`` (tried through ``TORCHINDUCTOR_MAX_AUTOTUNE=1`` with the C++ and
ATen GEMM back ends, Burgers ``fixed``, 150 Adam steps, 2 threads, 2026-12-06) was slower: 19.1-21.2 ms per
step against 13.5-15.0, and a longer compile.  Neither is the launch count of the matrix products the
limit: a stand-alone compiled prototype of the Burgers jet (three 32 × 32 tanh layers, 8192 points)
with the three derivative streams stacked into one product per layer ran 8.36 ms per forward and
backward against 8.41 with one product per stream.
"""

from __future__ import annotations

import sys

import torch
import torch._functorch.config

from .. import forward
from .fused import FusedGradient


def compile_reason(config, request, model) -> str | None:
    """Why this run's loss cannot be compiled (one line), or None when it can."""
    if config.derivatives == "autograd":
        return "--derivatives autograd takes a double backward, which a compiled loss cannot"
    unsupported = forward.supports(model)
    if unsupported is not None:
        return f"derivatives by autograd ({unsupported})"
    if request.context:
        return "the balancer differentiates through a training step (a double backward)"
    if request.ntk_points:
        return "NTK traces take a vmapped backward"
    if config.jacobian == "batched":
        return "--jacobian batched takes a vmapped backward; --jacobian loop compiles"
    return None


def switch_on(trainer) -> None:
    """Compile the training batches' loss when ``--compile on`` and the run allows it; one line when not."""
    cfg = trainer.config
    trainer.fused = None  # the one-graph gradient (pinnbal.train.fused), made below when the loss compiles
    if cfg.compile != "on":
        return
    reason = compile_reason(cfg, trainer.request, trainer.model)
    if reason is not None:
        sys.stderr.write(f"pinnbal: --compile on: training uncompiled: {reason}\n")
        trainer.events.append({"step": 0, "event": f"uncompiled: {reason}"})
        return
    # the per-term Jacobian's loop takes backwards with retain_graph, which donated buffers forbid
    torch._functorch.config.donated_buffer = False
    if cfg.jacobian == "auto":
        trainer.jacobian.strategy = "loop"  # a compiled graph takes repeated backwards, not a vmapped one
    trainer.batches.compiled = {}
    trainer.fused = FusedGradient(trainer.model, trainer.batches)
