"""The point object ``p`` handed to every residual, value and reference callable.

``p.x`` is a coordinate column (N, 1); ``p.u`` an output column (N, 1);
``p.u_xt`` the derivative of ``u`` by ``x`` then ``t``; with longer coordinate
names ``p.u_tau`` (the suffix is read longest name first) or, always,
``p.d("u", "r", "r")``; ``p.kappa`` an unknown
coefficient.  Derivatives are computed lazily with ``torch.autograd.grad``
(``create_graph=True`` so they can be trained through) and cached per batch;
mixed partials commute, so ``u_xt`` and ``u_tx`` share one cache entry.  Each
autograd call returns the full gradient row (all coordinates at once), so
``u_xx`` and ``u_xt`` cost one backward pass together.

On the points of a boundary term, ``p.nx`` (``n`` + a coordinate name) is a
component of the domain's outward unit normal and ``p.u_n`` the normal
derivative ∇u · n of an output (unless ``n`` names a coordinate, when
``p.u_n`` is ∂u/∂n as always).
"""

from __future__ import annotations

from typing import Callable

import torch

from .errors import ProblemError


class Points:
    """Named coordinates, outputs, derivatives and unknowns of one point batch."""

    def __init__(
        self,
        coords: torch.Tensor,
        coord_names: list[str],
        output_names: list[str],
        model: Callable[[torch.Tensor], torch.Tensor] | None = None,
        unknowns: dict[str, torch.Tensor] | None = None,
        where: str = "",
        normals: Callable[[], torch.Tensor] | None = None,
    ):
        self._coords = coords
        self._normals = normals
        self._coord_names = list(coord_names)
        self._output_names = list(output_names)
        self._model = model
        self._unknowns = dict(unknowns or {})
        self._where = where
        self._outputs: torch.Tensor | None = None
        self._cache: dict[tuple[int, tuple[int, ...]], torch.Tensor] = {}

    # -- plain access -------------------------------------------------------
    @property
    def coords(self) -> torch.Tensor:
        """All coordinates, shape (N, d), columns in the box's order."""
        return self._coords

    @property
    def outputs(self) -> torch.Tensor:
        """All network outputs, shape (N, m), columns in the problem's order."""
        if self._outputs is None:
            if self._model is None:
                raise ProblemError(
                    f"{self._where}: outputs are not available here (only coordinates "
                    f"{self._coord_names} and unknowns {list(self._unknowns)})"
                )
            self._outputs = self._model(self._coords)
        return self._outputs

    def __len__(self) -> int:
        return self._coords.shape[0]

    def __getattr__(self, name: str) -> torch.Tensor:
        if name.startswith("_"):
            raise AttributeError(name)
        if name in self._coord_names:
            i = self._coord_names.index(name)
            return self._coords[:, i : i + 1]
        if name in self._output_names:
            j = self._output_names.index(name)
            return self.outputs[:, j : j + 1]
        if name in self._unknowns:
            return self._unknowns[name]
        if name[:1] == "n" and name[1:] in self._coord_names:
            i = self._coord_names.index(name[1:])
            return self._normal()[:, i: i + 1]
        if name.endswith("_n") and name[:-2] in self._output_names and "n" not in self._coord_names:
            return self._normal_derivative(name[:-2])
        output, path = self._parse_derivative(name)
        return self.d(output, *path)

    def _parse_derivative(self, name: str) -> tuple[str, list[str]]:
        for output in sorted(self._output_names, key=len, reverse=True):
            prefix = output + "_"
            if name.startswith(prefix) and len(name) > len(prefix):
                path, rest = split_coordinates(name[len(prefix):], self._coord_names)
                if rest:
                    raise ProblemError(
                        f"{self._where}: p.{name}: {rest[0]!r} is not a coordinate "
                        f"(coordinates: {', '.join(self._coord_names)}); "
                        f'where names run together ambiguously use p.d("{output}", "name", ...)'
                    )
                return output, path
        known = self._coord_names + self._output_names + list(self._unknowns)
        raise ProblemError(
            f"{self._where}: p.{name} is not a coordinate, output, unknown or derivative "
            f"(known names: {', '.join(known)}; derivatives look like p.{self._output_names[0]}_"
            f"{self._coord_names[0]})"
            if self._output_names
            else f"{self._where}: p.{name} is unknown (known names: {', '.join(known)})"
        )

    # -- normals ------------------------------------------------------------
    def _normal(self) -> torch.Tensor:
        if self._normals is None:
            raise ProblemError(f"{self._where}: p.n{self._coord_names[0]}: normals exist only on boundary points "
                               f"(the points of a pb.Boundary or pb.Initial term)")
        return self._normals()

    def _normal_derivative(self, output: str) -> torch.Tensor:
        """∇u · n: the gradient row of ``output`` dotted with the outward normal."""
        n = self._normal()
        return sum(self.d(output, c) * n[:, i: i + 1] for i, c in enumerate(self._coord_names))

    # -- derivatives --------------------------------------------------------
    def d(self, output: str, *coords: str) -> torch.Tensor:
        """Derivative of ``output`` by ``coords`` in turn, shape (N, 1)."""
        if output not in self._output_names:
            raise ProblemError(f"{self._where}: p.d({output!r}, ...): outputs are {self._output_names}")
        for c in coords:
            if c not in self._coord_names:
                raise ProblemError(f"{self._where}: p.d(..., {c!r}): coordinates are {self._coord_names}")
        j = self._output_names.index(output)
        if not coords:
            return self.outputs[:, j : j + 1]
        key = tuple(sorted(self._coord_names.index(c) for c in coords))
        return self._derivative(j, key)

    def _derivative(self, j: int, key: tuple[int, ...]) -> torch.Tensor:
        if not key:
            return self.outputs[:, j : j + 1]
        if (j, key) not in self._cache:
            base = self._derivative(j, key[:-1])
            if not self._coords.requires_grad:
                raise ProblemError(f"{self._where}: derivatives are not available on data points")
            if base.requires_grad:
                (grad,) = torch.autograd.grad(
                    base, self._coords, torch.ones_like(base), create_graph=True, allow_unused=True
                )
            else:
                grad = None
            if grad is None:
                grad = torch.zeros_like(self._coords)
            for i in range(self._coords.shape[1]):
                self._cache.setdefault((j, tuple(sorted(key[:-1] + (i,)))), grad[:, i : i + 1])
        return self._cache[(j, key)]


def split_coordinates(suffix: str, names: list[str]) -> tuple[list[str], str]:
    """``"xtau"`` → (["x", "tau"], ""): the suffix of ``p.u_xtau`` read as coordinate names, longest name first
    at each position (so ``tau`` wins over ``t``); what could not be read is returned as the rest."""
    by_length = sorted(names, key=len, reverse=True)
    path = []
    while suffix:
        name = next((n for n in by_length if suffix.startswith(n)), None)
        if name is None:
            return path, suffix
        path.append(name)
        suffix = suffix[len(name):]
    return path, ""


def labelled(p: Points, where: str) -> Points:
    """``p`` with its errors naming ``where`` (a term evaluated on points it shares with another term); a
    function, not a method: every public name of ``p`` is one a problem cannot use for a coordinate."""
    p._where = where
    return p
