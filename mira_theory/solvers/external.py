"""The general bimatrix solvers the closed forms are checked against: nashpy and pygambit.

Both take the payoff arrays of a game built by a game module (``bimatrix(...)``) and return
the list of equilibria as (row mix, column mix) numpy pairs, so they can be compared with the
toolkit's own answers point by point.
"""

from __future__ import annotations

import warnings
from fractions import Fraction

import numpy as np


def nashpy_equilibria(A: np.ndarray, B: np.ndarray,
                      method: str = "vertex_enumeration") -> list[tuple[np.ndarray, np.ndarray]]:
    """Equilibria from nashpy (``vertex_enumeration`` or ``support_enumeration``)."""
    import nashpy

    game = nashpy.Game(np.asarray(A, float), np.asarray(B, float))
    with warnings.catch_warnings():
        # nashpy warns on degenerate games; the caller compares answers itself
        warnings.simplefilter("ignore")
        return [(np.asarray(x, float), np.asarray(y, float)) for x, y in getattr(game, method)()]


def _gambit_game(A: np.ndarray, B: np.ndarray, exact: bool):
    import pygambit as gbt

    if exact:
        # floats converted exactly (Fraction of a binary float is exact), so ties stay ties
        A = np.vectorize(Fraction, otypes=[object])(np.asarray(A, float))
        B = np.vectorize(Fraction, otypes=[object])(np.asarray(B, float))
    factory = getattr(gbt, "StrategicGame", None) or gbt.Game  # pygambit ≥ 17 / 16.x
    return factory.from_arrays(A, B)


def pygambit_equilibria(A: np.ndarray, B: np.ndarray, method: str = "enummixed",
                        exact: bool = True) -> list[tuple[np.ndarray, np.ndarray]]:
    """Equilibria from pygambit: ``enummixed`` (all extreme equilibria) or ``lcp``."""
    import pygambit as gbt

    game = _gambit_game(A, B, exact)
    solver = {"enummixed": gbt.nash.enummixed_solve, "lcp": gbt.nash.lcp_solve}[method]
    result = solver(game, rational=exact)
    m, n = np.shape(A)
    out = []
    for eq in result.equilibria:
        x = np.array([float(eq["1"][str(i + 1)]) for i in range(m)])
        y = np.array([float(eq["2"][str(j + 1)]) for j in range(n)])
        out.append((x, y))
    return out
