r"""Reference solution of the viscous Burgers equation via the Cole--Hopf transform.

Problem
-------
The benchmark problem (Basdevant et al. 1986; used as the PINN benchmark by
Raissi, Perdikaris & Karniadakis 2019) is

.. math::

    u_t + u u_x = \nu u_{xx}, \qquad x \in [-1, 1],\ t \in [0, 1],

    u(x, 0) = -\sin(\pi x), \qquad u(\pm 1, t) = 0, \qquad \nu = 0.01 / \pi.

Exact solution
--------------
The Cole--Hopf transform (Hopf 1950; Cole 1951), :math:`u = -2\nu\,\phi_x/\phi`
with :math:`\phi` solving the heat equation, gives for :math:`t > 0`

.. math::

    u(x, t) = -\frac{\int_{-\infty}^{\infty} \sin(\pi(x - \eta))\, f(x - \eta)\,
                     e^{-\eta^2 / (4 \nu t)}\, d\eta}
                    {\int_{-\infty}^{\infty} f(x - \eta)\,
                     e^{-\eta^2 / (4 \nu t)}\, d\eta},
    \qquad f(y) = \exp\!\left(-\frac{\cos(\pi y)}{2 \pi \nu}\right),

and :math:`u(x, 0) = -\sin(\pi x)`.  Because the initial condition is odd and
2-periodic, this whole-line solution automatically satisfies
:math:`u(\pm 1, t) = 0`.

Numerical evaluation
--------------------
Substituting :math:`\eta = \sqrt{4 \nu t}\, z` turns both integrals into
Gauss--Hermite form :math:`\int g(z) e^{-z^2} dz \approx \sum_k w_k g(z_k)`
(:func:`numpy.polynomial.hermite.hermgauss`).  The common factor
:math:`\sqrt{4\nu t}` cancels in the ratio.  With :math:`\nu = 0.01/\pi`,
:math:`f` spans :math:`e^{\pm 50}`; to keep everything in range for any
:math:`\nu`, the terms :math:`w_k f(y_k)` are formed in log space and, for each
``x``, the largest exponent is subtracted before exponentiating (the factor
cancels in the ratio, exactly as in a log-sum-exp).  Nodes with zero weight
(underflowed for very large node counts) are dropped.

References
----------
E. Hopf, "The partial differential equation u_t + u u_x = mu u_xx",
Comm. Pure Appl. Math. 3 (1950) 201-230.

J. D. Cole, "On a quasi-linear parabolic equation occurring in aerodynamics",
Quart. Appl. Math. 9 (1951) 225-236.

C. Basdevant, M. Deville, P. Haldenwang, J. M. Lacroix, J. Ouazzani,
R. Peyret, P. Orlandi, A. T. Patera, "Spectral and finite difference solutions
of the Burgers equation", Computers & Fluids 14 (1986) 23-41.

M. Raissi, P. Perdikaris, G. E. Karniadakis, "Physics-informed neural
networks", J. Comput. Phys. 378 (2019) 686-707.
"""

from __future__ import annotations

import functools

import numpy as np
from numpy.polynomial.hermite import hermgauss

__all__ = ["burgers_cole_hopf", "raissi_grid", "DEFAULT_NU", "DEFAULT_N_NODES"]

#: Viscosity of the Raissi et al. (2019) / Basdevant et al. (1986) benchmark.
DEFAULT_NU = 0.01 / np.pi

#: Default Gauss--Hermite node count.  For nu = 0.01/pi, t <= 1 the error
#: (measured by doubling) is ~1e-6 at 50 nodes, ~1e-12 at 75-80 and at the
#: float64 floor (~1e-14) from ~100 nodes on; 200 gives a 2x safety margin at
#: ~0.1-0.2 s for the 256 x 100 Raissi grid.
DEFAULT_N_NODES = 200

# Largest node count for which numpy's hermgauss is used (it overflows at ~375
# nodes, and its dense O(n^3) eigensolve gets slow well before that).
_HERMGAUSS_MAX = 200

# Relative size (as -log) below which quadrature terms are provably negligible.
_PRUNE_LOG = 80.0

# Max number of (x, node) products held in memory at once.
_CHUNK_ELEMS = 2_000_000


@functools.lru_cache(maxsize=16)
def _log_hermite_rule(n_nodes: int) -> tuple[np.ndarray, np.ndarray]:
    """Gauss--Hermite nodes and log-weights, dropping underflowed weights.

    Uses :func:`numpy.polynomial.hermite.hermgauss` for
    ``n_nodes <= _HERMGAUSS_MAX`` (200) and :func:`scipy.special.roots_hermite`
    above that (numpy's rule overflows for ``n_nodes`` >~ 375 and its dense
    eigenvalue solve is O(n^3)).  Results are cached and read-only.

    Parameters
    ----------
    n_nodes : int
        Number of quadrature nodes (>= 1).

    Returns
    -------
    z : np.ndarray
        Nodes with strictly positive weight, shape ``(m,)``, ``m <= n_nodes``.
    log_w : np.ndarray
        Natural logarithm of the corresponding weights, shape ``(m,)``.
    """
    if n_nodes <= _HERMGAUSS_MAX:
        z, w = hermgauss(n_nodes)
    else:
        from scipy.special import roots_hermite

        z, w = roots_hermite(n_nodes)
    if not np.all(np.isfinite(w)):  # pragma: no cover - defensive
        raise FloatingPointError(f"Gauss-Hermite rule failed for n_nodes={n_nodes}")
    keep = w > 0.0
    z, log_w = z[keep], np.log(w[keep])
    z.flags.writeable = False
    log_w.flags.writeable = False
    return z, log_w


def burgers_cole_hopf(
    x: np.ndarray,
    t: np.ndarray,
    nu: float = DEFAULT_NU,
    n_nodes: int = DEFAULT_N_NODES,
) -> np.ndarray:
    r"""Exact solution of the viscous Burgers benchmark on a tensor grid.

    Evaluates the Cole--Hopf formula (see module docstring) for
    :math:`u_t + u u_x = \nu u_{xx}`, :math:`u(x, 0) = -\sin(\pi x)`, with
    Gauss--Hermite quadrature after the substitution
    :math:`\eta = \sqrt{4 \nu t}\, z`.

    Parameters
    ----------
    x : array_like
        1-D array of spatial points (normally in ``[-1, 1]``).
    t : array_like
        1-D array of non-negative times.
    nu : float, optional
        Viscosity, must be positive.  Default ``0.01 / pi``.
    n_nodes : int, optional
        Number of Gauss--Hermite nodes.  The default (200) is converged to
        the float64 floor (~1e-14; doubling changes u by < 1e-14) for
        ``nu = 0.01/pi`` and ``t <= 1``.  Smaller ``nu`` or later times need
        more nodes (check by doubling).

    Returns
    -------
    np.ndarray
        ``float64`` array of shape ``(len(x), len(t))`` with
        ``u[i, j] = u(x[i], t[j])`` (``'ij'`` meshgrid indexing).  Columns with
        ``t == 0`` hold the initial condition ``-sin(pi x)`` exactly.

    Raises
    ------
    ValueError
        If ``x`` or ``t`` is not 1-D, any ``t`` is negative or non-finite,
        ``nu <= 0`` or ``n_nodes < 1``.

    Examples
    --------
    >>> x, t = raissi_grid()
    >>> u = burgers_cole_hopf(x, t)
    >>> u.shape
    (256, 100)
    """
    x = np.asarray(x, dtype=np.float64)
    t = np.asarray(t, dtype=np.float64)
    if x.ndim != 1 or t.ndim != 1:
        raise ValueError(f"x and t must be 1-D, got shapes {x.shape} and {t.shape}")
    if not np.all(np.isfinite(t)) or np.any(t < 0.0):
        raise ValueError("t must be finite and non-negative")
    nu = float(nu)
    if not (nu > 0.0 and np.isfinite(nu)):
        raise ValueError(f"nu must be positive and finite, got {nu}")
    n_nodes = int(n_nodes)
    if n_nodes < 1:
        raise ValueError(f"n_nodes must be >= 1, got {n_nodes}")

    u = np.empty((x.size, t.size), dtype=np.float64)
    if x.size == 0 or t.size == 0:
        return u

    z, log_w = _log_hermite_rule(n_nodes)
    inv_2pinu = 1.0 / (2.0 * np.pi * nu)
    # Prune nodes that cannot matter: since -cos(pi y)/(2 pi nu) lies in
    # [-inv_2pinu, inv_2pinu], a node's term is at most
    # exp(log_w - max(log_w) + 2 inv_2pinu) times the largest term.  Dropping
    # those below exp(-_PRUNE_LOG) changes u by < n_nodes * exp(-_PRUNE_LOG)
    # relative, and avoids slow subnormal arithmetic for large n_nodes.
    keep = log_w >= log_w.max() - 2.0 * inv_2pinu - _PRUNE_LOG
    z, log_w = z[keep], log_w[keep]
    chunk = max(1, _CHUNK_ELEMS // max(1, x.size * z.size))

    u[:, t == 0.0] = -np.sin(np.pi * x)[:, None]
    pos = np.flatnonzero(t > 0.0)
    for start in range(0, pos.size, chunk):
        idx = pos[start:start + chunk]
        s = np.sqrt(4.0 * nu * t[idx])  # (T,)
        # y = x - eta = x - s z, shape (X, T, N)
        piy = np.pi * (x[:, None, None] - s[None, :, None] * z[None, None, :])
        expo = log_w - np.cos(piy) * inv_2pinu
        expo -= expo.max(axis=-1, keepdims=True)  # overflow guard (cancels)
        wf = np.exp(expo)
        num = np.einsum("xtn,xtn->xt", np.sin(piy), wf)
        den = wf.sum(axis=-1)  # >= 1 by construction
        u[:, idx] = -num / den
    return u


def raissi_grid() -> tuple[np.ndarray, np.ndarray]:
    """Space-time grid of the published Burgers benchmark data.

    Matches ``Burgers.npz`` of Raissi et al. (2019): 256 equispaced points in
    ``[-1, 1]`` and the 100 times ``0, 0.01, ..., 0.99``.

    Returns
    -------
    x : np.ndarray
        ``np.linspace(-1, 1, 256)``, shape ``(256,)``.
    t : np.ndarray
        ``np.linspace(0, 0.99, 100)``, shape ``(100,)``.
    """
    x = np.linspace(-1.0, 1.0, 256)
    t = np.linspace(0.0, 0.99, 100)
    return x, t
