"""Provider strategies: which action (``honest`` or a deviation name) to take on each task.

The interface is two methods, so issue 6 can add learners without touching the provider:

* ``choose() -> str``: the action for the next task;
* ``observe(action, payoff)``: a realised payoff of a task on which ``action`` was taken.
  Payoffs are additive: a provider reports ``R − c`` when the task is committed and, if it
  is later slashed, a correction ``−(L + R)``; a learner sees each as one observation.

A strategy may also have ``choose_many(n) -> list[str]``: exactly the actions of n calls of
``choose()`` with no observation between them (the same random numbers, drawn as one array of
n, and the same state afterwards), the way a provider chooses a batch; the provider uses it
where it exists. Every strategy here has it (a test compares it with ``choose()``).
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

    learns = False  # observe() changes nothing: the next choices do not depend on feedback

    def __init__(self, action: str):
        self.action = action
        self.name = action

    def choose(self) -> str:
        return self.action

    def choose_many(self, n: int) -> list[str]:
        return [self.action] * n

    def observe(self, action: str, payoff: float) -> None:
        return None


class Mixed:
    """Deviate with probability t, else honest."""

    learns = False

    def __init__(self, deviation: str, t: float, rng: np.random.Generator):
        self.deviation, self.t, self.rng = deviation, t, rng
        self.name = f"mixed:{deviation}:{t:g}"

    def choose(self) -> str:
        return self.deviation if self.rng.random() < self.t else "honest"

    def choose_many(self, n: int) -> list[str]:
        dev, t = self.deviation, self.t
        return [dev if r < t else "honest" for r in self.rng.random(n).tolist()]

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

    def choose_many(self, n: int) -> list[str]:
        p = self.probabilities()  # changes only on observe()
        picks = np.minimum(np.searchsorted(np.cumsum(p), self.rng.random(n) * p.sum()), len(p) - 1)
        return [self.actions[i] for i in picks.tolist()]

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


# ----------------------------------------------------------------------------------------
# Learners for issue 6 (experiments): each keeps the probabilities it chose with frozen
# until a new observation arrives, so an observation of a task chosen in the same batch is
# importance-weighted by the probability it was chosen with (exact in-process, where a
# provider chooses a batch of actions, then observes their payoffs).
# ----------------------------------------------------------------------------------------


class _Learner:
    """Shared machinery: actions, frozen probabilities, sampling."""

    def __init__(self, actions: list[str], rng: np.random.Generator):
        self.actions = list(actions)
        self.rng = rng
        self.p = np.full(len(self.actions), 1.0 / len(self.actions))
        self._stale = False

    def probabilities(self) -> np.ndarray:  # pragma: no cover - overridden
        raise NotImplementedError

    def _fresh(self) -> None:
        if self._stale:
            self.p = self.probabilities()
            self._stale = False

    def _sample(self) -> int:
        self._fresh()
        cum = np.cumsum(self.p)
        return int(min(np.searchsorted(cum, self.rng.random() * cum[-1], side="right"), len(self.p) - 1))

    def _sample_many(self, n: int) -> list[int]:
        """n action indices drawn with the frozen probabilities (one random number each)."""
        if n == 0:
            return []
        self._fresh()
        cum = np.cumsum(self.p)
        picks = np.searchsorted(cum, self.rng.random(n) * cum[-1], side="right")
        return np.minimum(picks, len(self.p) - 1).tolist()

    def choose(self) -> str:
        return self.actions[self._sample()]

    def choose_many(self, n: int) -> list[str]:
        return [self.actions[i] for i in self._sample_many(n)]

    def _index(self, action: str, payoff: float) -> int | None:
        if action not in self.actions or not math.isfinite(payoff):
            return None
        self._stale = True
        return self.actions.index(action)


class BanditHedge(_Learner):
    """Exponential weights from bandit feedback, as :func:`mira_theory.dynamics.simulate_hedge`.

    x = softmax(z); each task played with action i updates z_i += η·(r − b)/x_i (r its realised
    payoff in the scenario's currency, b the baseline), the importance-weighted estimate
    û = b + 1{i}(r − b)/x_i of the dynamics module without its uniform (softmax-invariant) b.
    A task's payoff arrives in parts (R − c at commit, −(L + R) if slashed): the −b/x_i is
    applied when the action is chosen, every part when it is observed. Spec ``hedge:<η>:<b>``.
    """

    def __init__(self, actions: list[str], rng: np.random.Generator, eta: float, baseline: float):
        super().__init__(actions, rng)
        self.eta, self.baseline = eta, baseline
        self.z = np.zeros(len(self.actions))
        self.name = f"hedge:{eta:g}:{baseline:g}"

    def probabilities(self) -> np.ndarray:
        w = np.exp(self.z - self.z.max())
        return w / w.sum()

    def choose(self) -> str:
        i = self._sample()
        self.z[i] -= self.eta * self.baseline / self.p[i]  # p stays frozen until an observation
        return self.actions[i]

    def choose_many(self, n: int) -> list[str]:
        picks = self._sample_many(n)
        # p stays frozen until an observation; z_i moves by −η·b/x_i per pick, in the order drawn
        np.subtract.at(self.z, picks, self.eta * self.baseline / self.p[picks])
        return [self.actions[i] for i in picks]

    def observe(self, action: str, payoff: float) -> None:
        i = self._index(action, payoff)
        if i is not None:
            self.z[i] += self.eta * payoff / self.p[i]


class RegretMatching(_Learner):
    """Unconditional regret matching (Hart & Mas-Colell 2000) from bandit feedback.

    Plays p = (1 − γ)·R⁺/ΣR⁺ + γ/K (uniform when no regret is positive); an observation r of
    action i adds û − r to the regrets, with û_k = 1{k = i}·r/p_i the importance-weighted
    payoff estimate (E û = u, so E ΔR = u − p·u: the mean-field of
    :func:`mira_theory.dynamics.regret_matching_path`). Spec ``regret:<γ>``.
    """

    def __init__(self, actions: list[str], rng: np.random.Generator, gamma: float = 0.05):
        super().__init__(actions, rng)
        self.gamma = gamma
        self.regret = np.zeros(len(self.actions))
        self.name = f"regret:{gamma:g}"

    def probabilities(self) -> np.ndarray:
        pos = np.maximum(self.regret, 0.0)
        s = pos.sum()
        x = pos / s if s > 0 else np.full(len(pos), 1.0 / len(pos))
        return (1.0 - self.gamma) * x + self.gamma / len(pos)

    def observe(self, action: str, payoff: float) -> None:
        i = self._index(action, payoff)
        if i is not None:
            est = np.zeros(len(self.actions))
            est[i] = payoff / self.p[i]
            self.regret += est - payoff


class LogitResponse(_Learner):
    """Logit response to estimated payoffs: p = softmax(λ·û), û_a the mean realised payoff per
    task of action a so far (R − c at commit plus any slash correction, over the tasks on which
    a was played; 0 before the first). Every action keeps positive probability, so û → u and
    p → σ(λ·u): :func:`mira_theory.dynamics.logit_response`. Spec ``logit:<λ>``.
    """

    def __init__(self, actions: list[str], rng: np.random.Generator, precision: float = 10.0):
        super().__init__(actions, rng)
        self.precision = precision
        self.total = np.zeros(len(self.actions))
        self.count = np.zeros(len(self.actions))
        self.name = f"logit:{precision:g}"

    def probabilities(self) -> np.ndarray:
        u = self.total / np.maximum(self.count, 1.0)
        g = self.precision * u
        w = np.exp(g - g.max())
        return w / w.sum()

    def choose(self) -> str:
        i = self._sample()
        self.count[i] += 1.0  # one task of action i: its payoff parts arrive as observations
        return self.actions[i]

    def choose_many(self, n: int) -> list[str]:
        picks = self._sample_many(n)
        # one task of action i per pick: its payoff parts arrive as observations
        self.count += np.bincount(picks, minlength=len(self.actions))
        return [self.actions[i] for i in picks]

    def observe(self, action: str, payoff: float) -> None:
        i = self._index(action, payoff)
        if i is not None:
            self.total[i] += payoff


LEARNERS = {"hedge": 2, "regret": 1, "logit": 1}  # spec prefix -> number of numeric parameters


def _learner_params(spec: str) -> tuple[str, list[float]] | None:
    """``hedge:<η>:<b>`` / ``regret:<γ>`` / ``logit:<λ>`` -> (rule, numbers), else None."""
    head, _, rest = spec.partition(":")
    if head not in LEARNERS or not rest:
        return None
    parts = rest.split(":")
    try:
        values = [float(v) for v in parts]
    except ValueError:
        values = []
    ok = len(values) == LEARNERS[head] and all(math.isfinite(v) for v in values)
    if ok and head == "hedge":
        ok = values[0] > 0
    elif ok and head == "regret":
        ok = 0 < values[0] <= 1
    elif ok and head == "logit":
        ok = values[0] >= 0
    if not ok:
        forms = {"hedge": "hedge:<η>:<baseline> with η > 0", "regret": "regret:<γ> with 0 < γ ≤ 1",
                 "logit": "logit:<λ> with λ ≥ 0"}
        raise ValueError(f"strategy {spec!r}: expected {forms[head]}")
    return head, values


_check_spec_fixed = check_spec
_make_fixed = make


def check_spec(spec: str, deviations: tuple[str, ...]) -> None:  # noqa: F811 - extends the one above
    if _learner_params(spec) is not None:
        return
    try:
        _check_spec_fixed(spec, deviations)
    except ValueError as err:
        raise ValueError(f"{err}, or a learner hedge:<η>:<b>, regret:<γ>, logit:<λ>") from None


def make(spec: str, deviations: tuple[str, ...], rng: np.random.Generator,  # noqa: F811
         scale: float = 1.0) -> Strategy:
    learner = _learner_params(spec)
    if learner is None:
        return _make_fixed(spec, deviations, rng, scale)
    rule, values = learner
    actions = ["honest", *deviations]
    if rule == "hedge":
        return BanditHedge(actions, rng, eta=values[0], baseline=values[1])
    if rule == "regret":
        return RegretMatching(actions, rng, gamma=values[0])
    return LogitResponse(actions, rng, precision=values[0])


class VerifierHedge:
    """The verifiers' common sampling rate learned by Hedge over {audit, no-audit}.

    Full-information expected-payoff feedback: after a batch whose commitments took the actions
    ``counts`` (honest / deviation name -> tasks), the verifier's expected payoff per task of each
    column is v = Bᵀ·x (x the batch's action shares, B the verifier's payoffs of
    ``mira_theory.games.audit.bimatrix``, rows ``actions``, columns audit / no-audit), and the
    log-weights move by η·n·v (n tasks: η is per task, as the providers'). ``rate()`` = the audit
    weight, fixed for the next batch. Realised audit outcomes are not used (too rare near q*);
    x is the batch's ground-truth actions (``commit.action``, experiment metadata no protocol
    decision reads), so this is the full-information learner of the two-population dynamics,
    not something a deployed verifier could run.
    """

    def __init__(self, actions: list[str], payoffs: list[list[float]], eta: float, initial: float):
        if not 0.0 < initial < 1.0:
            raise ValueError(f"initial sampling rate: expected 0 < q < 1, found {initial!r}")
        self.actions = list(actions)
        self.B = np.asarray(payoffs, float)
        if self.B.shape != (len(self.actions), 2):
            raise ValueError(f"verifier payoffs: expected shape ({len(self.actions)}, 2), found {self.B.shape}")
        self.eta = float(eta)
        self.z = np.log([initial, 1.0 - initial])
        self.name = f"verifier-hedge:{eta:g}"

    def rate(self) -> float:
        w = np.exp(self.z - self.z.max())
        return float(w[0] / w.sum())

    def observe(self, counts: dict[str, int]) -> None:
        n = np.array([counts.get(a, 0) for a in self.actions], float)
        if n.sum() <= 0:
            return
        self.z = self.z + self.eta * (n @ self.B)  # = η·n·Bᵀx
        self.z = self.z - self.z.max()
