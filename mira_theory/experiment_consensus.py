r"""The consensus game's predictions against an executed in-process run of the reference network.

Flow (as :mod:`mira_theory.experiment` for the audit game): scenario → export (or a given
parameters document) → :func:`reference_node.committee.run_committee` runs the committee
network with its parameters and environment → the run's event log is read
(:func:`reference_node.committee.summarize_committee` over :func:`reference_node.events.iter_events`)
→ each prediction is compared with the test of :mod:`mira_theory.stats` named for it, at
``level``, the family corrected by Holm (``stats.adjust``). Reports: ``report.md`` and
``report.json`` in ``out`` (the format of experiment.py), with ``events.jsonl`` and ``params.json``.

What is compared
----------------
The exported predictions describe an all-honest committee (``committee_outcome``, honest
agreement p_h) and a committee with one deviator among N − 1 honest members (deviation
agreement p_j). The network draws committees from a population with ``mix`` deviators, so
these are compared on the claims whose committee has that composition (the draw does not
depend on the votes, so conditioning on it is exact):

- **Agreement rates** (``predictions.agreement``): honest — the vote of the first seat of
  each all-honest committee; deviation j — its vote in each committee where it is the only
  deviator. One vote per claim, claims independent: exact binomial test.
- **Committee outcome** (``predictions.committee_outcome``): correct / wrong / none over the
  all-honest committees; chi-square (exact multinomial when counts are small).

Windows and payoffs involve every committee a node sits on, so their predictions are the
model's (:func:`mira_theory.games.consensus.committee_outcome` and ``slash_probability``)
evaluated at the run's population: a node's agreement probability is averaged over the
multivariate hypergeometric composition of the other N − 1 seats (committees are drawn
afresh per claim, so a window's match count is exactly Binomial(W, p̄)); with no deviators in
the mix these equal the exported values, which the report shows next to them.

- **Committee outcome over all claims**: chi-square against the composition-mixed outcome.
- **Slashes per window** per strategy (honest: false slashes; deviation: detections): exact
  binomial test of P(Binomial(W, p̄) < θW) over the closed windows of its nodes.
- **Payoff per claim sat on** per strategy ((rewards − the environment's costs − slashes) /
  votes) against p̄·r − c − L·P_slash/W: one-sample t test on the linearized per-claim samples
  (claims are independent; the votes on one claim are not, e.g. no consensus costs every
  member its reward at once), i.e. the claim-clustered standard error of the ratio estimate;
  a slash is counted on the claim that closed its window (serial dependence within a window
  is not modelled).
- **Claims until a deviator's first slash**: reported (not tested).

Windows of different nodes share claims, so the node-window slash counts are weakly dependent
(two nodes share a claim with probability ≈ N/nodes per claim); the binomial tests treat them
as independent — noted in the report.
"""

from __future__ import annotations

import itertools
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mira_theory import stats
from mira_theory.experiment import ExperimentResult
from mira_theory.results import jsonable
from mira_theory.scenario import Problem, Scenario, ScenarioError

MAX_COMPOSITIONS = 200_000


def _bad(option: str, expected: str, found: str) -> ScenarioError:
    return ScenarioError([Problem("<command line>", option, expected, found)])


@dataclass
class ConsensusExperimentResult(ExperimentResult):
    """An :class:`~mira_theory.experiment.ExperimentResult` whose run is a committee run."""

    def markdown(self) -> str:
        r = self.run
        lines = [f"# Consensus experiment: scenario '{self.scenario}'", "",
                 f"- parameters: `{r.get('params')}`; mode {r.get('mode')}; seed {r.get('seed')}; level {r.get('level')}; "
                 f"multiple comparisons: Holm over {len(self.comparisons)}",
                 f"- run: {r.get('claims')} claims, {r.get('nodes')} nodes "
                 f"({', '.join(f'{k}×{v}' for k, v in (r.get('mix') or {}).items())}), committees of "
                 f"{r.get('committee_size')} (quorum {r.get('quorum')}), window {r.get('window')}; "
                 f"{r.get('seconds', 0):.1f} s",
                 self.verdict(), "", self.table(), ""]
        if self.notes:
            lines += ["## Notes", ""] + [f"- {n}" for n in self.notes] + [""]
        return "\n".join(lines)


# --------------------------------------------------------------------------------------
# Predictions at the run's population
# --------------------------------------------------------------------------------------


def _compositions(counts: dict[str, int], k: int):
    """(composition, probability): k seats drawn without replacement from ``counts``."""
    names = list(counts)
    total = sum(counts.values())
    denom = math.comb(total, k)
    ranges = [range(min(counts[n], k) + 1) for n in names]
    for combo in itertools.product(*ranges):
        if sum(combo) != k:
            continue
        w = math.prod(math.comb(counts[n], c) for n, c in zip(names, combo)) / denom
        if w > 0:
            yield dict(zip(names, combo)), w


def population_predictions(cp: Any, mix: dict[str, int]) -> dict[str, Any]:
    """Agreement p̄, slash per window and payoff per claim of each strategy in a network of
    ``mix`` nodes, and the committee outcome over all claims (composition-averaged)."""
    from mira_theory.games import consensus

    N = cp.committee_size
    n_comp = math.comb(N - 1 + len(mix) - 1, len(mix) - 1)
    if n_comp > MAX_COMPOSITIONS:
        raise _bad("--mix", f"at most {MAX_COMPOSITIONS} committee compositions to average over", str(n_comp))

    def outcome(comp: dict[str, int]) -> Any:
        devs = {d: (c, cp.deviations[d][1]) for d, c in comp.items() if d != "honest" and c}
        return consensus.committee_outcome(comp.get("honest", 0), devs, cp.options, cp.threshold, cp.accuracy,
                                           cp.error_correlation)

    out: dict[str, Any] = {"strategies": {}}
    for t in mix:
        if not mix[t]:
            continue
        others = dict(mix)
        others[t] -= 1
        p = 0.0
        for comp, w in _compositions(others, N - 1):
            comp = dict(comp)
            comp[t] = comp.get(t, 0) + 1
            o = outcome(comp)
            p += w * (o.agree_honest if t == "honest" else o.agree_deviation[t])
        slash = float(consensus.slash_probability(cp.window, cp.agreement_threshold, p))
        payoff = p * cp.reward - cp.cost_of(t) - cp.slash * slash / cp.window
        out["strategies"][t] = {"agreement": p, "slash_per_window": slash, "payoff_per_claim": payoff}
    cells = {"correct": 0.0, "wrong": 0.0, "none": 0.0}
    for comp, w in _compositions(mix, N):
        o = outcome(comp)
        cells["correct"] += w * o.correct
        cells["wrong"] += w * o.wrong
        cells["none"] += w * o.none
    out["committee_outcome"] = cells
    return out


# --------------------------------------------------------------------------------------
# Entry point
# --------------------------------------------------------------------------------------


def _document(scenario: Scenario, params: str | Path | dict | None) -> tuple[dict[str, Any], str]:
    from mira_theory import deployment

    if params is None:
        return deployment.export(scenario), "exported"
    if isinstance(params, dict):
        return json.loads(json.dumps(params)), "<params document>"
    deployment.read_params(params, "consensus")  # names the file and key of any problem
    text = Path(params).read_text(encoding="utf-8-sig")
    if str(params).endswith(".toml"):
        import tomllib

        return tomllib.loads(text), str(params)
    return json.loads(text), str(params)


def _parse_mix(mix: str | None, nodes: int | None, deviations: list[str]) -> dict[str, int]:
    if mix is None:
        assert nodes is not None
        bad = max(1, nodes // 10) if deviations else 0
        counts = {"honest": nodes - bad}
        for i, d in enumerate(deviations):
            counts[d] = bad // len(deviations) + (i < bad % len(deviations))
        return {k: v for k, v in counts.items() if v}
    counts: dict[str, int] = {}
    for item in mix.split(","):
        name, sep, count = item.strip().partition("=")
        name = name.strip()
        if not sep or not count.strip().isdigit():
            raise _bad("--mix", "STRATEGY=COUNT,... (honest or a deviation name)", repr(mix))
        if name != "honest" and name not in deviations:
            raise _bad("--mix", f"strategies among honest, {', '.join(deviations)}", repr(name))
        counts[name] = counts.get(name, 0) + int(count)
    if nodes is not None and sum(counts.values()) != nodes:
        raise _bad("--mix", f"counts summing to --nodes = {nodes}", repr(mix))
    return {k: v for k, v in counts.items() if v}


def run_consensus_experiment(scenario: Scenario | str | Path, params: str | Path | dict | None = None, *,
                             claims: int = 4000, nodes: int | None = None, mix: str | None = None, seed: int = 0,
                             level: float = stats.DEFAULT_LEVEL, out: str | Path | None = None,
                             events_jsonl: bool = True, mode: str = "inprocess",
                             progress: Callable[[int], None] | None = None) -> ConsensusExperimentResult:
    """Run the committee network with the scenario's consensus parameters (or the document
    ``params``, whose ``predictions`` are then the ones tested) and compare.

    ``mode``: ``inprocess`` (:func:`reference_node.committee.run_committee`) or ``processes`` (the
    services on loopback, started by ``mira-node up``: a ledger, one process per committee node and
    the coordinator; with the same seed it decides every claim as the in-process run does).

    ``nodes``: network size (default: the ``mix`` total, else the scenario's ``network.nodes``);
    ``mix``: ``honest=36,random-guess=4`` (default: a tenth of the nodes, at least one, spread
    over the deviations). Bad input raises :class:`~mira_theory.scenario.ScenarioError` naming the option.
    """
    from reference_node import events
    from reference_node.committee import CommitteeParams, run_committee, summarize_committee

    if not isinstance(scenario, Scenario):
        from mira_theory.api import load

        scenario = load(scenario)
    sc = scenario
    if sc.game != "consensus":
        raise ScenarioError([Problem(sc.path or sc.name, "scenario.game", "'consensus' (the audit game's "
                                     "experiment is mira_theory.experiment.run_experiment)", repr(sc.game))])
    if not isinstance(claims, int) or claims < 1:
        raise _bad("--claims", "an integer ≥ 1", repr(claims))
    if not 0.5 <= level < 1.0:
        raise _bad("--level", "a confidence level in [0.5, 1)", repr(level))
    if mode not in ("inprocess", "processes"):
        raise _bad("--mode", "inprocess or processes", repr(mode))
    doc, source = _document(sc, params)
    preds = doc.get("predictions")
    if not isinstance(preds, dict) or not isinstance(preds.get("agreement"), dict) \
            or not isinstance(preds.get("committee_outcome"), dict):
        raise ScenarioError([Problem(source, "predictions", "the exported consensus predictions (agreement, "
                                     "committee_outcome): re-export with mira-theory export",
                                     "nothing" if preds is None else "an incomplete table")])
    cp = CommitteeParams.from_doc(doc)
    if nodes is None and mix is None:
        nodes = sc.network.nodes
    if nodes is not None and (not isinstance(nodes, int) or nodes < cp.committee_size):
        raise _bad("--nodes", f"an integer ≥ the committee size {cp.committee_size}", repr(nodes))
    counts = _parse_mix(mix, nodes, list(cp.deviations))
    nodes = sum(counts.values())
    if nodes < cp.committee_size:
        raise _bad("--mix", f"at least the committee size {cp.committee_size} nodes", repr(mix))
    out = Path("runs") / f"consensus-{sc.name}-seed{seed}" if out is None else Path(out)
    if (out / "ledger.sqlite").exists() or (out / "report.json").exists():
        raise _bad("--out", "a new run directory", f"{out} already holds a run")
    out.mkdir(parents=True, exist_ok=True)
    (out / "params.json").write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n")
    strategies = [s for s, c in counts.items() for _ in range(c)]
    t0 = time.perf_counter()
    db = out / "ledger.sqlite"
    if mode == "inprocess":
        workload = run_committee(cp, db, strategies, claims, seed, progress=progress)
    else:
        workload = _run_processes(out, counts, claims, seed, db)
    summary = summarize_committee(events.iter_events(db))
    pop = population_predictions(cp, counts)
    notes: list[str] = []
    comps = _comparisons(summary, preds, pop, cp, level, notes)
    adjusted = stats.adjust(comps, "holm", level)
    run = {"params": source if source != "<params document>" else "document", "params_file": str(out / "params.json"),
           "mode": mode, "seed": seed, "level": level, "claims": claims, "nodes": nodes, "mix": counts,
           "committee_size": cp.committee_size, "quorum": cp.quorum, "window": cp.window,
           "workload": workload, "seconds": time.perf_counter() - t0, "scenario_sha256": sc.sha256}
    observed = {"outcomes": summary["outcomes"], "outcomes_all_honest": summary["outcomes_all_honest"],
                "by_strategy": {k: {kk: v[kk] for kk in ("nodes", "votes", "agreement_rate", "designated", "windows",
                                                          "slashes", "slash_per_window", "capped_slashes",
                                                          "payoff_per_claim", "first_slash_claims",
                                                          "never_slashed")}
                                for k, v in summary["by_strategy"].items()},
                "population_predictions": pop}
    result = ConsensusExperimentResult(sc.name, out, adjusted, jsonable(run), jsonable(observed), notes)
    if events_jsonl:
        events.export_jsonl(db, out / "events.jsonl")
    (out / "report.json").write_text(json.dumps(result.to_dict(), indent=2, ensure_ascii=False) + "\n")
    (out / "report.md").write_text(result.markdown())
    return result


def _run_processes(out: Path, counts: dict[str, int], claims: int, seed: int, db: Path) -> dict[str, Any]:
    """``mira-node up`` on the run's params file: every service a process on loopback."""
    from mira_theory.experiment import run_mira_node

    network = out / "network"
    seconds = run_mira_node(["up", "--params", str(out / "params.json"), "--nodes", str(sum(counts.values())),
                             "--claims", str(claims), "--mix", ",".join(f"{k}={v}" for k, v in counts.items() if v),
                             "--seed", str(seed), "--out", str(network), "--quiet"])
    (network / "ledger.sqlite").replace(db)  # the run directory's ledger, as an in-process run leaves it
    return {"claims": claims, "seconds": seconds, "claims_per_second": claims / seconds if seconds else None,
            "network": str(network)}


def is_consensus(scenario: Scenario | str | Path) -> bool:
    """Whether the scenario (file) is of the consensus game."""
    if isinstance(scenario, Scenario):
        return scenario.game == "consensus"
    from mira_theory.api import load

    return load(scenario).game == "consensus"


def run_from_args(args: Any, progress: Callable[[int], None] | None = None) -> ConsensusExperimentResult:
    """``mira-theory experiment`` on a consensus scenario, from the parsed arguments of
    :mod:`mira_theory.cli_experiment`: ``--tasks`` is the number of claims, ``--mix`` the
    network (its total is the number of nodes; without it the scenario's ``network.nodes``
    with a tenth deviating), ``--params``, ``--seed``, ``--level``, ``--out`` as for the audit
    game, ``--mode`` inprocess or processes (the committee services on loopback).
    ``--providers``/``--verifiers`` are not used; ``--adaptive`` and ``--threshold`` are refused
    (not built for the consensus game)."""
    if getattr(args, "adaptive", None):
        raise _bad("--adaptive", "no adaptive nodes: the consensus network has fixed strategies only",
                   repr(args.adaptive))
    if getattr(args, "threshold", False):
        raise _bad("--threshold", "no threshold sweep for the consensus game", "--threshold")
    return run_consensus_experiment(args.scenario, args.params, claims=args.tasks, mix=args.mix, seed=args.seed,
                                    level=args.level, out=args.out, mode=getattr(args, "mode", "inprocess"),
                                    progress=progress)


def _comparisons(summary: dict[str, Any], preds: dict[str, Any], pop: dict[str, Any], cp: Any, level: float,
                 notes: list[str]) -> list[stats.Comparison]:
    out: list[stats.Comparison] = []
    by = summary["by_strategy"]
    # exported predictions, on the committees they describe
    for t, p in preds["agreement"].items():
        d = by.get(t, {}).get("designated")
        if not d or not d["trials"]:
            continue
        where = "all-honest committees, first seat" if t == "honest" else "committees where it is the only deviator"
        out.append(stats.binomial(f"{t}: agreement with consensus ({where})", float(p), d["agreements"],
                                  d["trials"], level))
    co = preds["committee_outcome"]
    oh = summary["outcomes_all_honest"]
    if sum(oh.values()):
        out.append(stats.chi_square("committee outcome, all-honest committees (correct / wrong / none)",
                                    {k: float(co[k]) for k in ("correct", "wrong", "none")}, oh, level))
    # the model at the run's population
    out.append(stats.chi_square("committee outcome, all claims (population-averaged)",
                                pop["committee_outcome"], summary["outcomes"], level))
    exported_window = {"honest": preds.get("false_slash_per_window"), **(preds.get("detection_per_window") or {})}
    exported_payoff = preds.get("expected_payoff_per_claim") or {}
    for t, p in pop["strategies"].items():
        s = by.get(t)
        if not s:
            continue
        what = "false slashes" if t == "honest" else "detections"
        if s["windows"]:
            c = stats.binomial(f"{t}: {what} per window", p["slash_per_window"], s["slashes"], s["windows"], level)
            ex = exported_window.get(t)
            out.append(_note(c, f"p̄ = {p['agreement']:.6g}; exported (one-deviator committees): "
                                f"{'n/a' if ex is None else f'{float(ex):.6g}'}"))
        cl = s["claim_payoff"]
        if cl["C"] >= 2 and cl["n"]:
            total, sq = _linearized(cl)
            c = stats.mean_payoff(f"{t}: payoff per claim sat on", p["payoff_per_claim"], total=total,
                                  total_squares=sq, n=int(cl["C"]), level=level)
            ex = exported_payoff.get(t)
            out.append(_note(c, f"claim-clustered ratio estimate over {cl['n']} votes; exported: "
                                f"{'n/a' if ex is None else f'{float(ex):.6g}'}"))
        if t != "honest":
            firsts = s["first_slash_claims"]
            notes.append(f"{t}: claims sat on until the first slash, per node: {firsts[:10]}"
                         f"{'…' if len(firsts) > 10 else ''} ({s['never_slashed']} never slashed; a window is "
                         f"{cp.window} claims, predicted detection per window {p['slash_per_window']:.6g}) — not tested")
        capped = s.get("capped_slashes", 0)
        if capped:
            notes.append(f"{t}: {capped} slash(es) capped at the remaining stake")
    notes.append("slashes per window: windows of different nodes share claims (weak dependence), treated as "
                 "independent by the binomial tests")
    notes.append("agreement rates: one vote per claim (exact binomial); pooled rates over all votes are in "
                 "observed.by_strategy.agreement_rate")
    return out


def _linearized(cl: dict[str, float]) -> tuple[float, float]:
    """Σy and Σy² of the linearized per-claim samples y_c = x̄ + (S_c − x̄·n_c)/n̄ (x̄ = ΣS/Σn,
    n̄ = Σn/C): their mean is x̄ and their t standard error is the claim-clustered (ratio
    estimator) one, sqrt(Σ(S_c − x̄·n_c)²·C/(C − 1))/Σn, so the t test of stats.mean_payoff is
    valid although votes on one claim are dependent."""
    C, S, n = cl["C"], cl["S"], cl["n"]
    x = S / n
    nbar = n / C
    d2 = max(0.0, cl["SS"] - 2.0 * x * cl["Sn"] + x * x * cl["nn"])
    return C * x, C * x * x + d2 / (nbar * nbar)


def _note(c: stats.Comparison, note: str) -> stats.Comparison:
    from dataclasses import replace

    return replace(c, note=note)
