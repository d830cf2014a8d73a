r"""Experiments: a scenario's predictions against an executed run of the reference network.

Flow (DESIGN.md): scenario → solve → export parameters → the reference network runs with
them → the run's event log is read (only the log: :func:`reference_node.events.iter_events`
and :func:`reference_node.events.summarize`) → every prediction of the exported parameters
file is compared with what the log shows, with the statistical test of :mod:`mira_theory.stats`
named for each, at ``level`` (default 0.99), the family corrected by Holm (``stats.adjust``).

What is compared (audit game)
-----------------------------
- **Detection per task** of each deviation d_j (``predictions.deviations.<j>.detection_per_task``):
  the tasks on which action j was taken (``commit.action``, pooled over providers) and the
  upheld resolves of those tasks; exact binomial test. Audits depend on the task only, so the
  count is Binomial(n_j, d_j) even when an adaptive provider chose the actions.
- **Honest false-slash rate** f (``predictions.honest.false_slash_per_task``): zero-event rule
  when f = 0, exact binomial otherwise.
- **Payoff per task** of each non-adaptive strategy (fixed honest / deviation, ``mixed:j:t``):
  per task x = fee − cost − [slashed]·(slash + fee) (the realised payoff ``summarize`` reports,
  per task), from Σx and Σx² computed while streaming the log; one-sample t test against
  U_h, U_j, or (1 − t)·U_h + t·U_j for ``mixed:j:t``. Adaptive strategies' payoffs depend on
  their path and are not compared.
- **The cheating episode**: the deviating tasks up to and including the first detected one is
  Geometric(d_j) on {1, 2, …} (mean 1/d_j, the 1/d of the model's episode 1/d + λT).
  Memorylessness makes every gap between consecutive detections of a stationary provider
  (fixed or mixed) a further draw, so all gaps are pooled: the mean by a one-sample t test
  (``stats.mean_payoff``) against 1/d_j, the distribution by ``stats.chi_square`` over bins
  of equal predicted probability. The λT part (tasks committed while a slash is not yet
  final) is not tested: the reference ledger makes a slash final when the arbiter's verdict is
  written, so the network's latency is its audit pipeline's (in-process: the rest of a batch),
  not the scenario's T; the report gives the observed tasks-before-settled-slash next to it.
- **Adaptive providers** (``--adaptive``): learners of :mod:`reference_node.strategies` that
  learn from their realised payoffs only. The honest share of their actions in ``windows``
  windows of their tasks is compared with the rule's prediction from
  :mod:`mira_theory.dynamics`:
  ``hedge`` (spec ``hedge:η:b``, exactly the update of ``dynamics.simulate_hedge``, bandit
  feedback): per window a normal predictive test against ``simulations`` simulated providers
  (z = (obs − m)/s with s² = Var_sim(window mean)/K + E[x̄(1 − x̄)]/(wK) + MC error², K
  adaptive providers pooled, w tasks each per window); ``regret`` (``regret:γ``) and ``logit``
  (``logit:λ``), in-process: per window ``stats.monte_carlo`` of the K-pooled honest share
  against simulated runs of the network's own batched learners
  (``dynamics.simulate_bandit_learners``, enough runs for the Holm-adjusted tests to be able to
  fail); over HTTP (no batch structure to simulate) the window shares are shown against the
  mean-field path (regret matching, mixed with the learner's exploration γ) or the logit
  response σ(λ·u(q)). For both rules the final window is also tested on its side of 1/2
  (honest majority iff q > q* of the parameters file), by the exact one-sided
  binomial test of the composite null (p = P(Bin(n, ½) ≤ x) for a predicted honest majority),
  and only when q lies outside the band ``dynamics.resolvable_interval`` says the run cannot
  resolve (ratios of that band to the true q*, placed around the file's q*).
- **Adaptive verifiers** (``--adaptive hedge --adaptive-verifiers``): every provider is a
  bandit-Hedge learner and the verifiers' common rate q_t is learned too
  (``reference_node.strategies.VerifierHedge``, from the rate in force; logged on each batch's
  settle event). The prediction is :func:`predict_two_population`: simulated runs of exactly
  the network's process (:func:`mira_theory.dynamics.simulate_hedge_two_population`), as many as
  it takes for the tests to be able to fail after Holm (R ≥ 4m/α). Compared, by
  ``stats.monte_carlo`` (two-sided rank p-value among the simulated runs): per window of
  batches the task-weighted mean q̄_w of q_t and the deviation share t̄_w; the whole trajectory
  jointly (``stats.monte_carlo_joint``); the whole run's offsets q̄ − q° and t̄ − t° from the
  parameters file's mixed equilibrium against the simulated offsets from the game's own (so a
  wrong (q°, t°) fails once the run is long enough to tell). Detection is compared per audit
  (q_t varies, the file's per-task rates hold at its fixed q only): upheld resolves among the
  audited tasks of each action, exact binomial test against d_j/q. The report gives the
  distance √((q̄ − q°)² + (t̄ − t°)²) observed, predicted at this horizon and at ten times it
  (``LONGER_HORIZON``), and plots the (q_t, deviation share) trajectory against the predicted
  one. Step sizes: ``dynamics.hedge_step_sizes`` (docstring: η ∝ 1/√T balances the transient and
  the bandit-noise bias, so the time averages approach the equilibrium at O(1/√T)). The stake of
  an exported scenario is raised (with a note) if the simulated slashes could exhaust it.
- **Threshold** (:func:`run_threshold`): adaptive providers at ``points`` sampling rates from
  0.5·q* to 1.5·q* (q* from the parameters file); at each rate the final-window side test above.

The consensus game runs in :mod:`reference_node.committee` (in-process) and is compared by
:mod:`mira_theory.experiment_consensus`; ``mira-theory experiment`` dispatches to it for a
consensus scenario. The functions here take the audit game only.

Not here: a formula. Predictions come from the exported file and :mod:`mira_theory.dynamics`;
tests from :mod:`mira_theory.stats`.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import shutil
import time
from collections import OrderedDict, defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats as sps

from mira_theory import stats
from mira_theory.results import jsonable
from mira_theory.scenario import Problem, Scenario, ScenarioError

ADAPTIVE = ("hedge", "regret", "logit")
MODES = ("inprocess", "processes")
DEFAULT_GAMMA = 0.05
DEFAULT_PRECISION = 40.0


def _bad(option: str, expected: str, found: str) -> ScenarioError:
    return ScenarioError([Problem("<command line>", option, expected, found)])


# --------------------------------------------------------------------------------------
# Result
# --------------------------------------------------------------------------------------


@dataclass
class ExperimentResult:
    """The comparisons of one experiment (Holm-adjusted), the run directory and what was seen."""

    scenario: str
    run_dir: Path
    comparisons: tuple[stats.Comparison, ...]
    run: dict[str, Any]
    observed: dict[str, Any]
    notes: list[str] = field(default_factory=list)
    trajectories: dict[str, Any] = field(default_factory=dict)
    threshold: dict[str, Any] | None = None
    plots: list[str] = field(default_factory=list)
    verifiers: dict[str, Any] | None = None  # --adaptive-verifiers: windows, equilibrium, horizons
    prediction: Any = field(default=None, repr=False, compare=False)  # TwoPopulationPrediction (not serialized)

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.comparisons)

    @property
    def failed(self) -> list[str]:
        return [c.quantity for c in self.comparisons if not c.passed]

    def table(self) -> str:
        return stats.render_report(self.comparisons)

    def to_dict(self) -> dict[str, Any]:
        return jsonable({"scenario": self.scenario, "run_dir": str(self.run_dir), "passed": self.passed,
                         "failed": self.failed, "run": self.run,
                         "comparisons": [c.to_dict() for c in self.comparisons],
                         "observed": self.observed, "notes": self.notes, "trajectories": self.trajectories,
                         "threshold": self.threshold, "plots": self.plots, "verifiers": self.verifiers})

    def verdict(self) -> str:
        """The report's result line: PASS, or FAIL with the failed comparisons named."""
        return (f"- result: **{'PASS' if self.passed else 'FAIL'}**"
                + (f" ({len(self.failed)} failed: {'; '.join(self.failed)})" if self.failed else ""))

    def markdown(self) -> str:
        r = self.run
        lines = [f"# Experiment: scenario '{self.scenario}'", "",
                 f"- parameters: `{r.get('params')}`; mode {r.get('mode')}; seed {r.get('seed')}; "
                 f"level {r.get('level')}; multiple comparisons: Holm over {len(self.comparisons)}",
                 f"- run: {r.get('tasks')} tasks, {r.get('providers')} providers "
                 f"({', '.join(f'{k}×{v}' for k, v in (r.get('mix') or {}).items())}), "
                 f"{r.get('verifiers')} verifiers; {r.get('seconds', 0):.1f} s",
                 self.verdict(), "", self.table(), ""]
        if self.trajectories:
            lines += ["## Adaptive providers: honest share by window", ""]
            for name, t in self.trajectories.items():
                lines += [f"### {name}", "", "| tasks | observed | predicted | band |", "|---|---|---|---|"]
                for w in t["windows"]:
                    band = w.get("band")
                    band_s = f"[{band[0]:.4g}, {band[1]:.4g}]" if band else ""
                    pred = w.get("predicted")
                    lines.append(f"| {w['start']}–{w['end']} | {w['observed']:.4g} | "
                                 f"{'' if pred is None else f'{pred:.4g}'} | {band_s} |")
                lines.append("")
        if self.verifiers:
            lines += _verifiers_markdown(self.verifiers)
        if self.threshold:
            th = self.threshold
            lines += ["## Threshold", "", f"predicted q* = {th['predicted_q_star']:.6g} (parameters file); "
                      f"band the run cannot resolve: [{th['band'][0]:.6g}, {th['band'][1]:.6g}]", "",
                      "| q | q/q* | honest share (final window) | predicted side |", "|---|---|---|---|"]
            for p in th["points"]:
                lines.append(f"| {p['sampling_rate']:.6g} | {p['ratio']:.3f} | {p['observed']:.4g} | {p['side']} |")
            lines.append("")
        if self.notes:
            lines += ["## Notes", ""] + [f"- {n}" for n in self.notes] + [""]
        if self.plots:
            lines += ["## Plots", ""] + [f"![{Path(p).stem}]({Path(p).name})" for p in self.plots] + [""]
        return "\n".join(lines)


# --------------------------------------------------------------------------------------
# Set-up: scenario, parameters file, strategies
# --------------------------------------------------------------------------------------


@dataclass
class _Setup:
    scenario: Scenario  # the scenario with the file's parameters applied
    doc: dict[str, Any]
    params_path: Path
    node: Any  # reference_node.params.NodeParams
    predictions: dict[str, Any]


def _load_scenario(scenario: Scenario | str | Path) -> Scenario:
    if isinstance(scenario, Scenario):
        return scenario
    from mira_theory.api import load

    return load(scenario)


def _check_game(scenario: Scenario) -> None:
    if scenario.game != "audit":
        raise ScenarioError([Problem(scenario.path or scenario.name, "scenario.game",
                                     "'audit' here (a consensus scenario's experiment is "
                                     "mira_theory.experiment_consensus.run_consensus_experiment)",
                                     repr(scenario.game))])


def _setup(scenario: Scenario, params: str | Path | dict | None, out: Path,
           changes: Mapping[str, Any] | None = None) -> _Setup:
    """The parameters document in force (exported, or read from ``params``), copied into ``out``."""
    from mira_theory import deployment
    from reference_node.params import load as load_node

    _check_game(scenario)
    if params is None:
        applied = scenario.replace(dict(changes)) if changes else scenario
        doc = deployment.export(applied)
    else:
        if isinstance(params, dict):
            doc = json.loads(json.dumps(params))
            source = "<params document>"
        else:
            source = str(params)
            parsed = deployment.read_params(params, scenario.game)  # validates; names file and key
            del parsed
            text = Path(params).read_text(encoding="utf-8-sig")
            if source.endswith(".toml"):
                import tomllib

                doc = tomllib.loads(text)
            else:
                doc = json.loads(text)
        if changes:
            raise ValueError("changes apply to an exported scenario, not to a parameters file")
        pp = {deployment.PARAMETERS[scenario.game][k][0]: v for k, v in doc.get("parameters", {}).items()
              if k in deployment.PARAMETERS[scenario.game]}
        try:
            applied = scenario.replace(pp)
        except ScenarioError as err:
            raise ScenarioError([Problem(source, f"parameters ({p.key})", p.expected, p.found)
                                 for p in err.problems]) from None
    preds = doc.get("predictions")
    if not isinstance(preds, dict) or not isinstance(preds.get("honest"), dict) \
            or not isinstance(preds.get("deviations"), dict):
        raise ScenarioError([Problem(str(params), "predictions", "the exported predictions table "
                                     "(honest, deviations): re-export with mira-theory export",
                                     "nothing" if preds is None else "an incomplete table")])
    out.mkdir(parents=True, exist_ok=True)
    path = out / "params.json"
    path.write_text(deployment.dumps(doc))
    node = load_node(path)
    return _Setup(applied, doc, path, node, preds)


def _learner_spec(rule: str, setup: _Setup, tasks_per_provider: int, eta: float | None,
                  precision: float | None, gamma: float) -> tuple[str, dict[str, Any]]:
    """The node spec of an adaptive provider and its parameters."""
    from mira_theory.games import audit

    if rule == "hedge":
        A, _, _ = audit.bimatrix(setup.scenario)
        b = float(A[:, 1].max())  # dynamics.simulate_hedge's default baseline
        if eta is None:  # η·(L + R)·√t = 5: a few payoff-range steps of drift, small per-task steps
            eta = 5.0 / (math.sqrt(max(tasks_per_provider, 1)) * (setup.node.slash + setup.node.reward))
        return f"hedge:{eta:.6g}:{b:.6g}", {"rule": "hedge", "eta": float(f"{eta:.6g}"), "baseline": float(f"{b:.6g}")}
    if rule == "regret":
        return f"regret:{gamma:g}", {"rule": "regret", "gamma": gamma}
    lam = DEFAULT_PRECISION if precision is None else precision
    return f"logit:{lam:g}", {"rule": "logit", "precision": lam}


def _specs(setup: _Setup, providers: int, mix: str | None, adaptive: str | None,
           adaptive_spec: str | None) -> list[str]:
    from reference_node import strategies

    devs = setup.node.deviation_names
    if adaptive is not None and mix is None:
        return [adaptive_spec] * providers
    text = mix
    if adaptive is not None and mix is not None:
        items = []
        for item in mix.split(","):
            name, sep, count = item.strip().partition("=")
            items.append(f"{adaptive_spec if name.strip() == 'adaptive' else name}{sep}{count}")
        text = ",".join(items)
    elif mix is not None and any(i.strip().startswith("adaptive=") for i in mix.split(",")):
        raise _bad("--mix", "--adaptive RULE when the mix names 'adaptive'", repr(mix))
    try:
        return strategies.parse_mix(text, devs, providers)
    except ValueError as err:
        raise _bad("--mix", "STRATEGY=COUNT,... (honest, a deviation, mixed:<deviation>:<t>, adaptive)",
                   str(err)) from None


# --------------------------------------------------------------------------------------
# Running the network
# --------------------------------------------------------------------------------------


def _run_network(setup: _Setup, specs: list[str], tasks: int, verifiers: int, seed: int, mode: str,
                 out: Path, batch: int | None, progress: Callable[[int], None] | None,
                 verifier_learner: Any = None) -> tuple[Path, dict]:
    db = out / "ledger.sqlite"
    if db.exists():
        raise _bad("--out", "a new run directory", f"{out} already holds a run (ledger.sqlite)")
    if mode == "inprocess":
        from reference_node.inprocess import Network

        net = Network(setup.node, db, specs, verifiers, seed, verifier_learner=verifier_learner)
        try:
            workload = net.run(tasks, batch=batch or 512, progress=progress)
            net.finish()
        finally:
            net.close()
        return db, workload
    # the real services, started by the launcher of `mira-node up` (reference_node.cli)
    counts: dict[str, int] = {}
    for s in specs:
        counts[s] = counts.get(s, 0) + 1
    argv = ["up", "--params", str(setup.params_path), "--providers", str(len(specs)), "--verifiers",
            str(verifiers), "--tasks", str(tasks), "--out", str(out), "--seed", str(seed), "--quiet",
            "--mix", ",".join(f"{k}={v}" for k, v in counts.items())]
    seconds = run_mira_node(argv)
    return db, {"tasks": tasks, "seconds": seconds, "tasks_per_second": tasks / seconds if seconds else None}


def run_mira_node(argv: list[str]) -> float:
    """``mira-node ARGV`` in this process (its output captured); the seconds it took. A non-zero exit
    raises RuntimeError with the end of its output."""
    from reference_node import cli as node_cli

    buf = io.StringIO()
    t0 = time.perf_counter()
    with contextlib.redirect_stdout(buf):
        rc = node_cli.main(argv)
    if rc != 0:
        raise RuntimeError(f"mira-node {argv[0]} exited with status {rc}: {buf.getvalue()[-2000:]}")
    return time.perf_counter() - t0


# --------------------------------------------------------------------------------------
# Reading the log (streaming, one pass)
# --------------------------------------------------------------------------------------


@dataclass
class _Observed:
    summary: dict[str, Any]
    by_action: dict[str, dict[str, int]]
    payoff: dict[str, dict[str, float]]  # strategy spec -> n, total, squares
    gaps: dict[str, list[int]]  # deviation -> gaps (tasks of that action to the next detection)
    first_gaps: dict[str, list[int]]
    before_settled: dict[str, list[int]]
    windows: dict[str, np.ndarray]  # adaptive spec -> (W, 2) honest, total
    capped: int
    window_size: int
    batches: np.ndarray | None = None  # adaptive verifiers: per batch (q_t, adaptive tasks, deviating ones)
    per_audit: dict[str, dict[str, int]] | None = None  # adaptive verifiers: action -> audits, upheld


def _read_log(db: Path, specs: list[str], adaptive: set[str], windows: int, window_size: int,
              rates: bool = False) -> _Observed:
    from reference_node import events

    spec_of: dict[str, str] = {}
    cost_of: dict[str, float] = {}
    by_action: dict[str, dict[str, int]] = defaultdict(lambda: {"tasks": 0, "slashes": 0})
    pay: dict[str, dict[str, float]] = defaultdict(lambda: {"n": 0, "total": 0.0, "squares": 0.0})
    stationary = {s for s in specs if s not in adaptive}
    counter: dict[tuple[str, str], int] = defaultdict(int)  # (provider, action) -> tasks since last detection
    index_of: OrderedDict[str, tuple[str, int]] = OrderedDict()  # recent deviating task -> (provider, position)
    detected: dict[tuple[str, str], list[int]] = defaultdict(list)  # positions of detected tasks
    task_no: dict[str, int] = defaultdict(int)
    win: dict[str, np.ndarray] = {s: np.zeros((windows, 2), np.int64) for s in adaptive}
    capped = 0
    # adaptive verifiers (``rates``): a batch is the commits up to the settle that logs its q_t
    batch_rows: list[tuple[float, int, int]] = []
    batch_action: dict[str, str] = {}
    batch_n = batch_dev = 0
    per_audit: dict[str, dict[str, int]] = defaultdict(lambda: {"audits": 0, "upheld": 0})

    def tap(stream):
        nonlocal capped, batch_n, batch_dev
        for e in stream:
            kind = e["kind"]
            if rates:
                if kind == "commit":
                    batch_action[e["task_id"]] = e.get("action") or "unknown"
                    if spec_of.get(e["provider"]) in adaptive:
                        batch_n += 1
                        batch_dev += (e.get("action") or "unknown") != "honest"
                elif kind == "audit" and e["task_id"] in batch_action:
                    per_audit[batch_action[e["task_id"]]]["audits"] += 1
                elif kind == "settle" and e.get("sampling_rate") is not None:
                    batch_rows.append((float(e["sampling_rate"]), batch_n, batch_dev))
                    batch_action.clear()
                    batch_n = batch_dev = 0
            if kind == "register":
                if e.get("strategy") is not None:
                    spec_of[e["account"]] = e["strategy"]
            elif kind == "commit":
                p, a = e["provider"], e.get("action") or "unknown"
                spec = spec_of.get(p, "unknown")
                fee, cost = float(e.get("fee") or 0.0), float(e.get("cost") or 0.0)
                cost_of[a] = cost
                by_action[a]["tasks"] += 1
                x = fee - cost
                acc = pay[spec]
                acc["n"] += 1
                acc["total"] += x
                acc["squares"] += x * x
                if spec in adaptive:
                    t = task_no[p]
                    task_no[p] = t + 1
                    k = t // window_size if window_size else windows
                    if k < windows:
                        win[spec][k, 0] += a == "honest"
                        win[spec][k, 1] += 1
                elif a != "honest" and spec in stationary:
                    key = (p, a)
                    counter[key] += 1
                    index_of[e["task_id"]] = (p, counter[key])
                    if len(index_of) > 1_000_000:
                        index_of.popitem(last=False)
            elif kind == "resolve" and e.get("verdict") == "upheld":
                a = e.get("action") or "unknown"
                p = e["provider"]
                by_action[a]["slashes"] += 1
                if rates:
                    per_audit[a]["upheld"] += 1
                capped += bool(e.get("capped"))
                s = float(e["slash"]) + float(e["refund"])
                x0 = float(e["refund"]) - cost_of.get(a, 0.0)  # the task's commit-time payoff
                acc = pay[spec_of.get(p, "unknown")]
                acc["total"] -= s
                acc["squares"] += -2.0 * x0 * s + s * s
                hit = index_of.pop(e["task_id"], None)
                if hit is not None:
                    detected[(p, a)].append(hit[1])
            yield e

    summary = events.summarize(tap(events.iter_events(db)))
    gaps: dict[str, list[int]] = defaultdict(list)
    first_gaps: dict[str, list[int]] = defaultdict(list)
    for (_, a), positions in sorted(detected.items()):  # resolves need not come in commit order
        pos = np.sort(np.asarray(positions))
        g = np.diff(pos, prepend=0)
        gaps[a] += [int(v) for v in g]
        first_gaps[a].append(int(g[0]))
    before: dict[str, list[int]] = defaultdict(list)
    for spec, s in summary["by_strategy"].items():
        if spec in stationary:
            for ep in s["episodes"]:
                if ep["deviating_tasks_before_first_slash"] is not None:
                    before[spec].append(ep["deviating_tasks_before_first_slash"])
    return _Observed(summary, {k: dict(v) for k, v in by_action.items()}, {k: dict(v) for k, v in pay.items()},
                     dict(gaps), dict(first_gaps), dict(before), win, capped, window_size,
                     np.array(batch_rows, float).reshape(-1, 3) if rates else None,
                     {k: dict(v) for k, v in per_audit.items()} if rates else None)


# --------------------------------------------------------------------------------------
# Comparisons
# --------------------------------------------------------------------------------------


def _geometric_bins(d: float, n: int) -> tuple[np.ndarray, dict[str, float]]:
    """Upper bounds of bins of about equal Geometric(d) probability, and each bin's probability."""
    k = int(max(2, min(10, n // 8)))  # about 8 expected per bin
    bounds = []
    for i in range(1, k):
        b = int(math.ceil(math.log1p(-i / k) / math.log1p(-d)))
        if b >= 1 and (not bounds or b > bounds[-1]):
            bounds.append(b)
    cdf = [1.0 - (1.0 - d) ** b for b in bounds]
    probs, prev, lo = {}, 0.0, 1
    for b, c in zip(bounds, cdf):
        probs[f"{lo}–{b}"] = c - prev
        prev, lo = c, b + 1
    probs[f"≥{lo}"] = 1.0 - prev
    return np.array(bounds), probs


def _audit_comparisons(obs: _Observed, preds: dict[str, Any], specs: list[str], adaptive: set[str],
                       level: float, notes: list[str]) -> list[stats.Comparison]:
    out: list[stats.Comparison] = []
    honest = obs.by_action.get("honest")
    if honest and honest["tasks"]:
        f = float(preds["honest"]["false_slash_per_task"])
        out.append(stats.binomial("honest: false slashes per task", f, honest["slashes"], honest["tasks"], level))
    for dev, p in preds["deviations"].items():
        a = obs.by_action.get(dev)
        if not a or not a["tasks"]:
            continue
        d = float(p["detection_per_task"])
        out.append(stats.binomial(f"{dev}: detection per task", d, a["slashes"], a["tasks"], level))
    # payoff per task of each stationary strategy
    U_h = float(preds["honest"]["expected_payoff"])
    for spec in dict.fromkeys(specs):
        if spec in adaptive:
            continue
        acc = obs.payoff.get(spec)
        if not acc or acc["n"] < 2:
            continue
        if spec == "honest":
            mu = U_h
        elif spec in preds["deviations"]:
            mu = float(preds["deviations"][spec]["expected_payoff"])
        elif spec.startswith("mixed:"):
            _, dev, t = spec.split(":")
            mu = (1.0 - float(t)) * U_h + float(t) * float(preds["deviations"][dev]["expected_payoff"])
        else:
            continue
        out.append(stats.mean_payoff(f"{spec}: payoff per task", mu, total=acc["total"],
                                     total_squares=acc["squares"], n=int(acc["n"]), level=level))
    # the cheating episode (stationary deviators)
    for dev, gaps in obs.gaps.items():
        if dev not in preds["deviations"]:
            continue
        d = float(preds["deviations"][dev]["detection_per_task"])
        firsts = obs.first_gaps.get(dev, [])
        if d <= 0:
            notes.append(f"{dev}: predicted detection 0, yet {len(gaps)} detections: see its detection row")
            continue
        if len(gaps) >= 2:
            c = stats.mean_payoff(f"{dev}: episode, deviating tasks to a detection (mean)", 1.0 / d,
                                  samples=gaps, level=level)
            out.append(replace(c, note=f"{len(gaps)} gaps ({len(firsts)} first episodes, mean "
                                       f"{np.mean(firsts):.4g}); geometric, mean 1/d"))
        if len(gaps) >= 10:
            bounds, probs = _geometric_bins(d, len(gaps))
            idx = np.searchsorted(bounds, np.asarray(gaps), side="left")
            labels = list(probs)
            counts = {labels[i]: int(c) for i, c in zip(*np.unique(idx, return_counts=True))}
            out.append(stats.chi_square(f"{dev}: episode distribution (Geometric(d))", probs, counts, level))
        before = [v for s, vs in obs.before_settled.items()
                  if s == dev or s.startswith(f"mixed:{dev}:") for v in vs]
        if firsts and before:
            notes.append(f"{dev}: first episodes (deviating tasks to the first detection) {firsts[:8]}"
                         f"{'…' if len(firsts) > 8 else ''}; deviating tasks before the first settled slash "
                         f"{before[:8]}{'…' if len(before) > 8 else ''}: the difference is the network's "
                         "slash latency (in-process: the rest of a batch), which the model writes λT with the "
                         "scenario's T — not tested (the ledger makes a slash final when resolved)")
    if obs.capped:
        notes.append(f"{obs.capped} slash(es) were capped at the remaining stake (a deviator's stake ran out): "
                     "the payoff prediction assumes full slashes; commits after exhaustion are refused by the "
                     "ledger and are not in the log")
    return out


@dataclass
class _Band:
    lower_ratio: float
    upper_ratio: float
    precision: float
    tasks: int

    def around(self, q_star: float) -> tuple[float, float]:
        return self.lower_ratio * q_star, self.upper_ratio * q_star


def _band(scenario: Scenario, rule: str, info: dict[str, Any], rounds: int, tasks: int, level: float) -> _Band:
    """The q band (as ratios to the scenario's q*) a run cannot place on a side of q*."""
    from mira_theory import dynamics

    if rule == "logit":
        lam = info["precision"]
    elif rule == "hedge":
        lam = info["eta"] * rounds  # the mean-field precision η·t (bandit Hedge is slower: see notes)
    else:  # regret matching from bandit feedback resolves payoff gaps of order (L + R)/√t
        lam = math.sqrt(rounds) / float(scenario.stake.slash + scenario.task.reward)
    try:
        ri = dynamics.resolvable_interval(scenario, lam, max(tasks, 2), level)
    except ValueError:  # no sign change of the honest share over [0, 1]: no finite q* to resolve around
        return _Band(1.0, 1.0, lam, tasks)
    qs = ri.deterrence_sampling_rate
    if not (math.isfinite(qs) and qs > 0):
        return _Band(1.0, 1.0, lam, tasks)
    return _Band(ri.lower / qs, ri.upper / qs, lam, tasks)


def _side(q: float, q_star: float, band: _Band) -> str:
    lo, hi = band.around(q_star)
    if q > hi:
        return "honest"
    if q < lo:
        return "deviating"
    return "unresolvable"


def _adaptive_predictions(setup: _Setup, rule: str, info: dict[str, Any], rounds: int, windows: int,
                          window_size: int, K: int, simulations: int, seed: int,
                          share: np.ndarray | None = None, level: float = stats.DEFAULT_LEVEL) -> dict[str, Any]:
    """Per window: predicted honest share (for hedge the predictive sd of the K-pooled share; for
    regret and logit, given ``share`` — tasks per batch of each adaptive provider — simulated
    pooled shares of the network's own batched learners, ``samples``)."""
    from mira_theory import dynamics
    from mira_theory.games import audit

    sc = setup.scenario
    q = float(sc.audit.sampling_rate)
    A, _, names = audit.bimatrix(sc)
    m = A.shape[0]
    W, w = windows, window_size
    if rule == "hedge":
        fb = dynamics.audit_feedback(sc)
        chunk = max(1, min(simulations, int(2e7 // max(1, (W * w + 1) * m))))
        means = []
        done, c = 0, 0
        while done < simulations:
            r = min(chunk, simulations - done)
            x = dynamics.simulate_hedge(A, q, info["eta"], W * w, r, "bandit", fb["flag_probability"],
                                        fb["slash_cost"], baseline=info["baseline"], seed=[seed, 7919, c])
            means.append(x[: W * w, :, 0].reshape(W, w, r).mean(axis=1))
            done, c = done + r, c + 1
        xs = np.concatenate(means, axis=1)  # (W, simulations)
        mean = xs.mean(axis=1)
        var_path = xs.var(axis=1, ddof=1)
        binom = (xs * (1.0 - xs)).mean(axis=1) / (w * K)
        sd = np.sqrt(var_path / K + binom + var_path / simulations)
        return {"predicted": mean, "sd": sd, "source": f"dynamics.simulate_hedge (bandit feedback, "
                f"{simulations} simulated providers, η = {info['eta']:g}, baseline {info['baseline']:g})"}
    u = dynamics.provider_payoffs(sc, q)
    if share is not None:
        fb = dynamics.audit_feedback(sc)
        m_tests = W + 4 + 3 * len(sc.deviations)  # this report's comparisons, at most
        runs = max(simulations, math.ceil(4 * m_tests / (1.0 - level)))  # so that the tests can fail
        honest = dynamics.simulate_bandit_learners(
            rule, A, q, flag_probability=fb["flag_probability"], slash_cost=fb["slash_cost"], share=share,
            window=w, windows=W, runs=runs, gamma=info.get("gamma", 0.05), precision=info.get("precision", 10.0),
            seed=[seed, 7919, 3])
        samples = honest / (K * w)
        what = f"γ = {info['gamma']:g}" if rule == "regret" else f"λ = {info['precision']:g}"
        limit = None
        if rule == "logit":
            limit = float(dynamics.logit_response(u, info["precision"])[0])
        return {"predicted": samples.mean(axis=1), "sd": None, "samples": samples, "limit": limit,
                "source": f"dynamics.simulate_bandit_learners('{rule}', {what}): {runs} simulated runs of the "
                          f"{K} providers, batched as the network runs them"}
    if rule == "regret":
        path = dynamics.predicted_learning_path("regret-matching", u, 0.0, W * w, names=names)
        x = path["honest"].to_numpy()[: W * w]
        g = info["gamma"]
        share = (1.0 - g) * x + g / m
        return {"predicted": share.reshape(W, w).mean(axis=1), "sd": None,
                "limit": (1.0 - g) * np.asarray(path.attrs["limit"] or [np.nan] * m)[0] + g / m,
                "source": "dynamics.predicted_learning_path('regret-matching', expected payoffs) "
                          f"mixed with exploration γ = {g:g} (mean-field: descriptive)"}
    share = float(dynamics.logit_response(u, info["precision"])[0])
    return {"predicted": np.full(W, share), "sd": None, "limit": share,
            "source": f"dynamics.logit_response σ(λ·u(q)), λ = {info['precision']:g} (the learner's limit: "
                      "descriptive before convergence)"}


def _adaptive_comparisons(setup: _Setup, obs: _Observed, spec: str, rule: str, info: dict[str, Any],
                          K: int, rounds: int, windows: int, simulations: int, seed: int, level: float,
                          notes: list[str], share: np.ndarray | None = None
                          ) -> tuple[list[stats.Comparison], dict[str, Any], _Band]:
    counts = obs.windows[spec]
    w = obs.window_size
    pred = _adaptive_predictions(setup, rule, info, rounds, windows, w, K, simulations, seed, share, level)
    q = float(setup.scenario.audit.sampling_rate)
    q_star_file = setup.predictions.get("deterrence_sampling_rate")
    band = _band(setup.scenario, rule, info, rounds, int(counts[-1, 1]), level)
    comps, rows = [], []
    z = sps.norm.ppf(0.5 + level / 2.0)
    for k in range(windows):
        h, n = int(counts[k, 0]), int(counts[k, 1])
        if n == 0:
            continue
        obs_share = h / n
        row = {"start": k * w, "end": (k + 1) * w - 1, "observed": obs_share, "n": n,
               "interval": stats.clopper_pearson(h, n, level), "predicted": float(pred["predicted"][k])}
        if pred.get("samples") is not None:
            c = stats.monte_carlo(f"{rule} providers: honest share, their tasks {k * w}–{(k + 1) * w - 1} "
                                  "(against simulated learners)", obs_share, pred["samples"][k], level,
                                  note=pred["source"], n=n)
            row["band"] = c.interval
            comps.append(c)
        elif pred["sd"] is not None:
            m, s = float(pred["predicted"][k]), float(pred["sd"][k])
            row["band"] = (max(0.0, m - z * s), min(1.0, m + z * s))
            comps.append(stats.predictive(
                f"{rule} providers: honest share, their tasks {k * w}–{(k + 1) * w - 1} (against simulated "
                "learners)", m, s, h, n, level, note=pred["source"]))
        rows.append(row)
    if pred["sd"] is None:
        h, n = int(counts[-1, 0]), int(counts[-1, 1])
        if q_star_file is None:
            notes.append(f"{rule}: the parameters file predicts no finite q*: no side to test")
        elif n:
            side = _side(q, float(q_star_file), band)
            if side == "unresolvable":
                lo, hi = band.around(float(q_star_file))
                notes.append(f"{rule}: q = {q:.6g} lies in the band [{lo:.6g}, {hi:.6g}] around the predicted "
                             f"q* = {float(q_star_file):.6g} that a run of this size cannot resolve: "
                             "the final side is not tested")
            else:
                comps.append(stats.binomial_side(f"{rule} providers: final-window honest share (q/q* = "
                                         f"{q / float(q_star_file):.3f}: predicted {side} majority)",
                                         h, n, side, float(pred["predicted"][-1]), level,
                                         note=pred["source"]))
        if pred.get("samples") is None:
            notes.append(f"{rule}: the window shares are shown against {pred['source']}; only the final "
                         "window's side of 1/2 is tested")
    traj = {"rule": rule, "spec": spec, "providers": K, "window": w, "source": pred["source"],
            "windows": rows, "sampling_rate": q}
    return comps, traj, band


# --------------------------------------------------------------------------------------
# Adaptive verifiers: two learning populations
# --------------------------------------------------------------------------------------

LONGER_HORIZON = 10  # the report's second horizon, in multiples of the run's tasks
LONGER_RUNS = 200


@dataclass
class TwoPopulationPrediction:
    """What :func:`predict_two_population` predicts for a run with adaptive verifiers."""

    runs: Any  # dynamics.TwoPopulationRuns at the run's horizon (the comparisons)
    equilibrium: tuple[float, float] | None  # (q°, t°) of the game the dynamics runs (t°: deviation share)
    mean_field: Any  # dynamics.hedge_two_population_mean_field: the expected-increment path
    longer: Any = None  # dynamics.TwoPopulationRuns at LONGER_HORIZON × tasks (descriptive)
    source: str = ""


def _round6(v: float) -> float:
    return float(f"{v:.6g}")


def two_population_setup(scenario: Scenario, providers: int, tasks: int, eta: float | None = None,
                         verifier_eta: float | None = None, initial_rate: float | None = None) -> dict[str, Any]:
    """The learning rates and game of an adaptive-verifier run: the scenario's bimatrix, realised-payoff
    model, the providers' baseline, and (η, η_v) — ``dynamics.hedge_step_sizes`` for this horizon
    unless given — rounded to the 6 digits the node spec and the verifier are given."""
    from mira_theory import dynamics
    from mira_theory.games import audit

    A, B, rows = audit.bimatrix(scenario)
    fb = dynamics.audit_feedback(scenario)
    q0 = float(scenario.audit.sampling_rate) if initial_rate is None else float(initial_rate)
    d_eta, d_veta = dynamics.hedge_step_sizes(A, B, fb["flag_probability"], fb["slash_cost"], providers, tasks,
                                              sampling_rate=q0)
    return {"A": A, "B": B, "rows": rows, "flag_probability": fb["flag_probability"],
            "slash_cost": fb["slash_cost"], "baseline": _round6(float(A[:, 1].max())), "initial_rate": q0,
            "eta": _round6(d_eta if eta is None else eta),
            "verifier_eta": _round6(d_veta if verifier_eta is None else verifier_eta),
            "default_eta": eta is None, "default_verifier_eta": verifier_eta is None}


def predict_two_population(scenario: Scenario, *, providers: int, tasks: int, batch: int, windows: int,
                           runs: int, seed: Any = 0, eta: float | None = None, verifier_eta: float | None = None,
                           initial_rate: float | None = None, longer: int | None = LONGER_HORIZON,
                           longer_runs: int = LONGER_RUNS) -> TwoPopulationPrediction:
    """The prediction for ``providers`` bandit-Hedge providers and a Hedge verifier on the
    scenario's audit game: ``runs`` simulated runs of exactly the network's process
    (:func:`mira_theory.dynamics.simulate_hedge_two_population`), its mean-field path, the
    game's mixed equilibrium and (``longer`` > 1) ``longer_runs`` runs of ``longer`` × ``tasks``
    tasks with the step sizes the default rule gives that horizon (the ones given, if given).
    """
    from mira_theory import dynamics

    g = two_population_setup(scenario, providers, tasks, eta, verifier_eta, initial_rate)
    common = dict(providers=providers, batch=batch, initial_rate=g["initial_rate"],
                  flag_probability=g["flag_probability"], slash_cost=g["slash_cost"], baseline=g["baseline"])
    sim = dynamics.simulate_hedge_two_population(g["A"], g["B"], eta=g["eta"], verifier_eta=g["verifier_eta"],
                                                 tasks=tasks, runs=runs, windows=windows, seed=seed, **common)
    mf = dynamics.hedge_two_population_mean_field(g["A"], g["B"], eta=g["eta"], verifier_eta=g["verifier_eta"],
                                                  tasks=tasks, providers=providers, batch=batch,
                                                  initial_rate=g["initial_rate"], names=g["rows"])
    eq = dynamics.mixed_equilibrium(g["A"], g["B"])
    far = None
    if longer and longer > 1:
        h = g if not (g["default_eta"] or g["default_verifier_eta"]) else two_population_setup(
            scenario, providers, tasks * longer, None if g["default_eta"] else g["eta"],
            None if g["default_verifier_eta"] else g["verifier_eta"], initial_rate)
        far = dynamics.simulate_hedge_two_population(
            g["A"], g["B"], eta=h["eta"], verifier_eta=h["verifier_eta"], tasks=tasks * longer, runs=longer_runs,
            windows=1, seed=[*np.atleast_1d(seed).tolist(), 1], **common)
    source = (f"dynamics.simulate_hedge_two_population: {runs} simulated runs of {providers} bandit-Hedge "
              f"providers (η = {g['eta']:g}, baseline {g['baseline']:g}) and a Hedge verifier (η_v = "
              f"{g['verifier_eta']:g}, q_0 = {g['initial_rate']:g}), batches of {batch}")
    return TwoPopulationPrediction(sim, None if eq is None else (eq[0], 1.0 - float(eq[1][0])), mf, far, source)


def two_population_comparisons(batches: np.ndarray, prediction: TwoPopulationPrediction,
                               equilibrium: tuple[float, float] | None, level: float = stats.DEFAULT_LEVEL,
                               notes: list[str] | None = None) -> tuple[list[stats.Comparison], dict[str, Any]]:
    """The observed per-window time averages of a run with adaptive verifiers against a prediction.

    ``batches``: per batch (q_t, adaptive tasks, deviating ones) in log order (``settle.sampling_rate``
    and the commits before it). Per window of batches (the prediction's edges): the task-weighted
    mean sampling rate q̄_w and the deviation share t̄_w, each by :func:`stats.monte_carlo` against the
    simulated runs. With ``equilibrium`` = (q°, t°) (the parameters file's mixed equilibrium): the
    whole run's offsets q̄ − q° and t̄ − t° against the simulated offsets from the game's own
    equilibrium (``prediction.equilibrium``), so a wrong (q°, t°) fails when the run can tell.
    Not adjusted. Returns the comparisons and the report's data.
    """
    notes = [] if notes is None else notes
    sim = prediction.runs
    batches = np.asarray(batches, float).reshape(-1, 3)
    nb = len(sim.path_rate)
    if len(batches) != nb:
        raise ValueError(f"the log has {len(batches)} batches with a sampling rate, the prediction {nb}")
    q, n, dev = batches[:, 0], batches[:, 1], batches[:, 2]
    comps: list[stats.Comparison] = []
    rows = []
    start = np.concatenate([[0], np.cumsum(n)])
    for w in range(len(sim.edges) - 1):
        a, b = int(sim.edges[w]), int(sim.edges[w + 1])
        tasks = float(n[a:b].sum())
        if tasks <= 0:
            continue
        qo, to = float((q[a:b] * n[a:b]).sum() / tasks), float(dev[a:b].sum() / tasks)
        span = f"tasks {int(start[a])}–{int(start[b]) - 1}"
        cq = stats.monte_carlo(f"sampling rate q̄, {span} (adaptive verifiers)", qo, sim.rate[w], level,
                               note=prediction.source, n=int(tasks))
        ct = stats.monte_carlo(f"deviation share t̄, {span} (adaptive providers)", to, sim.deviation[w], level,
                               note=prediction.source, n=int(tasks))
        comps += [cq, ct]
        rows.append({"start": int(start[a]), "end": int(start[b]) - 1, "tasks": int(tasks),
                     "rate": {"observed": qo, "predicted": cq.predicted, "interval": cq.interval},
                     "deviation": {"observed": to, "predicted": ct.predicted, "interval": ct.interval}})
    if len(rows) > 1:
        obs_vec = [v for r in rows for v in (r["rate"]["observed"], r["deviation"]["observed"])]
        sim_mat = np.stack([a for w in range(len(rows)) for a in (sim.rate[w], sim.deviation[w])], axis=1)
        comps.append(stats.monte_carlo_joint(f"whole trajectory: q̄ and t̄ of all {len(rows)} windows jointly",
                                             obs_vec, sim_mat, level, note=prediction.source,
                                             n=int(n.sum())))
    total = float(n.sum())
    q_bar, t_bar = float((q * n).sum() / total), float(dev.sum() / total)
    sim_d = None
    geq = prediction.equilibrium
    if geq is not None:
        sim_d = np.hypot(sim.rate_total - geq[0], sim.deviation_total - geq[1])
    horizons = [{"label": "this run", "tasks": int(sim.params["tasks"]), "eta": sim.params["eta"],
                 "verifier_eta": sim.params["verifier_eta"], "observed": {"rate": q_bar, "deviation": t_bar},
                 "predicted": _moments(sim, geq)}]
    if equilibrium is not None:
        qe, te = (float(v) for v in equilibrium)
        horizons[0]["observed"]["distance"] = float(math.hypot(q_bar - qe, t_bar - te))
        if geq is None:
            notes.append("the game the dynamics runs has no mixed equilibrium with 0 < q < 1: the run's time "
                         "averages are not compared with the parameters file's")
        else:
            assert sim_d is not None
            comps.append(stats.monte_carlo(
                f"whole run: q̄ − q° (q° = {qe:.6g}, the parameters file's mixed equilibrium)", q_bar - qe,
                sim.rate_total - geq[0], level, n=int(total),
                note=f"simulated: q̄ − q° with the game's q° = {geq[0]:.6g}; {prediction.source}"))
            comps.append(stats.monte_carlo(
                f"whole run: t̄ − t° (t° = {te:.6g}, the parameters file's mixed equilibrium)", t_bar - te,
                sim.deviation_total - geq[1], level, n=int(total),
                note=f"simulated: t̄ − t° with the game's t° = {geq[1]:.6g}; {prediction.source}"))
    if prediction.longer is not None:
        lg = prediction.longer
        horizons.append({"label": f"{lg.params['tasks'] // max(1, sim.params['tasks'])}× longer",
                         "tasks": int(lg.params["tasks"]), "eta": lg.params["eta"],
                         "verifier_eta": lg.params["verifier_eta"], "observed": None,
                         "predicted": _moments(lg, geq)})
    data = {"windows": rows, "equilibrium": None if equilibrium is None else list(map(float, equilibrium)),
            "game_equilibrium": None if geq is None else list(map(float, geq)), "horizons": horizons,
            "source": prediction.source, "runs": sim.runs}
    return comps, data


def read_rate_batches(db: str | Path) -> np.ndarray:
    """Per batch of a run with adaptive verifiers: (q_t, commitments, deviating ones), from the event
    log alone (a batch is the commits before the settle event that logs its ``sampling_rate``)."""
    from reference_node import events

    rows, n, dev = [], 0, 0
    for e in events.iter_events(Path(db)):
        if e["kind"] == "commit":
            n += 1
            dev += (e.get("action") or "unknown") != "honest"
        elif e["kind"] == "settle" and e.get("sampling_rate") is not None:
            rows.append((float(e["sampling_rate"]), n, dev))
            n = dev = 0
    return np.array(rows, float).reshape(-1, 3)


def _moments(sim: Any, eq: tuple[float, float] | None) -> dict[str, Any]:
    out = {"rate": float(sim.rate_total.mean()), "rate_sd": float(sim.rate_total.std(ddof=1)),
           "deviation": float(sim.deviation_total.mean()), "deviation_sd": float(sim.deviation_total.std(ddof=1)),
           "runs": sim.runs}
    if eq is not None:
        d = np.hypot(sim.rate_total - eq[0], sim.deviation_total - eq[1])
        out.update({"distance": float(d.mean()), "distance_sd": float(d.std(ddof=1))})
    return out


def _file_equilibrium(preds: Mapping[str, Any]) -> tuple[float, float] | None:
    """(q°, t°) of the parameters file's first mixed equilibrium (t° = 1 − honest share), if any."""
    for e in preds.get("mixed_equilibrium") or []:
        try:
            q = float(e["strategies"]["verifier"]["audit"])
            t = 1.0 - float(e["strategies"]["provider"]["honest"])
        except (KeyError, TypeError, ValueError):
            continue
        if 0.0 < q < 1.0:
            return q, t
    return None


def _per_audit_comparisons(obs: _Observed, setup: _Setup, level: float) -> list[stats.Comparison]:
    """Detection per audit of each action (q_t varies, so per task is no longer the file's d_j):
    upheld resolves among the audited tasks of that action, exact binomial test against the file's
    d_j/q (and f/q for honest false slashes), q the file's sampling rate."""
    q = float(setup.doc["parameters"]["sampling_rate"])
    preds = setup.predictions
    out = []
    per = obs.per_audit or {}
    want = {"honest": ("honest: false slashes per audit", float(preds["honest"]["false_slash_per_task"]))}
    for dev, p in preds["deviations"].items():
        want[dev] = (f"{dev}: detection per audit", float(p["detection_per_task"]))
    for action, (name, per_task) in want.items():
        a = per.get(action)
        if not a or not a["audits"]:
            continue
        out.append(stats.binomial(name, min(1.0, per_task / q), min(a["upheld"], a["audits"]), a["audits"], level))
    return out


def _nice_stake(amount: float) -> float:
    """The smallest 1, 2 or 5 × 10^k at least ``amount``."""
    k = 10.0 ** math.floor(math.log10(max(amount, 1e-12)))
    return next(m * k for m in (1, 2, 5, 10) if m * k >= amount)


def _validate_verifiers(adaptive: str | None, mode: str, mix: str | None, verifier_eta: float | None,
                        adaptive_verifiers: bool) -> None:
    if not adaptive_verifiers:
        if verifier_eta is not None:
            raise _bad("--verifier-eta", "--adaptive-verifiers (the verifiers' learning rate)", repr(verifier_eta))
        return
    if adaptive != "hedge":
        raise _bad("--adaptive-verifiers", "--adaptive hedge (the two-population prediction simulates "
                   "bandit-Hedge providers against a Hedge verifier)",
                   "no --adaptive" if adaptive is None else f"--adaptive {adaptive}")
    if mode != "inprocess":
        raise _bad("--mode", "inprocess with --adaptive-verifiers (only the in-process network has a verifier "
                   "learner)", repr(mode))
    if mix is not None:
        raise _bad("--mix", "no --mix with --adaptive-verifiers (every provider learns)", repr(mix))
    if verifier_eta is not None and not (math.isfinite(verifier_eta) and verifier_eta > 0):
        raise _bad("--verifier-eta", "a finite number > 0", repr(verifier_eta))


def _run_two_population(sc: Scenario, params: str | Path | dict | None, *, tasks: int, providers: int, seed: int,
                        level: float, out: Path, verifiers: int, windows: int, eta: float | None,
                        verifier_eta: float | None, simulations: int, batch: int | None, plots: bool,
                        events_jsonl: bool, progress: Callable[[int], None] | None,
                        changes: Mapping[str, Any] | None) -> ExperimentResult:
    from reference_node.strategies import VerifierHedge

    setup = _setup(sc, params, out, changes)
    q0 = float(setup.doc["parameters"]["sampling_rate"])
    if not 0.0 < q0 < 1.0:
        raise _bad("--adaptive-verifiers", "a sampling rate in force strictly between 0 and 1 (the verifiers' "
                   "initial q)", repr(q0))
    batch = batch or max(providers, min(512, 32 * providers))
    nb = -(-tasks // batch)
    if nb < windows:
        raise _bad("--tasks", f"at least {windows} batches of {batch} tasks ({windows * batch}) for {windows} "
                   "windows", repr(tasks))
    m = 2 * windows + 3 + 1 + len(setup.predictions["deviations"])
    runs = max(simulations, math.ceil(4 * m / (1.0 - level)))  # so that the Holm-adjusted tests can fail
    t0 = time.perf_counter()
    pred = predict_two_population(setup.scenario, providers=providers, tasks=tasks, batch=batch, windows=windows,
                                  runs=runs, seed=[seed, 7919, 2], eta=eta, verifier_eta=verifier_eta,
                                  initial_rate=q0)
    g = pred.runs.params
    notes: list[str] = []
    # the model assumes full slashes: the stake must outlast the most slashed provider
    L = float(setup.node.slash)
    need = L * (float(pred.runs.slashes.max()) * 1.5 + 1.0)
    if setup.node.minimum_stake < need:
        if params is not None:
            raise _bad("--params", f"minimum_stake ≥ {need:g} for --adaptive-verifiers (the simulated runs "
                       f"slash one provider up to {int(pred.runs.slashes.max())} times L = {L:g}; a capped "
                       "slash leaves the model)", repr(setup.node.minimum_stake))
        stake = _nice_stake(need)
        notes.append(f"stake raised from {setup.node.minimum_stake:g} to {stake:g}: the simulated runs slash one "
                     f"provider up to {int(pred.runs.slashes.max())} times L = {L:g}, and the predictions assume "
                     "no slash is capped (the audit game's equilibrium does not depend on the stake)")
        setup = _setup(sc, None, out, {**dict(changes or {}), "stake.total": stake})
    g_setup = two_population_setup(setup.scenario, providers, tasks, g["eta"], g["verifier_eta"], q0)
    spec = f"hedge:{g['eta']:.6g}:{g['baseline']:.6g}"
    specs = [spec] * providers
    learner = VerifierHedge(list(g_setup["rows"]), g_setup["B"].tolist(), g["verifier_eta"], q0)
    db, workload = _run_network(setup, specs, tasks, verifiers, seed, "inprocess", out, batch, progress, learner)
    obs = _read_log(db, specs, {spec}, 1, 0, rates=True)
    assert obs.batches is not None
    comps = _per_audit_comparisons(obs, setup, level)
    file_eq = _file_equilibrium(setup.predictions)
    if file_eq is None:
        notes.append("the parameters file predicts no mixed equilibrium with 0 < q < 1: the time averages are "
                     "compared with the dynamics only")
    if int(obs.batches[:, 1].sum()) != tasks:
        notes.append(f"the log holds {int(obs.batches[:, 1].sum())} commitments in batches with a sampling rate, "
                     f"not {tasks}: the run left the simulated process (refused commits?)")
    c2, data = two_population_comparisons(obs.batches, pred, file_eq, level, notes)
    comps += c2
    if obs.capped:
        notes.append(f"{obs.capped} slash(es) were capped at the remaining stake: the prediction assumes full slashes")
    notes.append("time averages: q̄ weights each batch's q_t by its tasks; t̄ is the share of deviating actions; "
                 "the prediction is the Monte Carlo of the network's own process (the mean-field path, with the "
                 "expected increments, is shown in the plot: bandit noise keeps the deviation share well above it)")
    data.update({"eta": g["eta"], "verifier_eta": g["verifier_eta"], "initial_rate": q0, "batch": batch,
                 "providers": providers,
                 "step_sizes": ("η " + ("dynamics.hedge_step_sizes" if eta is None else "given") + ", η_v "
                                + ("dynamics.hedge_step_sizes" if verifier_eta is None else "given"))})
    adjusted = stats.adjust(comps, "holm", level)
    run = {"params": str(params) if params is not None and not isinstance(params, dict) else "exported",
           "params_file": str(setup.params_path), "mode": "inprocess", "seed": seed, "level": level,
           "tasks": tasks, "providers": providers, "verifiers": verifiers, "mix": {spec: providers},
           "adaptive": {"rule": "hedge", "eta": g["eta"], "baseline": g["baseline"]},
           "adaptive_verifiers": {"rule": "hedge", "verifier_eta": g["verifier_eta"], "initial_rate": q0},
           "batch": batch, "workload": workload, "simulations": runs, "seconds": time.perf_counter() - t0,
           "scenario_sha256": sc.sha256}
    observed = {"totals": obs.summary["totals"], "by_action": obs.by_action, "per_audit": obs.per_audit,
                "time_averages": data["horizons"][0]["observed"]}
    result = ExperimentResult(sc.name, out, adjusted, run, observed, notes, verifiers=data, prediction=pred)
    if events_jsonl:
        from reference_node import events

        events.export_jsonl(db, out / "events.jsonl")
    if plots:
        result.plots.append(_plot_two_population(obs.batches, pred, data, out / "verifiers.png"))
    _write(result, out)
    return result


def _verifiers_markdown(v: dict[str, Any]) -> list[str]:
    lines = ["## Adaptive verifiers: time averages by window", "",
             f"Providers: bandit Hedge η = {v.get('eta', math.nan):g}; verifiers: Hedge η_v = "
             f"{v.get('verifier_eta', math.nan):g} from q_0 = {v.get('initial_rate', math.nan):g} "
             f"({v.get('step_sizes', '')}); predicted by {v['runs']} simulated runs.", "",
             "| tasks | q̄ observed | q̄ predicted | 99% range | t̄ observed | t̄ predicted | 99% range |",
             "|---|---|---|---|---|---|---|"]
    for r in v["windows"]:
        a, b = r["rate"], r["deviation"]
        lines.append(f"| {r['start']}–{r['end']} | {a['observed']:.4g} | {a['predicted']:.4g} | "
                     f"[{a['interval'][0]:.4g}, {a['interval'][1]:.4g}] | {b['observed']:.4g} | "
                     f"{b['predicted']:.4g} | [{b['interval'][0]:.4g}, {b['interval'][1]:.4g}] |")
    lines.append("")
    eq, geq = v.get("equilibrium"), v.get("game_equilibrium")
    lines += ["## Approach to the mixed equilibrium", ""]
    if eq is not None:
        lines.append(f"Mixed equilibrium (parameters file): q° = {eq[0]:.6g}, t° = {eq[1]:.6g}"
                     + (f" (the game the dynamics runs: {geq[0]:.6g}, {geq[1]:.6g})" if geq else "") + ". "
                     "Distance: √((q̄ − q°)² + (t̄ − t°)²) of the whole run's time averages.")
    lines += ["", "| horizon | tasks | η | η_v | q̄ | t̄ | distance to (q°, t°) |", "|---|---|---|---|---|---|---|"]
    for h in v["horizons"]:
        p = h["predicted"]
        dist = f"{p['distance']:.4g} ± {p['distance_sd']:.2g}" if "distance" in p else ""
        lines.append(f"| {h['label']}, predicted | {h['tasks']} | {h['eta']:.4g} | {h['verifier_eta']:.4g} | "
                     f"{p['rate']:.4g} ± {p['rate_sd']:.2g} | {p['deviation']:.4g} ± {p['deviation_sd']:.2g} | "
                     f"{dist} |")
        o = h.get("observed")
        if o:
            d = f"{o['distance']:.4g}" if "distance" in o else ""
            lines.append(f"| {h['label']}, observed | {h['tasks']} | | | {o['rate']:.4g} | {o['deviation']:.4g} | {d} |")
    lines += ["", "(± one standard deviation over the simulated runs.)", ""]
    return lines


# --------------------------------------------------------------------------------------
# Plots
# --------------------------------------------------------------------------------------


def _plot_rates(comps: list[stats.Comparison], path: Path) -> str | None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sel = [c for c in comps if isinstance(c.predicted, float) and isinstance(c.interval, tuple)
           and ("per task" in c.quantity)]
    if not sel:
        return None
    fig, axes = plt.subplots(1, 2, figsize=(11, 0.5 + 0.6 * max(3, len(sel))), squeeze=False)
    groups = [[c for c in sel if "payoff" not in c.quantity], [c for c in sel if "payoff" in c.quantity]]
    for ax, group, title in zip(axes[0], groups, ("rates per task", "payoff per task")):
        for i, c in enumerate(group):
            lo, hi = c.interval
            ax.errorbar([c.observed], [i], xerr=[[c.observed - lo], [hi - c.observed]], fmt="o",
                        color="C0" if c.passed else "C3", capsize=3, label="observed (interval)" if i == 0 else None)
            ax.plot([c.predicted], [i], "kx", ms=9, label="predicted" if i == 0 else None)
        ax.set_yticks(range(len(group)), [c.quantity for c in group], fontsize=8)
        ax.set_title(title)
        if group:
            ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return str(path)


def _plot_learning(traj: dict[str, Any], path: Path) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = traj["windows"]
    mid = [(r["start"] + r["end"]) / 2 for r in rows]
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(mid, [r["predicted"] for r in rows], "k-", label=f"predicted ({traj['rule']})")
    if rows and "band" in rows[0]:
        ax.fill_between(mid, [r["band"][0] for r in rows], [r["band"][1] for r in rows], color="0.8",
                        label="predictive band")
    ax.errorbar(mid, [r["observed"] for r in rows],
                yerr=[[r["observed"] - r["interval"][0] for r in rows], [r["interval"][1] - r["observed"] for r in rows]],
                fmt="o", color="C0", capsize=3, label="observed (Clopper–Pearson)")
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("task of each adaptive provider")
    ax.set_ylabel("honest share")
    ax.set_title(f"{traj['spec']} at q = {traj['sampling_rate']:.4g}")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return str(path)


def _plot_two_population(batches: np.ndarray, pred: TwoPopulationPrediction, data: dict[str, Any],
                         path: Path) -> str:
    """Left: the (q, deviation share) trajectory, observed against predicted, the mixed equilibrium
    marked. Right: the running time averages q̄ and t̄ against the tasks, with the equilibrium."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sim = pred.runs
    q, n, dev = (np.asarray(batches, float)[:, i] for i in range(3))
    nb = len(q)
    k = max(1, nb // 100)  # smoothing: batches per point of the drawn trajectories

    def smooth(v):
        c = np.convolve(v, np.ones(k) / k, mode="valid")
        return c if len(c) else v

    share = dev / np.maximum(n, 1.0)
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(12, 4.8))
    ax.plot(smooth(sim.path_rate), smooth(sim.path_deviation), "k-", lw=1.2, label="predicted mean path (Monte Carlo)")
    mf = pred.mean_field
    ax.plot(mf["sampling_rate"], mf["deviation"], "k:", lw=0.8, label="mean-field path (expected increments)")
    ax.plot(smooth(q), smooth(share), "-", color="C0", lw=1, alpha=0.7,
            label=f"observed (batches{f', mean of {k}' if k > 1 else ''})")
    for i, r in enumerate(data["windows"]):
        a, b = r["rate"], r["deviation"]
        ax.errorbar([a["predicted"]], [b["predicted"]],
                    xerr=[[a["predicted"] - a["interval"][0]], [a["interval"][1] - a["predicted"]]],
                    yerr=[[b["predicted"] - b["interval"][0]], [b["interval"][1] - b["predicted"]]],
                    fmt="s", color="0.5", ms=4, capsize=2, lw=0.8,
                    label="predicted window mean, 99% range" if i == 0 else None)
        ax.plot([a["observed"]], [b["observed"]], "o", color="C0", ms=5,
                label="observed window mean" if i == 0 else None)
        ax.annotate(str(i + 1), (a["observed"], b["observed"]), fontsize=7, xytext=(3, 3), textcoords="offset points")
    eq = data.get("equilibrium") or data.get("game_equilibrium")
    if eq:
        ax.plot([eq[0]], [eq[1]], "*", color="C3", ms=14, label=f"mixed equilibrium ({eq[0]:.3g}, {eq[1]:.3g})")
    ax.set_xscale("log")
    shown = np.concatenate([smooth(q), smooth(sim.path_rate)])  # the mean field may spiral far out: not framed
    shown = shown[shown > 0]
    if shown.size:
        ax.set_xlim(shown.min() / 2, min(1.0, shown.max() * 1.5))
    ax.set_xlabel("sampling rate q_t (log scale)")
    ax.set_ylabel("deviation share")
    ax.set_title("trajectory")
    ax.legend(fontsize=7)
    # running time averages
    cum_n = np.cumsum(n)
    bx.plot(cum_n, np.cumsum(q * n) / cum_n, color="C0", label="observed q̄")
    bx.plot(cum_n, np.cumsum(dev) / cum_n, color="C1", label="observed t̄")
    sizes = np.diff(np.concatenate([[0], cum_n]))
    pq = np.cumsum(sim.path_rate * sizes) / cum_n
    pd_ = np.cumsum(sim.path_deviation * sizes) / cum_n
    bx.plot(cum_n, pq, "--", color="C0", lw=1, label="predicted mean q̄")
    bx.plot(cum_n, pd_, "--", color="C1", lw=1, label="predicted mean t̄")
    if eq:
        bx.axhline(eq[0], color="C0", ls=":", lw=1, label="q°")
        bx.axhline(eq[1], color="C1", ls=":", lw=1, label="t°")
    bx.set_xlabel("tasks")
    bx.set_ylabel("time average")
    bx.set_title("running time averages")
    bx.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return str(path)


def _plot_threshold(th: dict[str, Any], curve: Any, path: Path) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    pts = th["points"]
    qs = [p["sampling_rate"] for p in pts]
    ax.errorbar(qs, [p["observed"] for p in pts],
                yerr=[[p["observed"] - p["interval"][0] for p in pts], [p["interval"][1] - p["observed"] for p in pts]],
                fmt="o", color="C0", capsize=3, label="observed, final window")
    if curve is not None:
        ax.plot(curve[0], curve[1], "k-", lw=1, label=curve[2])
    ax.axvline(th["predicted_q_star"], color="C3", label="predicted q*")
    ax.axvspan(th["band"][0], th["band"][1], color="C3", alpha=0.15, label="unresolvable band")
    ax.axhline(0.5, color="0.6", ls=":")
    ax.set_xlabel("sampling rate q")
    ax.set_ylabel("honest share")
    ax.set_ylim(-0.02, 1.02)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return str(path)


# --------------------------------------------------------------------------------------
# Entry points
# --------------------------------------------------------------------------------------


def _validate(tasks: int, providers: int, verifiers: int, mode: str, adaptive: str | None, level: float,
              windows: int) -> None:
    if not isinstance(tasks, int) or tasks < 1:
        raise _bad("--tasks", "an integer ≥ 1", repr(tasks))
    if not isinstance(providers, int) or providers < 1:
        raise _bad("--providers", "an integer ≥ 1", repr(providers))
    if verifiers < 1:
        raise _bad("--verifiers", "an integer ≥ 1", repr(verifiers))
    if mode not in MODES:
        raise _bad("--mode", f"one of {', '.join(MODES)}", repr(mode))
    if adaptive is not None and adaptive not in ADAPTIVE:
        raise _bad("--adaptive", f"one of {', '.join(ADAPTIVE)}", repr(adaptive))
    if not 0.5 <= level < 1.0:
        raise _bad("--level", "a confidence level in [0.5, 1)", repr(level))
    if windows < 1:
        raise _bad("--windows", "an integer ≥ 1", repr(windows))


def _prepare_out(out: str | Path | None, scenario: Scenario, seed: int, kind: str) -> Path:
    if out is None:
        out = Path("runs") / f"{kind}-{scenario.name}-seed{seed}"
    out = Path(out)
    if (out / "ledger.sqlite").exists() or (out / "report.json").exists():
        raise _bad("--out", "a new run directory", f"{out} already holds a run")
    out.mkdir(parents=True, exist_ok=True)
    return out


def _write(result: ExperimentResult, out: Path) -> None:
    (out / "report.json").write_text(json.dumps(result.to_dict(), indent=2, ensure_ascii=False) + "\n")
    (out / "report.md").write_text(result.markdown())


def run_experiment(scenario: Scenario | str | Path, params: str | Path | dict | None = None, *, tasks: int = 4000,
                   providers: int = 8, mix: str | None = None, adaptive: str | None = None,
                   mode: str = "inprocess", seed: int = 0, level: float = stats.DEFAULT_LEVEL,
                   out: str | Path | None = None, verifiers: int = 2, windows: int = 10,
                   eta: float | None = None, precision: float | None = None, gamma: float = DEFAULT_GAMMA,
                   simulations: int = 400, batch: int | None = None, plots: bool = True, events_jsonl: bool = True,
                   progress: Callable[[int], None] | None = None, adaptive_verifiers: bool = False,
                   verifier_eta: float | None = None, _changes: Mapping[str, Any] | None = None,
                   _out_ready: bool = False) -> ExperimentResult:
    """Run the reference network with the scenario's parameters and compare every prediction.

    ``params``: a deployment-parameters file (or document) to use instead of exporting the
    scenario; its ``predictions`` are the ones tested. ``mix``: ``honest=6,weaker-model=2,...``
    (``adaptive=N`` places N adaptive providers); ``adaptive``: ``hedge`` | ``regret`` | ``logit``
    (all providers adaptive unless ``mix`` says otherwise). ``adaptive_verifiers`` (with
    ``adaptive="hedge"``, no ``mix``, in-process): the verifiers' common sampling rate is learned
    too (``reference_node.strategies.VerifierHedge``, learning rate ``verifier_eta``); the
    per-window time averages of q_t and of the deviation share are compared with simulated runs
    of the same process and the whole run's with the mixed equilibrium (module docstring). Bad
    input raises :class:`~mira_theory.scenario.ScenarioError` naming the option.
    """
    sc = _load_scenario(scenario)
    _check_game(sc)
    _validate(tasks, providers, verifiers, mode, adaptive, level, windows)
    _validate_verifiers(adaptive, mode, mix, verifier_eta, adaptive_verifiers)
    if adaptive_verifiers:
        out = Path(out) if _out_ready else _prepare_out(out, sc, seed, "experiment")
        return _run_two_population(sc, params, tasks=tasks, providers=providers, seed=seed, level=level, out=out,
                                   verifiers=verifiers, windows=windows, eta=eta, verifier_eta=verifier_eta,
                                   simulations=simulations, batch=batch, plots=plots, events_jsonl=events_jsonl,
                                   progress=progress, changes=_changes)
    if mix is None and adaptive is None:
        devs = [d.name for d in sc.deviations]
        mix = _default_mix(providers, devs)
    out = Path(out) if _out_ready else _prepare_out(out, sc, seed, "experiment")
    setup = _setup(sc, params, out, _changes)
    per_provider = tasks // providers
    spec, info = (None, {})
    if adaptive is not None:
        spec, info = _learner_spec(adaptive, setup, per_provider, eta, precision, gamma)
    specs = _specs(setup, providers, mix, adaptive, spec)
    K = specs.count(spec) if spec else 0
    if adaptive is not None and K == 0:
        raise _bad("--mix", "at least one 'adaptive' provider with --adaptive", repr(mix))
    if adaptive is not None and per_provider < windows:
        raise _bad("--tasks", f"at least {windows} tasks per provider ({windows * providers})", repr(tasks))
    window_size = per_provider // windows if adaptive else 0
    if batch is None and adaptive is not None:
        batch = max(providers, min(512, 32 * providers))  # ≤ 32 tasks per provider between observations
    t0 = time.perf_counter()
    db, workload = _run_network(setup, specs, tasks, verifiers, seed, mode, out, batch, progress)
    obs = _read_log(db, specs, {spec} if spec else set(), windows, window_size)
    notes: list[str] = []
    comps = _audit_comparisons(obs, setup.predictions, specs, {spec} if spec else set(), level, notes)
    trajectories: dict[str, Any] = {}
    band = None
    if adaptive is not None:
        share = None
        if adaptive in ("regret", "logit") and mode == "inprocess":  # the network's batches, exactly
            from mira_theory import dynamics

            where = [i for i, sp in enumerate(specs) if sp == spec]
            sizes = dynamics.batch_sizes(tasks, batch)
            starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
            share = np.stack([dynamics.round_robin(int(a), int(n), providers)[where] for a, n in zip(starts, sizes)])
        c, traj, band = _adaptive_comparisons(setup, obs, spec, adaptive, info, K, per_provider, windows,
                                              simulations, seed, level, notes, share)
        comps += c
        trajectories[spec] = traj
        if adaptive == "hedge" and mode == "processes":
            notes.append("hedge over HTTP: observations arrive asynchronously, so importance weights use the "
                         "probabilities in force when they arrive; the simulated prediction assumes in-process timing")
    adjusted = stats.adjust(comps, "holm", level)
    counts: dict[str, int] = {}
    for s in specs:
        counts[s] = counts.get(s, 0) + 1
    run = {"params": str(params) if params is not None and not isinstance(params, dict) else "exported",
           "params_file": str(setup.params_path), "mode": mode, "seed": seed, "level": level, "tasks": tasks,
           "providers": providers, "verifiers": verifiers, "mix": counts, "adaptive": info or None,
           "batch": batch if mode == "inprocess" else None, "workload": workload,
           "seconds": time.perf_counter() - t0, "scenario_sha256": sc.sha256}
    observed = {"totals": obs.summary["totals"], "by_action": obs.by_action,
                "by_strategy": {k: {kk: v[kk] for kk in ("providers", "tasks", "detections", "false_slashes",
                                                          "capped_slashes", "payoff_per_task")}
                                for k, v in obs.summary["by_strategy"].items()},
                "episode_gaps": {k: {"count": len(v), "mean": float(np.mean(v))} for k, v in obs.gaps.items() if v}}
    if band is not None:
        observed["resolvable_band_ratios"] = [band.lower_ratio, band.upper_ratio]
    result = ExperimentResult(sc.name, out, adjusted, run, observed, notes, trajectories)
    if events_jsonl:
        from reference_node import events

        events.export_jsonl(db, out / "events.jsonl")
    if plots:
        p = _plot_rates(list(adjusted), out / "predictions.png")
        if p:
            result.plots.append(p)
        for traj in trajectories.values():
            result.plots.append(_plot_learning(traj, out / "learning.png"))
    _write(result, out)
    return result


def _default_mix(providers: int, deviations: list[str]) -> str:
    """Half honest, the rest spread over the deviations (at least one honest provider)."""
    if providers == 1 or not deviations:
        return f"honest={providers}"
    honest = max(1, providers - max(len(deviations), providers // 2))
    rest = providers - honest
    counts = {d: rest // len(deviations) + (i < rest % len(deviations)) for i, d in enumerate(deviations)}
    return ",".join([f"honest={honest}"] + [f"{d}={n}" for d, n in counts.items() if n])


def threshold_comparisons(points: list[dict[str, Any]], q_star: float, band: tuple[float, float],
                          level: float = stats.DEFAULT_LEVEL, rule: str = "") -> list[stats.Comparison]:
    """Side tests of the final-window honest shares at each swept q against a predicted q*.

    ``points``: dicts with ``sampling_rate``, ``honest`` and ``n`` (final-window counts) and
    optionally ``predicted`` (a share to show); ``band``: the (lower, upper) ratios to q* of
    the unresolvable band. Unresolvable points are not tested. Not adjusted.
    """
    b = _Band(band[0], band[1], math.nan, 0)
    out = []
    for p in points:
        side = _side(p["sampling_rate"], q_star, b)
        p["side"] = side
        if side == "unresolvable" or not p["n"]:
            continue
        out.append(stats.binomial_side(f"{rule} providers at q = {p['sampling_rate']:.5g} (q/q*pred = "
                               f"{p['sampling_rate'] / q_star:.3f}): predicted {side} majority", p["honest"], p["n"],
                               side, p.get("predicted", math.nan), level))
    return out


def run_threshold(scenario: Scenario | str | Path, params: str | Path | dict | None = None, *, points: int = 7,
                  adaptive: str = "logit", tasks: int = 6000, providers: int = 8, seed: int = 0,
                  level: float = stats.DEFAULT_LEVEL, out: str | Path | None = None, verifiers: int = 2,
                  windows: int = 5, eta: float | None = None, precision: float | None = None,
                  gamma: float = DEFAULT_GAMMA, mode: str = "inprocess", plots: bool = True,
                  q_star: float | None = None, progress: Callable[[int], None] | None = None) -> ExperimentResult:
    """Sweep q from 0.5·q* to 1.5·q* with adaptive providers; test the side of each final share.

    q* is the parameters file's ``predictions.deterrence_sampling_rate`` (``q_star`` overrides
    it: the prediction under test). Each point is a full experiment in ``out/q-<i>`` (its own
    report); the threshold report holds the side tests, Holm-adjusted together.
    """
    from mira_theory import dynamics

    sc = _load_scenario(scenario)
    _check_game(sc)
    _validate(tasks, providers, verifiers, mode, adaptive, level, windows)
    if points < 2:
        raise _bad("--points", "an integer ≥ 2", repr(points))
    out = _prepare_out(out, sc, seed, "threshold")
    base = _setup(sc, params, out / "base")
    q_pred = base.predictions.get("deterrence_sampling_rate") if q_star is None else q_star
    if q_pred is None or not math.isfinite(float(q_pred)) or float(q_pred) <= 0:
        raise ScenarioError([Problem(str(params or sc.path or sc.name), "predictions.deterrence_sampling_rate",
                                     "a finite positive q* to sweep around", repr(q_pred))])
    q_pred = float(q_pred)
    grid = np.linspace(0.5 * q_pred, min(1.0, 1.5 * q_pred), points)
    t0 = time.perf_counter()
    pts, subs = [], []
    band_ratios = None
    for i, q in enumerate(grid):
        sub = run_experiment(base.scenario, None, tasks=tasks, providers=providers, adaptive=adaptive, mode=mode,
                             seed=seed + i, level=level, out=out / f"q-{i}", verifiers=verifiers, windows=windows,
                             eta=eta, precision=precision, gamma=gamma, plots=False, events_jsonl=False,
                             progress=progress, _changes={"audit.sampling_rate": float(q)})
        subs.append(sub)
        traj = next(iter(sub.trajectories.values()))
        last = traj["windows"][-1]
        h = int(round(last["observed"] * last["n"]))
        pts.append({"sampling_rate": float(q), "ratio": float(q / q_pred), "honest": h, "n": last["n"],
                    "observed": last["observed"], "interval": last["interval"], "predicted": last["predicted"],
                    "run": str(sub.run_dir), "subrun_passed": sub.passed})
        if band_ratios is None:
            band_ratios = sub.observed.get("resolvable_band_ratios")
    assert band_ratios is not None
    comps = threshold_comparisons(pts, q_pred, tuple(band_ratios), level, adaptive)
    adjusted = stats.adjust(comps, "holm", level)
    lo, hi = band_ratios[0] * q_pred, band_ratios[1] * q_pred
    th = {"predicted_q_star": q_pred, "band": [lo, hi], "band_ratios": band_ratios, "points": pts,
          "rule": adaptive}
    notes = [f"each point is a run of {tasks} tasks ({providers} {adaptive} providers); its own report is in "
             "its directory (q-<i>/report.md) with the window-by-window comparisons",
             "the band is dynamics.resolvable_interval for the learner's precision (logit: λ; hedge: the "
             "mean-field η·t, which overstates how far bandit Hedge gets; regret: (L+R)/√t), as ratios to q*, "
             "placed around the predicted q*"]
    failed_sub = [p["run"] for p in pts if not p["subrun_passed"]]
    if failed_sub:
        notes.append(f"point runs with a failed comparison of their own (not part of this table): {failed_sub}")
    run = {"params": str(params) if params is not None and not isinstance(params, dict) else "exported",
           "mode": mode, "seed": seed, "level": level, "tasks": tasks * points, "providers": providers,
           "verifiers": verifiers, "mix": {subs[0].run["adaptive"]["rule"]: providers}, "points": points,
           "adaptive": subs[0].run["adaptive"], "seconds": time.perf_counter() - t0}
    result = ExperimentResult(sc.name, out, adjusted, run, {"points": pts}, notes, threshold=th)
    if plots:
        curve = None
        info = subs[0].run["adaptive"]
        qs = np.linspace(grid[0], grid[-1], 201)
        if adaptive == "logit":
            df = dynamics.threshold_prediction(base.scenario, precision=info["precision"], sampling_rates=qs)
            curve = (qs, df["logit"].to_numpy(), f"logit response σ(λ·u(q)), λ = {info['precision']:g}")
        result.plots.append(_plot_threshold(th, curve, out / "threshold.png"))
    shutil.rmtree(out / "base", ignore_errors=True)
    _write(result, out)
    return result
