r"""Monte Carlo simulation of the audit and consensus games: the second method for the closed forms.

Both simulators are vectorized (numpy over blocks of tasks or claims), seeded and
reproducible: the same ``seed`` gives bit-identical results on every backend
(:mod:`mira_theory.backends`) and with any ``chunk_size``. The work is cut into fixed
*units* (an audit replicate's run of rounds is cut into segments whose length depends only
on the number of providers; a consensus replicate is one unit), each with its own
``SeedSequence`` from ``SeedSequence(seed).spawn``; chunks only group units, and per-unit
results are integer counts summed per replicate (exact, so the order of addition does not
matter). Money is computed from the summed counts at the end.

Results are xarray Datasets with a ``replicate`` dimension, the pooled rates with exact
Clopper–Pearson intervals, payoffs per task with normal (CLT over replicates) intervals, and
the closed form's prediction beside each (``*_predicted``).

Audit game (the model of :mod:`mira_theory.games.audit`, simulated task by task)
---------------------------------------------------------------------------------
Each round every provider serves one task. Per task: its action (honest or deviation j) is
drawn from the provider's strategy; the task is audited with probability q; an audited task
draws n verifiers of which Binomial(n, r) collude, and the audit is effective unless all n
do; the output of deviation j is divergent with probability δ_j (honest output never is); an
effective audit flags a divergent output with probability 1 − β and an honest one with
probability α (a deviation's non-divergent output is not flagged, as in the closed form
d_j = q·e·δ_j·(1 − β)). A flagged task forfeits its reward R and is slashed L, capped by the
stake left (so a provider loses min(S, L·K) over K flags); every task costs its action's cost.
The verifier side pays n·k per audit, receives the bounty b·(slash taken), and bears the
damage D of every divergent output that was not flagged.

Divergence of tasks that are not audited only matters through its count (the damage), so it
is drawn as Binomial(unaudited tasks, δ_j) per provider and block: the same distribution as
one draw per task, at a fraction of the cost. Probabilities are compared with 53-bit uniform
doubles. Slash settlement latency (λ·T) is not simulated: slashes apply at once.

Consensus game (the model of :mod:`mira_theory.games.consensus`)
-----------------------------------------------------------------
A network of nodes (each honest or a deviation) verifies claims; each claim draws a committee
of N distinct nodes uniformly at random, and a latent accuracy p ~ Beta(a(1−κ)/κ, (1−a)(1−κ)/κ)
(p = a when κ = 0; p ∈ {0, 1} when κ = 1). Honest members are right with probability p, else
vote the distractor (option 1); a deviating member is right with probability a_j, else votes
one of the m − 1 wrong options uniformly. Consensus is the option with ≥ K = ⌈τN⌉ votes.
A vote matching the consensus earns r; each vote costs its strategy's cost; a node's votes are
cut into consecutive windows of W (an incomplete last window is not evaluated) and a window
with fewer than ⌈θW⌉ matches is slashed L.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr
from scipy import stats

from mira_theory import __version__
from mira_theory.backends import check_backend, progress_bar, run_chunks
from mira_theory.scenario import Problem, Scenario, ScenarioError

BLOCK_TASKS = 1 << 18  # tasks drawn per block (2 MiB of uniforms); a block is whole rounds
SEGMENT_BLOCKS = 8  # blocks per unit of parallel work (about 2 M tasks)
CONSENSUS_BLOCK_VOTES = 1 << 16
MAX_ROUNDS = 10**10
MAX_AGENTS = 10**6


# --------------------------------------------------------------------------------------
# Shared: validation, strategies, intervals
# --------------------------------------------------------------------------------------


def _positive_int(file: str, key: str, value: Any, upper: int) -> tuple[int | None, list[Problem]]:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or not 1 <= value <= upper:
        return None, [Problem(file, key, f"an integer from 1 to {upper:,}", repr(value))]
    return int(value), []


def strategies_of(file: str, actions: Sequence[str], mix: Any, agents: int | None,
                  agent_key: str) -> tuple[np.ndarray, list[str]]:
    """(probability of each action per agent, a label per agent) from ``mix``.

    ``mix`` is a mapping action -> count of agents playing it (``{"honest": 6,
    "weaker-model": 2}``) or a sequence of one mapping action -> probability per agent (a
    mixed strategy per agent). Default: ``agents`` honest agents, or one per action.
    """
    problems: list[Problem] = []
    if mix is None:
        mix = {"honest": agents} if agents else {a: 1 for a in actions}
    rows: list[np.ndarray] = []
    labels: list[str] = []
    if isinstance(mix, Mapping):
        for name, count in mix.items():
            if name not in actions:
                problems.append(Problem(file, "mix", f"strategies among {list(actions)}", f"unknown {name!r}"))
                continue
            if isinstance(count, bool) or not isinstance(count, int | np.integer) or count < 0:
                problems.append(Problem(file, f"mix.{name}", "a count ≥ 0 of agents", repr(count)))
                continue
            row = np.zeros(len(actions))
            row[actions.index(name)] = 1.0
            rows += [row] * int(count)
            labels += [name] * int(count)
    else:
        for i, strat in enumerate(mix):
            row = np.zeros(len(actions))
            if not isinstance(strat, Mapping):
                problems.append(Problem(file, f"mix[{i}]", "a mapping strategy -> probability", repr(strat)))
                continue
            for name, p in strat.items():
                if name not in actions:
                    problems.append(Problem(file, f"mix[{i}]", f"strategies among {list(actions)}",
                                            f"unknown {name!r}"))
                elif not isinstance(p, int | float) or not 0 <= p <= 1:
                    problems.append(Problem(file, f"mix[{i}].{name}", "a probability in [0, 1]", repr(p)))
                else:
                    row[actions.index(name)] = float(p)
            if abs(row.sum() - 1.0) > 1e-9:
                problems.append(Problem(file, f"mix[{i}]", "probabilities summing to 1", f"{row.sum():g}"))
            rows.append(row / max(row.sum(), 1e-300))
            labels.append("+".join(f"{a}:{p:g}" for a, p in zip(actions, row) if p > 0))
    if not problems and not rows:
        problems.append(Problem(file, "mix", f"at least one {agent_key[:-1]}", "none"))
    if not problems and agents is not None and len(rows) != agents:
        problems.append(Problem(file, agent_key, f"the number of agents in mix ({len(rows)})", str(agents)))
    if not problems and len(rows) > MAX_AGENTS:
        problems.append(Problem(file, agent_key, f"at most {MAX_AGENTS:,}", str(len(rows))))
    if problems:
        raise ScenarioError(problems)
    return np.array(rows), labels


def clopper_pearson(successes: Any, trials: Any, confidence: float) -> tuple[np.ndarray, np.ndarray]:
    """Exact binomial confidence interval for successes/trials (NaN where trials = 0)."""
    x, n = np.asarray(successes, float), np.asarray(trials, float)
    a = (1 - confidence) / 2
    with np.errstate(invalid="ignore", divide="ignore"):
        lo = np.where(x > 0, stats.beta.ppf(a, x, n - x + 1), 0.0)
        hi = np.where(x < n, stats.beta.ppf(1 - a, x + 1, n - x), 1.0)
    bad = n <= 0
    return np.where(bad, np.nan, lo), np.where(bad, np.nan, hi)


def clt_interval(samples: np.ndarray, axis: int, confidence: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(mean, low, high): normal interval over ``axis`` (NaN bounds with one sample)."""
    n = samples.shape[axis]
    mean = samples.mean(axis=axis)
    if n < 2:
        nan = np.full_like(mean, np.nan)
        return mean, nan, nan
    z = stats.norm.ppf(0.5 + confidence / 2)
    half = z * samples.std(axis=axis, ddof=1) / math.sqrt(n)
    return mean, mean - half, mean + half


def _units_per_chunk(n_units: int, backend: str, workers: int | None, chunk_size: int | None) -> int:
    if chunk_size is not None:
        if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
            raise ScenarioError([Problem("<arguments>", "chunk_size", "an integer ≥ 1", repr(chunk_size))])
        return chunk_size
    if backend == "inprocess":
        return 1
    return max(1, math.ceil(n_units / ((workers or 2) * 4)))


def _run_units(fn: Any, units: list[Any], weights: list[int], desc: str, unit: str, backend: str,
               client: Any, workers: int | None, chunk_size: int | None, progress: bool | None) -> list[Any]:
    per = _units_per_chunk(len(units), backend, workers, chunk_size)
    chunks = [units[i:i + per] for i in range(0, len(units), per)]
    cw = [sum(weights[i:i + per]) for i in range(0, len(units), per)]
    with progress_bar(sum(weights), desc, unit, progress) as bar:
        results = run_chunks(functools.partial(_map_units, fn), chunks, backend=backend, client=client,
                             workers=workers, weights=cw, progress=bar)
    return [r for chunk in results for r in chunk]


def _map_units(fn: Any, chunk: Sequence[Any]) -> list[Any]:
    return [fn(u) for u in chunk]


def _load(scenario: Any) -> Scenario:
    from mira_theory.api import load

    return scenario if isinstance(scenario, Scenario) else load(scenario)


def _common_attrs(scenario: Scenario, seed: int, confidence: float, model: str) -> dict[str, Any]:
    return {"game": scenario.game, "scenario_name": scenario.name, "scenario_path": scenario.path or "",
            "scenario_sha256": scenario.sha256, "scenario": scenario.source, "seed": int(seed),
            "confidence": float(confidence), "model": model, "toolkit_version": __version__}


def _check_common(file: str, seed: Any, replicates: Any, confidence: Any, backend: str) -> int:
    check_backend(backend)
    problems: list[Problem] = []
    reps, p = _positive_int(file, "replicates", replicates, 10**6)
    problems += p
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        problems.append(Problem(file, "seed", "an integer ≥ 0", repr(seed)))
    if not isinstance(confidence, float | int) or not 0 < confidence < 1:
        problems.append(Problem(file, "confidence", "a probability in (0, 1)", repr(confidence)))
    if problems:
        raise ScenarioError(problems)
    return reps  # type: ignore[return-value]


# --------------------------------------------------------------------------------------
# Audit game
# --------------------------------------------------------------------------------------

AUDIT_COUNTS = ("tasks", "audits", "effective_audits", "divergent", "flagged")


def _audit_unit(unit: tuple[dict[str, Any], int, int, int, np.random.SeedSequence]) -> tuple[int, np.ndarray]:
    """Simulate ``rounds`` rounds of one replicate's segment; counts (5, providers, actions)."""
    spec, replicate, rounds, block_rounds, seq = unit
    rng = np.random.default_rng(seq)
    strat = spec["strategies"]
    P, A = strat.shape
    q, n, r, beta, alpha = spec["q"], spec["n"], spec["r"], spec["beta"], spec["alpha"]
    delta = spec["divergence"]
    pure = np.all((strat == 0) | (strat == 1), axis=1)
    pure_action = np.argmax(strat, axis=1)
    mixed_cols = np.flatnonzero(~pure)
    cum = np.cumsum(strat[mixed_cols], axis=1)[:, :-1]  # (mixed, A − 1) cut points
    counts = np.zeros((len(AUDIT_COUNTS), P, A), np.int64)
    buf = np.empty((block_rounds, P))
    cols_all = np.arange(P)
    size = P * A
    done = 0
    while done < rounds:
        B = min(block_rounds, rounds - done)
        u = buf[:B]
        rng.random(out=u)
        # actions: pure providers play theirs; mixed ones draw one per task
        if mixed_cols.size:
            action = np.broadcast_to(pure_action, (B, P)).copy()
            v = rng.random((B, mixed_cols.size))
            action[:, mixed_cols] = (v[..., None] >= cum[None]).sum(axis=-1)
            block_tasks = np.bincount((cols_all * A + action).ravel(), minlength=size).reshape(P, A)
        else:
            block_tasks = np.zeros((P, A), np.int64)
            block_tasks[cols_all, pure_action] = B
        idx = np.flatnonzero(u < q)  # audited tasks
        cols = idx % P
        act = action.reshape(-1)[idx] if mixed_cols.size else pure_action[cols]
        m = idx.size
        if r <= 0.0:
            eff = np.ones(m, bool)
        elif r >= 1.0:
            eff = np.zeros(m, bool)
        else:
            eff = rng.binomial(n, r, m) < n  # effective unless every drawn verifier colludes
        div = rng.random(m) < delta[act]
        draw = rng.random(m)
        flag = eff & np.where(div, draw < 1.0 - beta, (act == 0) & (draw < alpha))
        key = cols * A + act
        block_audits = np.bincount(key, minlength=size).reshape(P, A)
        counts[0] += block_tasks
        counts[1] += block_audits
        counts[2] += np.bincount(key[eff], minlength=size).reshape(P, A)
        counts[4] += np.bincount(key[flag], minlength=size).reshape(P, A)
        # divergence of the unaudited tasks matters only through its count (the damage)
        counts[3] += (np.bincount(key[div], minlength=size).reshape(P, A)
                      + rng.binomial(block_tasks - block_audits, delta))
        done += B
    return replicate, counts


def simulate_audit(scenario: Any, *, providers: int | None = None, mix: Any = None, rounds: int = 10_000,
                   replicates: int = 1, seed: int = 0, confidence: float = 0.99, backend: str = "inprocess",
                   client: Any = None, workers: int | None = None, chunk_size: int | None = None,
                   progress: bool | None = None) -> xr.Dataset:
    """Simulate the audit game: ``providers`` providers playing ``mix`` for ``rounds`` rounds,
    ``replicates`` times (see the module doc). ``chunk_size``: units per chunk."""
    from mira_theory.games import audit

    s = _load(scenario)
    if s.game != "audit":
        raise ScenarioError([Problem(s.path or s.name, "scenario.game", "'audit'", repr(s.game))])
    file = s.path or s.name
    reps = _check_common(file, seed, replicates, confidence, backend)
    R, p = _positive_int(file, "rounds", rounds, MAX_ROUNDS)
    if p:
        raise ScenarioError(p)
    actions = ["honest", *(d.name for d in s.deviations)]
    strat, labels = strategies_of(file, actions, mix, providers, "providers")
    P, A = strat.shape
    a = s.audit
    spec = {"strategies": strat, "q": a.sampling_rate, "n": a.verifiers, "r": a.collusion, "beta": a.miss_rate,
            "alpha": a.false_alarm_rate,
            "divergence": np.array([0.0, *(d.divergence for d in s.deviations)])}
    block_rounds = max(1, BLOCK_TASKS // P)
    seg_rounds = block_rounds * SEGMENT_BLOCKS
    n_seg = math.ceil(R / seg_rounds)
    units, weights = [], []
    for rep, rep_seq in enumerate(np.random.SeedSequence(seed).spawn(reps)):
        for j, seq in enumerate(rep_seq.spawn(n_seg)):
            rr = min(seg_rounds, R - j * seg_rounds)
            units.append((spec, rep, rr, block_rounds, seq))
            weights.append(rr * P)
    results = _run_units(_audit_unit, units, weights, "audit simulation", "task", backend, client, workers,
                         chunk_size, progress)
    counts = np.zeros((reps, len(AUDIT_COUNTS), P, A), np.int64)
    for rep, c in results:
        counts[rep] += c
    return _audit_dataset(s, audit, strat, labels, actions, counts, R, seed, confidence)


def _audit_dataset(s: Any, audit: Any, strat: np.ndarray, labels: list[str], actions: list[str],
                   counts: np.ndarray, rounds: int, seed: int, confidence: float) -> xr.Dataset:
    t, a, st = s.task, s.audit, s.stake
    cost = np.array([t.cost_honest, *(d.cost for d in s.deviations)])
    tasks, audits, effective, divergent, flagged = (counts[:, i] for i in range(len(AUDIT_COUNTS)))
    K = flagged.sum(-1)  # flags per provider
    n_tasks = tasks.sum(-1)
    slashed = np.minimum(st.total, st.slash * K)  # each flag takes min(L, stake left)
    reward = t.reward * (n_tasks - K)
    spent = (tasks * cost).sum(-1)
    payoff = reward - spent - slashed
    undetected = divergent - flagged  # a deviation is flagged only when divergent
    undetected[..., 0] = 0  # honest flags are false alarms, not caught divergences
    verifier = a.bounty_share * slashed - a.verifiers * a.cost * audits.sum(-1) - t.damage * undetected.sum(-1)
    dims = ("replicate", "provider")
    coords = {"replicate": ("replicate", np.arange(counts.shape[0])),
              "provider": ("provider", np.arange(len(labels))),
              "strategy": ("provider", np.array(labels, dtype=object), {"description": "the provider's strategy"}),
              "action": ("action", np.array(actions, dtype=object), {"description": "honest or a deviation"})}

    def v(dim, data, units, desc):
        return (dim, data, {"units": units, "description": desc})

    pa = dims + ("action",)
    data = {
        "tasks": v(pa, tasks, "tasks", "tasks served with each action"),
        "audits": v(pa, audits, "tasks", "audited tasks"),
        "effective_audits": v(pa, effective, "tasks", "audited tasks with at least one honest verifier"),
        "divergent": v(pa, divergent, "tasks", "tasks whose output diverged detectably"),
        "flagged": v(pa, flagged, "tasks", "tasks flagged (slashed)"),
        "slashed": v(dims, slashed, "money", "stake slashed, min(S, L·flags)"),
        "stake_remaining": v(dims, st.total - slashed, "money", "stake left at the end"),
        "exhausted": v(dims, slashed >= st.total, "boolean", "the stake ran out"),
        "reward": v(dims, reward, "money", "rewards received (R per unflagged task)"),
        "cost": v(dims, spent, "money", "cost of the tasks served"),
        "payoff": v(dims, payoff, "money", "reward − cost − slashed"),
        "verifier_payoff": v(dims, verifier, "money", "bounties − audit costs − damage of undetected "
                                                      "divergent outputs, on this provider's tasks"),
    }
    # pooled rates per action, with exact intervals, beside the closed forms
    pooled = counts.sum(axis=(0, 2))  # (counts, actions)
    p_tasks, p_audits, _, _, p_flagged = pooled
    pred_flag, pred_payoff = [], []
    for j in range(len(actions)):
        dev = s.deviations[j - 1] if j else s.deviations[0]
        cf = audit.closed_form(**audit.arguments(s, dev))
        pred_flag.append(float(cf["detection_per_task"] if j else cf["false_slash_per_task"]))
        pred_payoff.append(float(cf["payoff_deviation"] if j else cf["payoff_honest"]))
    lo, hi = clopper_pearson(p_flagged, p_tasks, confidence)
    alo, ahi = clopper_pearson(p_audits, p_tasks, confidence)
    with np.errstate(invalid="ignore", divide="ignore"):
        data.update({
            "flag_rate": v(("action",), p_flagged / p_tasks, "probability per task",
                           "flags per task, pooled (deviation: detection rate; honest: false-slash rate)"),
            "flag_rate_low": v(("action",), lo, "probability per task", f"Clopper–Pearson {confidence:g} lower"),
            "flag_rate_high": v(("action",), hi, "probability per task", f"Clopper–Pearson {confidence:g} upper"),
            "flag_rate_predicted": v(("action",), np.array(pred_flag), "probability per task",
                                     "closed form: d_j = q·e·δ_j·(1 − β), honest f = q·e·α"),
            "audit_rate": v(("action",), p_audits / p_tasks, "probability per task", "audits per task, pooled"),
            "audit_rate_predicted": v(("action",), np.full(len(actions), s.audit.sampling_rate),
                                      "probability per task", "the sampling rate q"),
            "audit_rate_low": v(("action",), alo, "probability per task", f"Clopper–Pearson {confidence:g} lower"),
            "audit_rate_high": v(("action",), ahi, "probability per task", f"Clopper–Pearson {confidence:g} upper"),
        })
    # payoff per task by action, for pure-strategy providers (slashes charged at L per flag
    # while the stake lasts: exact when no stake ran out)
    per_task = np.full((counts.shape[0], len(actions)), np.nan)
    for j in range(len(actions)):
        sel = strat[:, j] == 1.0
        if sel.any():
            n = n_tasks[:, sel].sum(-1)
            per_task[:, j] = payoff[:, sel].sum(-1) / n
    mean, plo, phi = clt_interval(per_task, 0, confidence)
    data.update({
        "payoff_per_task": v(("replicate", "action"), per_task, "money per task",
                             "mean payoff per task of the providers playing this action purely (nan: none)"),
        "payoff_per_task_mean": v(("action",), mean, "money per task", "mean over replicates"),
        "payoff_per_task_low": v(("action",), plo, "money per task",
                                 f"normal {confidence:g} interval over replicates, lower (nan: 1 replicate)"),
        "payoff_per_task_high": v(("action",), phi, "money per task", "the same, upper"),
        "payoff_per_task_predicted": v(("action",), np.array(pred_payoff), "money per task",
                                       "closed form U_h / U_j (no stake cap)"),
    })
    attrs = _common_attrs(s, seed, confidence, "audit game, task by task (mira_theory.montecarlo)")
    attrs.update(rounds=int(rounds), providers=len(labels))
    return xr.Dataset(data, coords=coords, attrs=attrs)


# --------------------------------------------------------------------------------------
# Consensus game
# --------------------------------------------------------------------------------------


def _committees(rng: np.random.Generator, B: int, M: int, N: int) -> np.ndarray:
    """B committees of N distinct nodes out of M, uniformly at random."""
    if N == M:
        return np.broadcast_to(np.arange(M), (B, M)).copy()
    if M <= 8 * N:
        return np.argpartition(rng.random((B, M)), N - 1, axis=1)[:, :N]
    out = rng.integers(0, M, (B, N))
    while True:  # redraw the committees with a repeated member (rare when N² ≪ M)
        srt = np.sort(out, axis=1)
        bad = np.flatnonzero((np.diff(srt, axis=1) == 0).any(axis=1))
        if not bad.size:
            return out
        out[bad] = rng.integers(0, M, (bad.size, N))


def _consensus_unit(unit: tuple[dict[str, Any], int, np.random.SeedSequence]) -> tuple[int, dict[str, np.ndarray]]:
    spec, replicate, seq = unit
    rng = np.random.default_rng(seq)
    M, N, K, m = spec["nodes"], spec["N"], spec["K"], spec["options"]
    a, kappa, W, need = spec["accuracy"], spec["correlation"], spec["window"], spec["need"]
    node_strategy, acc = spec["node_strategy"], spec["strategy_accuracy"]
    C = spec["claims"]
    B = max(1, CONSENSUS_BLOCK_VOTES // N)
    outcome = np.zeros(3, np.int64)  # correct, wrong, none
    members_all, match_all = [], []
    done = 0
    while done < C:
        b = min(B, C - done)
        members = _committees(rng, b, M, N)
        if 0 < kappa < 1 and 0 < a < 1:
            s = (1 - kappa) / kappa
            p = rng.beta(a * s, (1 - a) * s, b)
        elif kappa >= 1:
            p = (rng.random(b) < a).astype(float)
        else:
            p = np.full(b, a)
        strat = node_strategy[members]
        honest = strat == 0
        u = rng.random((b, N))
        right = np.where(honest, u < p[:, None], u < acc[strat])
        votes = np.where(right, 0, 1).astype(np.int64)
        wrong_dev = np.flatnonzero(~honest & ~right)
        if m > 2 and wrong_dev.size:
            votes.flat[wrong_dev] = rng.integers(1, m, wrong_dev.size)
        tally = np.stack([(votes == o).sum(axis=1) for o in range(m)], axis=1)
        best = tally.argmax(axis=1)
        consensus = np.where(tally.max(axis=1) >= K, best, -1)
        outcome += [(consensus == 0).sum(), (consensus > 0).sum(), (consensus < 0).sum()]
        members_all.append(members.ravel())
        match_all.append((votes == consensus[:, None]).ravel())
        done += b
    node = np.concatenate(members_all)
    match = np.concatenate(match_all)
    order = np.argsort(node, kind="stable")  # each node's votes, in claim order
    node, match = node[order], match[order]
    votes_per = np.bincount(node, minlength=M)
    start = np.concatenate([[0], np.cumsum(votes_per)[:-1]])
    position = np.arange(node.size) - start[node]
    windows = votes_per // W
    full = position < windows[node] * W
    window_start = np.concatenate([[0], np.cumsum(windows)[:-1]])
    wid = window_start[node[full]] + position[full] // W
    window_matches = np.bincount(wid, weights=match[full], minlength=windows.sum()).astype(np.int64)
    window_node = np.repeat(np.arange(M), windows)
    slashed = np.bincount(window_node, weights=window_matches < need, minlength=M).astype(np.int64)
    return replicate, {"votes": votes_per.astype(np.int64), "matches": np.bincount(node, weights=match,
                                                                                    minlength=M).astype(np.int64),
                       "windows": windows.astype(np.int64), "slashed_windows": slashed, "outcome": outcome}


def simulate_consensus(scenario: Any, *, nodes: int | None = None, mix: Any = None, claims: int = 10_000,
                       replicates: int = 1, seed: int = 0, confidence: float = 0.99,
                       backend: str = "inprocess", client: Any = None, workers: int | None = None,
                       chunk_size: int | None = None, progress: bool | None = None) -> xr.Dataset:
    """Simulate the consensus game: a network of ``nodes`` nodes playing ``mix`` verifies
    ``claims`` claims, ``replicates`` times (see the module doc). Default network: the
    scenario's ``network.nodes``, all honest. One replicate is one unit of parallel work."""
    from mira_theory.games import consensus

    s = _load(scenario)
    if s.game != "consensus":
        raise ScenarioError([Problem(s.path or s.name, "scenario.game", "'consensus'", repr(s.game))])
    file = s.path or s.name
    reps = _check_common(file, seed, replicates, confidence, backend)
    C, p = _positive_int(file, "claims", claims, MAX_ROUNDS)
    if p:
        raise ScenarioError(p)
    actions = ["honest", *(d.name for d in s.deviations)]
    if nodes is None and mix is None:
        nodes = s.network.nodes
    strat, labels = strategies_of(file, actions, mix, nodes, "nodes")
    if not np.all((strat == 0) | (strat == 1)):
        raise ScenarioError([Problem(file, "mix", "pure strategies (counts per strategy) for consensus nodes",
                                     "mixed strategies")])
    M = len(labels)
    N = s.committee.size
    if N > M:
        raise ScenarioError([Problem(file, "nodes", f"at least committee.size = {N} nodes", str(M))])
    spec = {"nodes": M, "N": N, "K": s.quorum, "options": s.claim.options, "accuracy": s.verifier.accuracy,
            "correlation": s.verifier.error_correlation, "window": s.slashing.window,
            "need": consensus.slash_count(s.slashing.window, s.slashing.agreement_threshold),
            "node_strategy": np.argmax(strat, axis=1),
            "strategy_accuracy": np.array([s.verifier.accuracy, *(d.accuracy for d in s.deviations)]),
            "claims": C}
    units = [(spec, rep, seq) for rep, seq in enumerate(np.random.SeedSequence(seed).spawn(reps))]
    results = _run_units(_consensus_unit, units, [C] * reps, "consensus simulation", "claim", backend, client,
                         workers, chunk_size, progress)
    out = {k: np.zeros((reps, M), np.int64) for k in ("votes", "matches", "windows", "slashed_windows")}
    outcome = np.zeros((reps, 3), np.int64)
    for rep, r in results:
        for k in out:
            out[k][rep] = r[k]
        outcome[rep] = r["outcome"]
    return _consensus_dataset(s, consensus, actions, labels, spec, out, outcome, C, seed, confidence)


def _consensus_dataset(s: Any, consensus: Any, actions: list[str], labels: list[str], spec: dict[str, Any],
                       out: dict[str, np.ndarray], outcome: np.ndarray, claims: int, seed: int,
                       confidence: float) -> xr.Dataset:
    W, theta, L, r = (s.slashing.window, s.slashing.agreement_threshold, s.slashing.slash, s.committee.reward)
    cost = np.array([s.verifier.cost, *(d.cost for d in s.deviations)])
    node_strategy = spec["node_strategy"]
    reward = r * out["matches"]
    spent = cost[node_strategy] * out["votes"]
    slash = L * out["slashed_windows"]
    payoff = reward - spent - slash
    dims = ("replicate", "node")

    def v(dim, data, units, desc):
        return (dim, data, {"units": units, "description": desc})

    data: dict[str, Any] = {
        "votes": v(dims, out["votes"], "votes", "claims the node sat on"),
        "matches": v(dims, out["matches"], "votes", "votes equal to the consensus"),
        "windows": v(dims, out["windows"], "windows", "complete windows of W votes evaluated"),
        "slashed_windows": v(dims, out["slashed_windows"], "windows", "windows with fewer than ⌈θW⌉ matches"),
        "reward": v(dims, reward, "money", "r per matching vote"),
        "cost": v(dims, spent, "money", "cost per vote of the node's strategy"),
        "slash": v(dims, slash, "money", "L per slashed window"),
        "payoff": v(dims, payoff, "money", "reward − cost − slash"),
        "claims_correct": v(("replicate",), outcome[:, 0], "claims", "consensus on the right option"),
        "claims_wrong": v(("replicate",), outcome[:, 1], "claims", "consensus on a wrong option"),
        "claims_none": v(("replicate",), outcome[:, 2], "claims", "no option reached the quorum"),
    }
    N, m, tau = s.committee.size, s.claim.options, s.committee.threshold
    a, kappa = s.verifier.accuracy, s.verifier.error_correlation
    honest = consensus.committee_outcome(N, {}, m, tau, a, kappa)
    pred_agree = [honest.agree_honest]
    for d in s.deviations:
        one = consensus.committee_outcome(N - 1, {d.name: (1, d.accuracy)}, m, tau, a, kappa)
        pred_agree.append(one.agree_deviation[d.name])
    pred_agree = np.array(pred_agree)
    pred_slash = np.asarray(consensus.slash_probability(W, theta, pred_agree), float)
    matches, votes, slashed, windows = (np.zeros(len(actions)) for _ in range(4))
    for j in range(len(actions)):
        sel = node_strategy == j
        matches[j], votes[j] = out["matches"][:, sel].sum(), out["votes"][:, sel].sum()
        slashed[j], windows[j] = out["slashed_windows"][:, sel].sum(), out["windows"][:, sel].sum()
    alo, ahi = clopper_pearson(matches, votes, confidence)
    slo, shi = clopper_pearson(slashed, windows, confidence)
    total = outcome.sum()
    olo, ohi = clopper_pearson(outcome.sum(0), np.full(3, total), confidence)
    with np.errstate(invalid="ignore", divide="ignore"):
        data.update({
            "agreement_rate": v(("action",), matches / votes, "probability", "matching votes per vote, pooled"),
            "agreement_rate_low": v(("action",), alo, "probability", f"Clopper–Pearson {confidence:g} lower"),
            "agreement_rate_high": v(("action",), ahi, "probability", f"Clopper–Pearson {confidence:g} upper"),
            "agreement_predicted": v(("action",), pred_agree, "probability",
                                     "closed form p_h (all-honest committee) / p_j (one deviator among "
                                     "N − 1 honest): exact for an all-honest network / a lone deviator"),
            "slash_rate": v(("action",), slashed / windows, "probability per window",
                            "slashed windows per window, pooled"),
            "slash_rate_low": v(("action",), slo, "probability per window", f"Clopper–Pearson {confidence:g} lower"),
            "slash_rate_high": v(("action",), shi, "probability per window", "the same, upper"),
            "slash_rate_predicted": v(("action",), pred_slash, "probability per window",
                                      "closed form P(Binomial(W, p) < θW) at the predicted agreement"),
            "outcome_rate": v(("outcome",), outcome.sum(0) / total, "probability per claim", "pooled"),
            "outcome_rate_low": v(("outcome",), olo, "probability per claim", f"Clopper–Pearson {confidence:g}"),
            "outcome_rate_high": v(("outcome",), ohi, "probability per claim", "the same, upper"),
            "outcome_predicted": v(("outcome",), np.array([honest.correct, honest.wrong, honest.none]),
                                   "probability per claim", "committee_outcome of an all-honest committee"),
        })
    per_claim = np.full((outcome.shape[0], len(actions)), np.nan)
    for j in range(len(actions)):
        sel = node_strategy == j
        if sel.any():
            per_claim[:, j] = payoff[:, sel].sum(-1) / out["votes"][:, sel].sum(-1)
    mean, plo, phi = clt_interval(per_claim, 0, confidence)
    data.update({
        "payoff_per_claim": v(("replicate", "action"), per_claim, "money per claim", "per vote cast (nan: none)"),
        "payoff_per_claim_mean": v(("action",), mean, "money per claim", "mean over replicates"),
        "payoff_per_claim_low": v(("action",), plo, "money per claim", f"normal {confidence:g} interval, lower"),
        "payoff_per_claim_high": v(("action",), phi, "money per claim", "the same, upper"),
    })
    coords = {"replicate": ("replicate", np.arange(outcome.shape[0])),
              "node": ("node", np.arange(len(labels))),
              "strategy": ("node", np.array(labels, dtype=object), {"description": "the node's strategy"}),
              "action": ("action", np.array(actions, dtype=object)),
              "outcome": ("outcome", np.array(["correct", "wrong", "none"], dtype=object))}
    attrs = _common_attrs(s, seed, confidence, "consensus game, claim by claim (mira_theory.montecarlo)")
    attrs.update(claims=int(claims), nodes=len(labels))
    return xr.Dataset(data, coords=coords, attrs=attrs)


def simulate(scenario: Scenario | str | Path, *, agents: int | None = None, rounds: int = 10_000,
             **kwargs: Any) -> xr.Dataset:
    """Dispatch on the scenario's game: ``agents`` providers (audit) or nodes (consensus),
    ``rounds`` rounds (audit) or claims (consensus)."""
    s = _load(scenario)
    if s.game == "audit":
        return simulate_audit(s, providers=agents, rounds=rounds, **kwargs)
    if s.game == "consensus":
        return simulate_consensus(s, nodes=agents, claims=rounds, **kwargs)
    raise ScenarioError([Problem(s.path or s.name, "scenario.game", "'audit' or 'consensus'", repr(s.game))])
