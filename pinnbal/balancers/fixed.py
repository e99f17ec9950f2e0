"""Fixed weights: w_k = the term's ``weight=`` (default 1), never changed.

The baseline every comparison needs.  Override per run with
``--weights pde=1,ic=100``.
"""

from __future__ import annotations

from .base import Balancer


class Fixed(Balancer):
    name = "fixed"
    summary = "constant weights from each term's weight= (or --weights)"
    options: dict = {}

    def due(self, step: int) -> bool:
        return False
