"""Second copies of a formula are tested equal to the first (DESIGN.md: one formula, one home)."""

import numpy as np
import pytest

from mira_theory.games import consensus as c


@pytest.mark.parametrize(
    "N, m, tau, a, kappa, a_j",
    [
        pytest.param(3, 2, 0.6, 0.95, 0.2, 0.5, id="binary-N3"),
        pytest.param(7, 4, 0.7, 0.92, 0.15, 0.25, id="four-option-N7"),
        pytest.param(11, 3, 0.6, 0.9, 0.0, 0.5, id="independent-N11"),
        pytest.param(30, 4, 0.55, 0.8, 0.3, 0.3, id="weak-majority-N30"),
        pytest.param(9, 2, 1.0, 0.9, 0.5, 0.7, id="unanimous-N9"),
    ],
)
def test_vectorized_agreement_curves_equal_committee_outcome(N, m, tau, a, kappa, a_j):
    """agreement_curves(exact=True) is committee_outcome vectorized over the deviator count k."""
    ph, pj = c.agreement_curves(N, m, tau, a, kappa, a_j, exact=True)
    for k in range(N):
        honest = c.committee_outcome(N - k, {"d": (k, a_j)} if k else {}, m, tau, a, kappa)
        deviating = c.committee_outcome(N - 1 - k, {"d": (k + 1, a_j)}, m, tau, a, kappa)
        assert ph[k] == pytest.approx(honest.agree_honest, abs=1e-12)
        assert pj[k] == pytest.approx(deviating.agree_deviation["d"], abs=1e-12)


def test_bernstein_evaluators_agree():
    """The windowed O(√n) evaluation of D(σ) equals the full weight-matrix product."""
    rng = np.random.default_rng(7)
    delta = rng.normal(size=301)
    D = c._BinomialMean(delta)
    sig = np.linspace(0, 1, 57)
    assert np.allclose(D.many(sig), [D(s) for s in sig], atol=1e-12)
