r"""``mira-node calibrate SCENARIO -o OUT.toml``: measure the reference network's models and write
the numbers the theory needs into a scenario, so theory and execution describe the same system.

What is measured (on the shipped digits data, with the shipped models; every number is exact —
counts, or rational expectations computed with :class:`fractions.Fraction` — except the
correlations, which take one square root)
------------------------------------------------------------------------------------------
* **Declared and weaker model**: accuracy (share of images whose predicted digit is the label)
  on the held-out images (:func:`reference_node.models.heldout`) and on all 1,797; multiply-adds
  per input and the cost ratio weaker / declared.
* **Divergence ρ of each cheap output from the declared model** over all 1,797 images (the
  workload draws its inputs from them): the share of images on which the output differs
  detectably, in exact comparison (any score differs) and in tolerance comparison (some score
  differs by more than τ = :data:`~reference_node.models.TOLERANCE`). For the weaker model
  these are its scores; for random output one seeded draw per image (``--seed``).
* **Consensus claims** (consensus scenarios; m = ``claim.options``, 2 ≤ m ≤ 10): a claim is a
  held-out image, its true digit and m − 1 distinct wrong digits drawn uniformly
  (:func:`reference_node.models.digit_claim`); a model votes for the option whose digit has
  the highest score (the lowest digit on ties). For model k and image i let B_ki be the set of
  wrong digits that beat the true one (higher score, or equal and lower). The model is right on
  the claim iff no distractor is in B_ki, so over the uniform distractor sets
  P(right | i) = C(9 − |B_ki|, m − 1) / C(9, m − 1) and P(k and l right | i) =
  C(9 − |B_ki ∪ B_li|, m − 1) / C(9, m − 1). Averaged over the held-out images (the claim's
  image is uniform on them) these give each verifier model's accuracy a_k, the joint
  accuracies, and the correlation of two models' error indicators
  ρ_kl = (P_kl − a_k a_l) / √(a_k(1 − a_k) a_l(1 − a_l)), reported with its mean over the
  pairs of distinct models.

What is written
---------------
The input scenario with these keys replaced (validated by :func:`mira_theory.scenario.loads`;
``scenario.name`` becomes ``--name``, by default the output file's stem), under a header
comment naming the source scenario (file name and sha256), every model id and every measured
number:

* **audit scenario**: each ``[[deviation]]``'s ``divergence`` := δ_j × ρ_j. The input's δ_j is
  read as the deviator's *share*: the fraction of tasks in its keyed divergent set, on which
  the network's provider runs the cheap output (:mod:`reference_node.models`: the weaker model,
  or random scores for a deviation whose name contains ``random``); ρ_j is that output's
  measured divergence under the scenario's ``audit.comparison``. The modelled δ_j — the
  probability that a deviator's output differs detectably — is then exactly what the network
  realises. For the shipped models ρ = 1 for both outputs in both comparisons (measured here,
  and guaranteed by the training script and a test), so δ_j is written back unchanged and the
  header records the evidence.
* **consensus scenario**: ``verifier.accuracy`` and ``verifier.error_correlation`` of the
  network in which node i runs verifier model i mod K (``committee.run_committee(...,
  models="digits")``), with n = ``network.nodes`` nodes: a = Σ_k n_k a_k / n (the accuracy of a
  random node) and κ = (P₁₁ − a²) / (a(1 − a)), where P₁₁ is the probability that two distinct
  random nodes are both right (two nodes running the same model always vote alike, so
  P₁₁ = [Σ_k n_k(n_k − 1) a_k + Σ_{k≠l} n_k n_l P_kl] / (n(n − 1))). Committee seats are
  drawn at random per claim, so the seats are exchangeable and the number of right votes in a
  committee of h has exactly the mean h·a and variance h·a(1 − a)(1 + (h − 1)κ) of the
  theory's beta-binomial law. Both are rounded to 6 decimals. (The theory also sends every
  honest error to one shared distractor, the worst case for a wrong consensus; the models'
  errors spread over the wrong options, so a wrong consensus is rarer than it predicts.)
  Costs and deviations (e.g. a random guess, accuracy 1/m) are left as they are.
"""

from __future__ import annotations

import hashlib
import math
import re
import tomllib
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import tomli_w

from reference_node import models


class CalibrationError(ValueError):
    """A scenario that cannot be calibrated (the message names the key)."""


@dataclass(frozen=True)
class ModelStats:
    name: str
    id: str
    multiply_adds: int
    accuracy_heldout: Fraction
    accuracy_all: Fraction


@dataclass(frozen=True)
class AuditMeasures:
    declared: ModelStats
    weaker: ModelStats
    images: int
    weaker_differs: dict[str, int]   # comparison -> images on which the weaker output differs detectably
    random_differs: dict[str, int]   # comparison -> images on which one seeded random draw differs
    seed: int

    @property
    def cost_ratio(self) -> Fraction:
        return Fraction(self.weaker.multiply_adds, self.declared.multiply_adds)

    def divergence(self, kind: str, comparison: str) -> Fraction:
        """ρ: the share of images on which the cheap output of this kind differs detectably."""
        differs = self.random_differs if kind == "random" else self.weaker_differs
        return Fraction(differs[comparison], self.images)


@dataclass(frozen=True)
class ConsensusMeasures:
    options: int
    images: int                        # held-out images the claims are drawn from
    verifiers: list[ModelStats]
    claim_accuracy: list[Fraction]     # a_k on m-option claims
    joint: dict[tuple[int, int], Fraction] = field(repr=False)  # (k, l) -> P(both right), k < l
    nodes: int

    def correlation(self, k: int, j: int) -> float:
        a, b = self.claim_accuracy[k], self.claim_accuracy[j]
        p = self.joint[(min(k, j), max(k, j))]
        return float(p - a * b) / math.sqrt(float(a * (1 - a) * b * (1 - b)))

    @property
    def mean_model_correlation(self) -> float:
        K = len(self.verifiers)
        pairs = [(k, j) for k in range(K) for j in range(k + 1, K)]
        return sum(self.correlation(k, j) for k, j in pairs) / len(pairs)

    @property
    def node_counts(self) -> list[int]:
        K = len(self.verifiers)
        return [len(range(k, self.nodes, K)) for k in range(K)]

    @property
    def accuracy(self) -> Fraction:
        """a: the accuracy of a random node (node i runs model i mod K)."""
        n = self.node_counts
        return sum((Fraction(c) * a for c, a in zip(n, self.claim_accuracy)), Fraction(0)) / self.nodes

    @property
    def both_right(self) -> Fraction:
        """P₁₁: two distinct random nodes both right."""
        n, K = self.node_counts, len(self.verifiers)
        total = Fraction(0)
        for k in range(K):
            total += n[k] * (n[k] - 1) * self.claim_accuracy[k]
            for j in range(K):
                if j != k:
                    total += n[k] * n[j] * self.joint[(min(k, j), max(k, j))]
        return total / (self.nodes * (self.nodes - 1))

    @property
    def same_model_share(self) -> Fraction:
        n = self.node_counts
        return Fraction(sum(c * (c - 1) for c in n), self.nodes * (self.nodes - 1))

    @property
    def error_correlation(self) -> float:
        """κ of the network: the correlation of two distinct random nodes' correctness."""
        a = self.accuracy
        if a in (0, 1):
            raise CalibrationError(f"the verifier models' accuracy on these claims is exactly {a}: their error "
                                   "correlation is undefined (every answer right, or every one wrong); use more "
                                   "options or other claims")
        return float(self.both_right - a * a) / float(a * (1 - a))


def _stats(m: models.Model) -> ModelStats:
    pixels, labels = models.digits()
    pred = models.predict(m.scores(pixels))
    right = pred == labels
    held = models.heldout()
    return ModelStats(m.name, m.id, m.multiply_adds, Fraction(int(right[held].sum()), len(held)),
                      Fraction(int(right.sum()), len(labels)))


def _differs(reference: np.ndarray, other: np.ndarray) -> dict[str, int]:
    gap = np.abs(reference - other).max(axis=1)
    return {"exact": int((gap > 0).sum()), "tolerance": int((gap > models.TOLERANCE).sum())}


def measure_audit(seed: int = 0) -> AuditMeasures:
    pixels, _ = models.digits()
    declared, weaker = models.by_name("declared"), models.by_name("weaker")
    ref = declared.scores(pixels)
    rng = np.random.default_rng(seed)
    return AuditMeasures(_stats(declared), _stats(weaker), len(pixels), _differs(ref, weaker.scores(pixels)),
                         _differs(ref, models.random_output(rng, len(pixels))), seed)


def beaten(scores: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """A bool matrix (images × 10): digit d beats the true digit (higher score, or equal and lower)."""
    truth = scores[np.arange(len(labels)), labels][:, None]
    digit = np.arange(models.OUT)[None, :]
    return (scores > truth) | ((scores == truth) & (digit < labels[:, None]))


def measure_consensus(options: int, nodes: int) -> ConsensusMeasures:
    if not 2 <= options <= models.OUT:
        raise CalibrationError(f"claim.options: expected 2..{models.OUT} (claims are built from the 10 digits), "
                               f"found {options}")
    pixels, labels = models.digits()
    held = models.heldout()
    vs = models.verifier_models()
    if nodes < len(vs) or nodes < 2:
        raise CalibrationError(f"network.nodes: expected at least {len(vs)} nodes (one per verifier model), "
                               f"found {nodes}")
    beats = [beaten(m.scores(pixels[held]), labels[held].astype(np.int64)) for m in vs]
    total = math.comb(models.OUT - 1, options - 1)

    def p_right(count: np.ndarray) -> Fraction:
        # Σ_i C(9 − |B_i|, m − 1) / (n · C(9, m − 1))
        ways = sum(math.comb(models.OUT - 1 - int(c), options - 1) for c in count)
        return Fraction(ways, len(count) * total)

    acc = [p_right(b.sum(axis=1)) for b in beats]
    joint = {(k, j): p_right((beats[k] | beats[j]).sum(axis=1))
             for k in range(len(vs)) for j in range(k + 1, len(vs))}
    return ConsensusMeasures(options, len(held), [_stats(m) for m in vs], acc, joint, nodes)


# ----------------------------------------------------------------------------------------
# Writing the scenario
# ----------------------------------------------------------------------------------------


def _f(x: Fraction | float, digits: int = 4) -> str:
    return f"{float(x):.{digits}f}"


def _header(source: Path, source_sha: str, audit: AuditMeasures, consensus: ConsensusMeasures | None,
            written: dict[str, Any], comparison: str | None) -> list[str]:
    d, w = audit.declared, audit.weaker
    n = audit.images
    tol = models.TOLERANCE
    lines = [
        f"Calibrated by `mira-node calibrate` from {source.name}",
        f"  (sha256 {source_sha})",
        "on the reference network's digits models (reference_node/data/models; a model's id is the sha256 of",
        "its weight file).",
        f"Accuracy: share of images predicted right, held-out ({len(models.heldout())}) and all ({n}).",
        f"  declared    {d.id}",
        f"              {d.multiply_adds} multiply-adds; accuracy {_f(d.accuracy_heldout)} held-out, "
        f"{_f(d.accuracy_all)} all",
        f"  weaker      {w.id}",
        f"              {w.multiply_adds} multiply-adds (cost ratio {audit.cost_ratio}); accuracy "
        f"{_f(w.accuracy_heldout)} held-out, {_f(w.accuracy_all)} all",
        f"Divergence from the declared model over all {n} images (exact: any score differs; tolerance: by > {tol}):",
        f"  weaker model   {audit.weaker_differs['exact']}/{n} exact, {audit.weaker_differs['tolerance']}/{n} "
        f"tolerance",
        f"  random output  {audit.random_differs['exact']}/{n} exact, {audit.random_differs['tolerance']}/{n} "
        f"tolerance (one draw per image, seed {audit.seed})",
    ]
    if consensus is not None:
        c = consensus
        lines += [
            f"{c.options}-option claims: a held-out image ({c.images}), its digit and {c.options - 1} distinct wrong "
            "digits drawn uniformly; a model",
            "votes for the option with the highest score. Exact expectations over the images and distractor sets:",
        ]
        for m, a in zip(c.verifiers, c.claim_accuracy):
            lines.append(f"  {m.name:<11} {m.id}")
            lines.append(f"              accuracy on claims {_f(a)} ({m.multiply_adds} multiply-adds; digit accuracy "
                         f"{_f(m.accuracy_heldout)} held-out)")
        lines += [
            f"  error correlation of two distinct models: mean {_f(c.mean_model_correlation)} over "
            f"{len(c.joint)} pairs (min {_f(min(c.correlation(*p) for p in c.joint))}, "
            f"max {_f(max(c.correlation(*p) for p in c.joint))})",
            f"  network of {c.nodes} nodes, node i runs verifier-(i mod {len(c.verifiers)}): two distinct nodes run "
            "the same model",
            f"  with probability {_f(c.same_model_share)}; accuracy a of a random node, κ = correlation of two "
            "distinct nodes' correctness",
        ]
    lines.append("Written:")
    if comparison is not None:
        lines.append(f"  (audit.comparison = {comparison!r}: divergence = the input's share × the measured ρ)")
    for key, value in written.items():
        lines.append(f"  {key} = {value!r}")
    return ["# " + line if line else "#" for line in lines]


@dataclass(frozen=True)
class Result:
    text: str                                  # the calibrated scenario file
    written: dict[str, Any]                    # the keys set from measurements
    audit: AuditMeasures
    consensus: ConsensusMeasures | None


def calibrate(source: str | Path, name: str, seed: int = 0) -> Result:
    """The calibrated scenario of a scenario file, and the measurements."""
    import mira_theory as mt

    path = Path(source)
    scenario = mt.load(path)
    audit = measure_audit(seed)
    consensus = None
    changes: dict[str, Any] = {"scenario.name": name,
                               "scenario.description": f"{scenario.description} (calibrated on the reference "
                                                       "network's digits models)"}
    comparison = None
    if scenario.game == "audit":
        comparison = scenario.audit.comparison
        for dev in scenario.deviations:
            rho = audit.divergence(models.deviation_kind(dev.name), comparison)
            changes[f"deviation.{dev.name}.divergence"] = float(Fraction(dev.divergence) * rho) if rho != 1 \
                else dev.divergence
    elif scenario.game == "consensus":
        consensus = measure_consensus(scenario.claim.options, scenario.network.nodes)
        changes["verifier.accuracy"] = round(float(consensus.accuracy), 6)
        changes["verifier.error_correlation"] = round(consensus.error_correlation, 6)
    else:
        raise CalibrationError(f"scenario.game: expected 'audit' or 'consensus', found {scenario.game!r}")
    calibrated = scenario.replace(changes)  # validates the new values
    body = _substitute(scenario.source, changes)
    if body is None:  # a layout the line editor does not handle: canonical TOML (comments are lost)
        body = calibrated.source
    written = {k: v for k, v in changes.items() if not k.startswith("scenario.")}
    text = "\n".join(_header(path, scenario.sha256, audit, consensus, written, comparison)) + "\n" + body
    mt.scenario.loads(text, origin=f"calibrated {path.name}")  # the file as written is a valid scenario
    return Result(text, written, audit, consensus)


_TABLE = re.compile(r"^\s*(\[\[?)\s*([A-Za-z0-9_-]+)\s*\]\]?\s*(#.*)?$")
_ARRAY_NAME = re.compile(r'^\s*name\s*=\s*"([^"\\]*)"\s*(#.*)?$')


def _substitute(source: str, changes: dict[str, Any]) -> str | None:
    """The source text with the changed values replaced in place (comments and layout kept), or None if a
    key is not a plain ``key = value`` line of its table, or the result does not parse to the intended data."""
    lines = source.split("\n")
    context: list[tuple[str, int]] = []  # per line: (table, index of the array table or -1)
    names: dict[tuple[str, int], str] = {}
    table, index, counts = "", -1, {}
    for line in lines:
        m = _TABLE.match(line)
        if m:
            table = m.group(2)
            if m.group(1) == "[[":
                counts[table] = counts.get(table, -1) + 1
                index = counts[table]
            else:
                index = -1
        elif index >= 0 and (n := _ARRAY_NAME.match(line)):
            names[(table, index)] = n.group(1)
        context.append((table, index))
    for dotted, value in changes.items():
        parts = dotted.split(".")
        if len(parts) == 2:
            want = [(parts[0], -1)]
        else:
            want = [key for key, nm in names.items() if key[0] == parts[0] and nm == parts[1]]
        key = parts[-1]
        pattern = re.compile(rf"^(\s*{re.escape(key)}\s*=\s*)(\"(?:[^\"\\]|\\.)*\"|[^#\s]+)(\s*(#.*)?)$")
        hits = [i for i, line in enumerate(lines) if context[i] in want and pattern.match(line)]
        if len(want) != 1 or len(hits) != 1:
            return None
        old = pattern.match(lines[hits[0]]).group(2)
        if tomllib.loads(f"v = {old}").get("v") == value:
            continue  # the same value: keep its spelling
        formatted = tomli_w.dumps({"v": value}).strip()[len("v = "):]
        lines[hits[0]] = pattern.sub(lambda m, f=formatted: m.group(1) + f + m.group(3), lines[hits[0]])
    text = "\n".join(lines)
    expected = tomllib.loads(source)
    for dotted, value in changes.items():
        parts = dotted.split(".")
        if len(parts) == 2:
            expected[parts[0]][parts[1]] = value
        else:
            for t in expected[parts[0]]:
                if t.get("name") == parts[1]:
                    t[parts[2]] = value
    try:
        return text if tomllib.loads(text) == expected else None
    except tomllib.TOMLDecodeError:
        return None


def digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()
