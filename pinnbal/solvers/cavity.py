r"""Reference solution of the lid-driven cavity: steady Navier--Stokes on a MAC grid, solved by Newton.

Problem
-------
Steady incompressible flow in the unit square, lid speed :math:`U` at
:math:`y = 1`, no slip on the other walls, :math:`\nu = U / Re`:

.. math::

    (u \cdot \nabla) u + \nabla p = \nu \Delta u, \qquad \nabla \cdot u = 0,
    \qquad u = (U, 0) \text{ at } y = 1, \quad u = 0 \text{ on } x = 0, 1,\ y = 0.

The pressure is fixed by :math:`p(1/2, 1/2) = 0`.

Discretisation
--------------
The staggered marker-and-cell grid of Harlow & Welch (1965) with ``n x n``
square cells of side :math:`h = 1/n`: ``p`` at cell centres, ``u`` on
vertical faces :math:`(ih, (j+\tfrac12)h)`, ``v`` on horizontal faces
:math:`((i+\tfrac12)h, jh)`; the wall-normal velocity lies on the walls and
is zero there.  Second-order central differences throughout:

- convection in conservative form, :math:`\partial_x(u^2) + \partial_y(uv)`
  at u-faces (and the mirror image at v-faces), with :math:`u^2` at cell
  centres from the mean of the two neighbouring faces and :math:`uv` at cell
  corners from the means of the two neighbouring u and v values (at the
  walls :math:`uv = 0`, since the wall-normal velocity vanishes there);
- the 5-point Laplacian, with the tangential wall velocity imposed through a
  ghost value :math:`u_{ghost} = 2 U_{wall} - u_{inside}`;
- :math:`\partial_x p`, :math:`\partial_y p` and the divergence as one-cell
  differences.

The cell Reynolds number :math:`Re\,h\,U` is below 2 for ``n >= 64`` at
Re = 100, so the central scheme needs no upwinding.  The continuity equations
sum to zero identically (no flux through the walls), so one of them is
replaced by :math:`p_{0,0} = 0`; the pressure is shifted afterwards to
:math:`p(1/2, 1/2) = 0` (mean of the four cells around the centre).

Solution
--------
The discrete equations :math:`R(w) = 0` (``w`` = all face velocities and
pressures) are solved by Newton's method from :math:`w = 0` (whose first
step is the Stokes solution).  The convection term is bilinear, so its exact
Jacobian is assembled from the same sparse interpolation and difference
matrices (``scipy.sparse.kron`` of 1-D operators); each step is one sparse
LU solve (:func:`scipy.sparse.linalg.spsolve`).  At Re = 100 the residual
falls quadratically to ~1e-13 in five steps.

Accuracy (Re = 100)
-------------------
The scheme converges at second order.  The centreline extrema, from a cubic
spline through each centreline, at ``n = 32, 64, 128``:
:math:`u_{min}` = -0.209028, -0.212808, -0.213739;
:math:`v_{max}` = 0.175390, 0.178584, 0.179336;
:math:`v_{min}` = -0.250403, -0.253006, -0.253614.  Richardson extrapolation
of the last two gives -0.21405, 0.17959, -0.25381, against the
spectral values -0.2140424, 0.1795728, -0.2538030 of Botella & Peyret (1998),
so the ``n = 128`` extrema are within 3e-4 (0.03 % of the lid speed) of
the converged flow.  The classical tables of Ghia, Ghia & Shin (1982) differ
from it by up to 0.005 (u) and 0.009 (v) -- their own discretisation error.

Over the whole cavity, ``n = 128`` against ``n = 256`` (cell-centre values,
relative L2): u 0.48 %, v 0.70 %, p 11 %; leaving out the points within 0.05
of the two top corners: u 0.15 %, v 0.25 %, p 0.31 % (second order there;
with the corners, first order).  At those corners the lid meets the walls,
the velocity is discontinuous and the pressure singular (like
:math:`\nu / r`): its cell-centre values there grow with ``n``, and so does
its L2 norm (logarithmically).

References
----------
F. H. Harlow, J. E. Welch, "Numerical calculation of time-dependent viscous
incompressible flow of fluid with free surface", Phys. Fluids 8 (1965) 2182.

U. Ghia, K. N. Ghia, C. T. Shin, "High-Re solutions for incompressible flow
using the Navier-Stokes equations and a multigrid method", J. Comput. Phys.
48 (1982) 387-411.

O. Botella, R. Peyret, "Benchmark spectral results on the lid-driven cavity
flow", Computers & Fluids 27 (1998) 421-433.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla

__all__ = ["CavitySolution", "cavity"]


@dataclass
class CavitySolution:
    """A converged MAC solution: ``u`` (n-1, n), ``v`` (n, n-1), ``p`` (n, n), 'ij' indexing."""

    n: int
    re: float
    lid: float
    u: np.ndarray  # at (i h, (j + 1/2) h), i = 1..n-1
    v: np.ndarray  # at ((i + 1/2) h, j h), j = 1..n-1
    p: np.ndarray  # at ((i + 1/2) h, (j + 1/2) h)
    newton_steps: int
    residual: float

    @property
    def centres(self) -> np.ndarray:
        """Cell-centre coordinates ``(i + 1/2) / n`` (the same along x and y)."""
        return (np.arange(self.n) + 0.5) / self.n

    def at_centres(self) -> dict[str, np.ndarray]:
        """u, v, p at the cell centres, each (n, n) with ``[i, j]`` at ``(centres[i], centres[j])``."""
        zeros_x = np.zeros((1, self.n))
        u_faces = np.vstack([zeros_x, self.u, zeros_x])  # walls x = 0, 1
        zeros_y = np.zeros((self.n, 1))
        v_faces = np.hstack([zeros_y, self.v, zeros_y])  # walls y = 0, 1
        return {
            "u": (u_faces[:-1] + u_faces[1:]) / 2,
            "v": (v_faces[:, :-1] + v_faces[:, 1:]) / 2,
            "p": self.p.copy(),
        }

    def u_vertical_centreline(self) -> tuple[np.ndarray, np.ndarray]:
        """``(y, u(1/2, y))``: the u-face column at x = 1/2 with the wall values at y = 0, 1."""
        if self.n % 2:
            raise ValueError("the centrelines are grid lines only for even n")
        y = np.r_[0.0, self.centres, 1.0]
        return y, np.r_[0.0, self.u[self.n // 2 - 1], self.lid]

    def v_horizontal_centreline(self) -> tuple[np.ndarray, np.ndarray]:
        """``(x, v(x, 1/2))``: the v-face row at y = 1/2 with the wall values at x = 0, 1."""
        if self.n % 2:
            raise ValueError("the centrelines are grid lines only for even n")
        x = np.r_[0.0, self.centres, 1.0]
        return x, np.r_[0.0, self.v[:, self.n // 2 - 1], 0.0]


def _operators(n: int):
    """1-D interpolation and difference matrices of the MAC grid (see the module docstring)."""
    h = 1.0 / n
    one = np.ones(n - 1)
    # cell centres (n) <- interior faces (n-1), walls zero: mean of the two faces
    face_to_centre = sp.diags([0.5 * one, 0.5 * one], [0, -1], shape=(n, n - 1), format="csr")
    # interior faces (n-1) <- centres (n): difference / h, and mean
    centre_to_face_d = sp.diags([-one, one], [0, 1], shape=(n - 1, n), format="csr") / h
    centre_to_face = sp.diags([0.5 * one, 0.5 * one], [0, 1], shape=(n - 1, n), format="csr")
    # all nodes (n+1) <- interior nodes (n-1), zero at the walls
    embed = sp.eye(n + 1, n - 1, k=-1, format="csr")
    # centres (n) <- all nodes (n+1): difference / h
    node_to_centre_d = sp.diags([-np.ones(n), np.ones(n)], [0, 1], shape=(n, n + 1), format="csr") / h
    # Laplacians: on interior faces (wall values zero) and on centres (ghost reflection at the walls)
    lap_faces = sp.diags([np.ones(n - 2), -2 * one, np.ones(n - 2)], [-1, 0, 1], format="csr") / h**2
    diag = -2.0 * np.ones(n)
    diag[[0, -1]] = -3.0
    lap_centres = sp.diags([one, diag, one], [-1, 0, 1], format="csr") / h**2
    return h, face_to_centre, centre_to_face_d, centre_to_face, embed, node_to_centre_d, lap_faces, lap_centres


def cavity(n: int = 128, re: float = 100.0, lid: float = 1.0, tol: float = 1e-10,
           max_steps: int = 30) -> CavitySolution:
    """Solve the steady lid-driven cavity on an ``n x n`` MAC grid by Newton's method.

    Parameters
    ----------
    n : int
        Cells per side (>= 4).  Even ``n`` puts the centrelines on grid lines.
    re : float
        Reynolds number ``lid * 1 / nu``.
    lid : float
        Lid speed (the lid moves in +x).
    tol : float
        Stop when the largest residual entry is below ``tol``.
    max_steps : int
        Newton steps allowed; ``RuntimeError`` if not converged by then.
    """
    n = int(n)
    if n < 4:
        raise ValueError(f"n={n}: need at least 4 cells per side")
    if not (re > 0 and np.isfinite(re)):
        raise ValueError(f"re={re}: need a positive Reynolds number")
    h, f2c, c2f_d, c2f, embed, n2c_d, lap_f, lap_c = _operators(n)
    nu = abs(lid) / re if lid else 1.0 / re
    eye = lambda k: sp.identity(k, format="csr")  # noqa: E731
    kron = sp.kron
    node_from_centre = embed @ c2f  # (n+1) <- n: mean inside, zero rows at the walls
    # u-momentum at u-faces, grid (n-1, n)
    u_to_centres = kron(f2c, eye(n))
    centres_to_u = kron(c2f_d, eye(n))
    u_to_corners = kron(eye(n - 1), node_from_centre)  # corners (n-1, n+1)
    v_to_corners = kron(c2f, embed)
    corners_to_u = kron(eye(n - 1), n2c_d)
    # v-momentum at v-faces, grid (n, n-1)
    v_to_centres = kron(eye(n), f2c)
    centres_to_v = kron(eye(n), c2f_d)
    u_to_corners2 = kron(embed, c2f)  # corners (n+1, n-1)
    v_to_corners2 = kron(node_from_centre, eye(n - 1))
    corners_to_v = kron(n2c_d, eye(n - 1))
    lap_u = kron(lap_f, eye(n)) + kron(eye(n - 1), lap_c)
    lap_v = kron(lap_c, eye(n - 1)) + kron(eye(n), lap_f)
    lid_ghost = np.zeros((n - 1, n))
    lid_ghost[:, -1] = 2.0 * lid / h**2  # ghost u = 2 lid - u_inside above the top row
    lid_ghost = lid_ghost.ravel()
    grad_x, grad_y = centres_to_u, centres_to_v  # pressure gradient: the same differences
    div_x, div_y = -grad_x.T.tocsr(), -grad_y.T.tocsr()
    n_u, n_v, n_p = (n - 1) * n, n * (n - 1), n * n
    keep = sp.diags(np.r_[0.0, np.ones(n_p - 1)])  # drop the (redundant) continuity row of cell 0 ...
    gauge = sp.csr_matrix(([1.0], ([0], [0])), shape=(n_p, n_p))  # ... and pin p there instead
    cont_u, cont_v = (keep @ div_x).tocsr(), (keep @ div_y).tocsr()

    w = np.zeros(n_u + n_v + n_p)
    residual = np.inf
    for step in range(max_steps + 1):
        u, v, p = w[:n_u], w[n_u:n_u + n_v], w[n_u + n_v:]
        uc, vc = u_to_centres @ u, v_to_centres @ v
        u_k, v_k = u_to_corners @ u, v_to_corners @ v
        u_k2, v_k2 = u_to_corners2 @ u, v_to_corners2 @ v
        r_u = centres_to_u @ (uc * uc) + corners_to_u @ (u_k * v_k) + grad_x @ p - nu * (lap_u @ u + lid_ghost)
        r_v = centres_to_v @ (vc * vc) + corners_to_v @ (u_k2 * v_k2) + grad_y @ p - nu * (lap_v @ v)
        r_c = cont_u @ u + cont_v @ v + gauge @ p
        r = np.concatenate([r_u, r_v, r_c])
        residual = float(np.abs(r).max())
        if residual < tol:
            break
        if step == max_steps:
            raise RuntimeError(f"cavity(n={n}, re={re}): Newton did not converge (residual {residual:.3g})")
        j_uu = (centres_to_u @ sp.diags(2 * uc) @ u_to_centres + corners_to_u @ sp.diags(v_k) @ u_to_corners
                - nu * lap_u)
        j_uv = corners_to_u @ sp.diags(u_k) @ v_to_corners
        j_vv = (centres_to_v @ sp.diags(2 * vc) @ v_to_centres + corners_to_v @ sp.diags(u_k2) @ v_to_corners2
                - nu * lap_v)
        j_vu = corners_to_v @ sp.diags(v_k2) @ u_to_corners2
        jac = sp.bmat([[j_uu, j_uv, grad_x], [j_vu, j_vv, grad_y], [cont_u, cont_v, gauge]], format="csc")
        w = w - spla.spsolve(jac, r)
    u = w[:n_u].reshape(n - 1, n)
    v = w[n_u:n_u + n_v].reshape(n, n - 1)
    p = w[n_u + n_v:].reshape(n, n)
    mid = n // 2
    p = p - (p[mid - 1:mid + 1, mid - 1:mid + 1].mean() if n % 2 == 0 else p[mid, mid])
    return CavitySolution(n=n, re=float(re), lid=float(lid), u=u, v=v, p=p, newton_steps=step, residual=residual)
