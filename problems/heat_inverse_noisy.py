"""Inverse heat problem with gross outliers: 30% of the 200 observations are corrupted.

    u_t = kappa u_xx   on x in [0, 1], t in [0, 1],   u(0, t) = u(1, t) = 0
    truth: kappa = 0.1, u = exp(-kappa pi^2 t) sin(pi x)

The problem of ``problems/heat_inverse.py`` (same points, same unknown kappa
starting at 0.5, same exact reference), but 60 of its 200 observations (30%,
chosen by numpy seed 3, the indices are ``CORRUPTED``) are replaced by gross
outliers: their value plus Gaussian noise of standard deviation 0.5, fifty
times the 0.01 noise of the clean observations and half the solution's range
[0, 1].  The other 140 are the clean observations of heat_inverse.py.

Why: seed 003 §4.6 ("noisy environment resilient learning") claims that a
meta-learned loss lowers the weight of doubtful samples where a static loss
overfits them.  A plain mean-squared data term lets every outlier pull the
field (and through the residual, kappa) in proportion to its squared error;
a robust loss shape (an |r| or saturating penalty: ``meta:param=poly`` or
``param=net``) would not.  Whether the meta-gradient finds such a shape is what
gallery/07_meta_loss_tuning.py measures.  Note that the held-out validation
observations (``--holdout``) are drawn from the same corrupted set: the
validation signal itself carries outliers, as it would in practice.
"""
from pathlib import Path

import numpy as np

import pinnbal as pb

FRACTION = 0.3  # of the observations corrupted
OUTLIER_SD = 0.5  # standard deviation of the noise added to a corrupted observation

# everything but the observations comes from problems/heat_inverse.py, loaded as it is
clean = pb.load_problem(Path(__file__).with_name("heat_inverse.py"))
pde, walls, clean_obs = clean.terms
x_obs, u_clean = np.asarray(clean_obs.x_raw), np.asarray(clean_obs.values_raw)[:, 0]

# the corruption: a fixed 30% of them get gross noise (numpy seed 3)
corrupt = np.random.default_rng(3)
CORRUPTED = np.sort(corrupt.choice(len(x_obs), size=int(round(FRACTION * len(x_obs))), replace=False))
u_obs = u_clean.copy()
u_obs[CORRUPTED] += corrupt.normal(0.0, OUTLIER_SD, size=len(CORRUPTED))

problem = pb.Problem(
    name="heat_inverse_noisy",
    domain=clean.domain,
    outputs=clean.outputs,
    terms=[pde, walls, pb.Data("obs", x=x_obs, values=u_obs[:, None])],
    reference=clean.reference,
    unknowns=clean.unknowns,
)
