"""Provider strategies: which action (``honest`` or a deviation name) to take on each task.

The interface is two methods, so issue 6 can add learners without touching the provider:

* ``choose() -> str``: the action for the next task;
* ``observe(action, payoff)``: a realised payoff of a task on which ``action`` was taken.
  Payoffs are additive: a provider reports ``R − c`` when the task is committed and, if it
  is later slashed, a correction ``−(L + R)``; a learner sees each as one observation.
"""

from __future__ import annotations

import math
from typing import Protocol

import numpy as np


class Strategy(Protocol):
    name: str

    def choose(self) -> str: ...

    def observe(self, action: str, payoff: float) -> None: ...


class Fixed:
    """Always the same action (``honest`` or one deviation)."""

    def __init__(self, action: str):
        self.action = action
        self.name = action

    def choose(self) -> str:
        return self.action

    def observe(self, action: str, payoff: float) -> None:
        return None


class Mixed:
    """Deviate with probability t, else honest."""

    def __init__(self, deviation: str, t: float, rng: np.random.Generator):
        self.deviation, self.t, self.rng = deviation, t, rng
        self.name = f"mixed:{deviation}:{t:g}"

    def choose(self) -> str:
        return self.deviation if self.rng.random() < self.t else "honest"

    def observe(self, action: str, payoff: float) -> None:
        return None


class Hedge:
    """Exponential weights with bandit feedback (Exp3): importance-weighted payoff estimates.

    p = (1 − γ)·softmax(η·Ĝ) + γ/K, where Ĝ_a accumulates payoff/p_a of the observations of a
    (payoffs scaled by ``scale`` to about [−1, 1]).
    """

    def __init__(self, actions: list[str], rng: np.random.Generator, eta: float = 0.05, gamma: float = 0.05,
                 scale: float = 1.0):
        self.actions = list(actions)
        self.rng, self.eta, self.gamma, self.scale = rng, eta, gamma, max(scale, 1e-12)
        self.gain = np.zeros(len(self.actions))
        self.name = "hedge"

    def probabilities(self) -> np.ndarray:
        g = self.eta * (self.gain - self.gain.max())
        w = np.exp(g)
        return (1 - self.gamma) * w / w.sum() + self.gamma / len(self.actions)

    def choose(self) -> str:
        p = self.probabilities()
        return self.actions[int(min(np.searchsorted(np.cumsum(p), self.rng.random() * p.sum()), len(p) - 1))]

    def observe(self, action: str, payoff: float) -> None:
        if action not in self.actions or not math.isfinite(payoff):
            return
        i = self.actions.index(action)
        self.gain[i] += (payoff / self.scale) / self.probabilities()[i]


def parse_mix(text: str | None, deviations: tuple[str, ...], providers: int) -> list[str]:
    """``honest=6,weaker-model=2,mixed:weaker-model:0.3=1,hedge=1`` -> one spec per provider.

    Raises ValueError with a message naming the bad item.
    """
    if not text:
        return ["honest"] * providers
    out: list[str] = []
    for item in text.split(","):
        name, sep, count = item.strip().partition("=")
        if not sep:
            raise ValueError(f"--mix item {item!r}: expected STRATEGY=COUNT")
        try:
            n = int(count)
        except ValueError:
            raise ValueError(f"--mix item {item!r}: expected an integer count, found {count!r}") from None
        if n < 0:
            raise ValueError(f"--mix item {item!r}: expected a non-negative count")
        check_spec(name, deviations)
        out += [name] * n
    if len(out) != providers:
        raise ValueError(f"--mix: expected counts summing to --providers {providers}, found {len(out)}")
    return out


def check_spec(spec: str, deviations: tuple[str, ...]) -> None:
    known = ("honest", *deviations)
    if spec in known or spec == "hedge":
        return
    if spec.startswith("mixed:"):
        parts = spec.split(":")
        if len(parts) == 3 and parts[1] in deviations:
            try:
                t = float(parts[2])
            except ValueError:
                t = math.nan
            if 0 <= t <= 1:
                return
        raise ValueError(f"strategy {spec!r}: expected mixed:<deviation>:<t> with a deviation of the params "
                         f"file ({', '.join(deviations) or 'none'}) and t in [0, 1]")
    raise ValueError(f"strategy {spec!r}: expected one of {', '.join(known)}, hedge or mixed:<deviation>:<t>")


def make(spec: str, deviations: tuple[str, ...], rng: np.random.Generator, scale: float = 1.0) -> Strategy:
    check_spec(spec, deviations)
    if spec == "hedge":
        return Hedge(["honest", *deviations], rng, scale=scale)
    if spec.startswith("mixed:"):
        _, dev, t = spec.split(":")
        return Mixed(dev, float(t), rng)
    return Fixed(spec)
