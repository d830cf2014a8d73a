"""Regenerate every figure, table and number of the paper from code, then compile it if LaTeX is
installed.

    .venv/bin/python paper/build.py              # numbers, tables, figures (PDF + PNG), then the PDF
    .venv/bin/python paper/build.py --no-figures # numbers and tables only
    .venv/bin/python paper/build.py --no-pdf     # everything but the LaTeX run

Outputs: ``paper/generated/numbers.tex`` (one ``\\newcommand`` per number quoted in the text),
``paper/generated/*.tex`` (tables), ``paper/figures/*.pdf`` (for the paper) and ``*.png`` (for
the README). Seeds are fixed, so the output is the same on every run. :func:`numbers` returns
the macros without writing anything (``tests/test_paper.py`` compares it with the committed
file).
"""

from __future__ import annotations

import argparse
import math
import shutil
import subprocess
import sys
import tempfile
import time
from functools import cache
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
MODELS = ROOT / "models"
GENERATED = HERE / "generated"
FIGURES = HERE / "figures"
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

import mira_theory as mt  # noqa: E402
from mira_theory import incentives  # noqa: E402
from mira_theory.games import consensus  # noqa: E402

SEED_FIXED, SEED_HEDGE = 1, 2  # the executed runs (reproducible event for event)
COMMITTEE_SIZES = (3, 5, 7, 9, 11, 15, 21, 31, 51)
WINDOWS = (10, 20, 50, 100)


# --------------------------------------------------------------------------------------
# Computation (shared by numbers, tables and figures)
# --------------------------------------------------------------------------------------


def _equilibria(s: Any, N: int) -> list:
    d = s.deviations[0]
    _, _, delta = consensus.payoff_difference_coefficients(
        N, s.claim.options, s.committee.threshold, s.committee.reward, s.verifier.cost, s.verifier.accuracy,
        s.verifier.error_correlation, d.cost, d.accuracy, s.slashing.window, s.slashing.agreement_threshold,
        s.slashing.slash)
    return consensus.symmetric_equilibria(delta)


@cache
def compute(runs: bool = True) -> dict[str, Any]:
    """Every result the paper quotes or draws (cached: one computation per process)."""
    from mira_theory.design import design

    c: dict[str, Any] = {}
    default = mt.load(MODELS / "default.toml")
    c["default"], c["default_solution"] = default, mt.solve(default)
    c["pos"] = pos = mt.load(MODELS / "proof-of-sampling.toml")
    c["pos_solution"] = mt.solve(pos)
    claims = mt.load(MODELS / "binary-claims.toml")
    c["claims"], c["claims_solution"] = claims, mt.solve(claims)
    c["equilibria"] = {N: _equilibria(claims, N) for N in COMMITTEE_SIZES}
    c["guessing"] = consensus.guessing_table((2, 3, 4, 6, 8, 10), range(1, 11))
    c["design"] = design(default, free=("sampling_rate", "slash", "total_stake"), S_max=1e4, L_max=100,
                         safety_margin=0.25)
    c["committee_design"] = mt.design_consensus(claims)
    c["incentives"] = incentives.solve(default)
    if runs:
        from mira_theory.experiment import run_experiment

        base = default.replace({"audit.sampling_rate": 0.2, "stake.total": 1e5})
        c["run_scenario"] = base
        with tempfile.TemporaryDirectory(prefix="mira-paper-") as tmp:
            c["run_fixed"] = run_experiment(base, tasks=4000, providers=6, seed=SEED_FIXED, out=Path(tmp) / "fixed",
                                            plots=False, events_jsonl=False)
            c["hedge_scenario"] = hedge = base.replace({"audit.sampling_rate": 0.08})
            c["run_hedge"] = run_experiment(hedge, tasks=6000, providers=4, adaptive="hedge",
                                            mix="honest=1,adaptive=3", seed=SEED_HEDGE, out=Path(tmp) / "hedge",
                                            plots=False, events_jsonl=False, simulations=200)
    return c


# --------------------------------------------------------------------------------------
# Numbers
# --------------------------------------------------------------------------------------


def _g(x: float, digits: int = 3) -> str:
    """A number for the text: `digits` significant digits, plain notation."""
    if x == 0:
        return "0"
    if not math.isfinite(x):
        return r"\infty"
    exp = math.floor(math.log10(abs(x)))
    if -4 <= exp < 6:
        decimals = max(0, digits - 1 - exp)
        text = f"{x:,.{decimals}f}"
        if "." in text:
            text = text.rstrip("0").rstrip(".")
        return text.replace(",", "{,}")
    mant = f"{x / 10**exp:.{digits - 1}f}".rstrip("0").rstrip(".")
    return f"10^{{{exp}}}" if mant == "1" else f"{mant}\\times 10^{{{exp}}}"


def _pct(x: float, digits: int = 2) -> str:
    return _g(100 * x, digits) + r"\%"


def numbers(runs: bool = True) -> dict[str, str]:
    """Macro name → formatted value, for every number the text quotes (nothing is written)."""
    c = compute(runs)
    d, ds = c["default"], c["default_solution"]
    dev = {x.name: x for x in ds.deviations}
    cs, claims = c["claims_solution"], c["claims"]
    wd = cs.window_design
    des, cdes = c["design"], c["committee_design"]
    n: dict[str, str] = {
        "DefaultReward": _g(d.task.reward), "DefaultCostHonest": _g(d.task.cost_honest),
        "DefaultSlash": _g(d.stake.slash), "DefaultSamplingRate": _g(d.audit.sampling_rate),
        "DefaultStake": _g(d.stake.total),
        "DefaultInFlight": _g(d.stake.throughput * d.stake.settlement_latency),
        "QstarWeaker": _g(dev["weaker-model"].deterrence_sampling_rate),
        "QstarRandom": _g(dev["random-output"].deterrence_sampling_rate),
        "LstarWeaker": _g(dev["weaker-model"].minimum_slash),
        "SstarRandom": _g(dev["random-output"].minimum_total_stake),
        "SstarWeaker": _g(dev["weaker-model"].minimum_total_stake),
        "PosQstar": _g(c["pos_solution"].deterrence_sampling_rate),
        "GuessFourFive": _pct(float(c["guessing"].loc[4, 5]), 3),
        "GuessTwoTen": _pct(float(c["guessing"].loc[2, 10]), 3),
        "ClaimsAgreeHonest": _g(cs.agreement_honest), "ClaimsAgreeGuess": _g(cs.deviations[0].agreement),
        "ClaimsWindow": str(wd.window), "ClaimsWindowTheta": _g(wd.agreement_threshold),
        "ClaimsWindowFalse": _g(wd.false_slash, 2), "ClaimsWindowMiss": _g(wd.worst_miss, 2),
        "ClaimsCapture": _pct(cs.capture_probability, 2), "ClaimsCoC": _g(cs.cost_of_corruption),
        "ClaimsPfC": _g(cs.profit_from_corruption), "ClaimsMinCommittee": str(cs.minimum_committee),
        "TippingFive": _g(next(e.deviation_probability for e in c["equilibria"][5] if e.kind == "mixed")),
        "TippingFiftyOne": _g(next(e.deviation_probability for e in c["equilibria"][51] if e.kind == "mixed")),
        "DesignQ": _pct(des.parameters["sampling_rate"], 3), "DesignL": _g(des.parameters["slash"]),
        "DesignS": _g(des.parameters["total_stake"], 4), "DesignCost": _g(des.objective, 4),
        "CommitteeN": str(int(cdes.parameters["committee_size"])),
        "CommitteeW": str(int(cdes.parameters["window"])),
        "CommitteeL": _g(cdes.parameters["slash"]),
        "CheatingRateWeaker": _g(c["incentives"].checker[0].cheating_rate),
        "CheckProbWeaker": _g(c["incentives"].checker[0].check_probability),
        "FeeRemedyCost": _g(c["incentives"].remedy("audit-fee").cost_per_task),
        "DesignSafety": _pct(0.25, 2), "DesignLmax": _g(100), "DesignSmax": _g(1e4),
        "ClaimsMaxFalse": _g(claims.slashing.max_false_slash), "ClaimsMaxMiss": _g(claims.slashing.max_miss),
        "ClaimsMaxCapture": _g(claims.network.max_capture), "ClaimsShare": _pct(claims.network.adversary_stake_share),
        "ClaimsN": str(claims.committee.size), "TipNSmall": "5", "TipNLarge": "51",
        "TestLevel": _g(0.99),
        "RobustGamma": _pct(0.10, 2), "RobustShock": _pct(0.001, 2), "RobustLoss": _pct((1 + 1 / 0.10) * 0.001, 2),
    }
    if runs:
        fixed, hedge = c["run_fixed"], c["run_hedge"]
        rates = {x.quantity.split(":")[0]: x for x in fixed.comparisons if "detection per task" in x.quantity}
        traj = next(iter(hedge.trajectories.values()))
        n.update({
            "RunSamplingRate": _g(c["run_scenario"].audit.sampling_rate),
            "RunTasks": _g(fixed.run["tasks"], 4), "RunProviders": str(fixed.run["providers"]),
            "RunPredWeaker": _g(rates["weaker-model"].predicted), "RunObsWeaker": _g(rates["weaker-model"].observed),
            "RunPredRandom": _g(rates["random-output"].predicted), "RunObsRandom": _g(rates["random-output"].observed),
            "RunComparisons": str(len(fixed.comparisons)),
            "RunPassed": str(sum(x.passed for x in fixed.comparisons)),
            "HedgeSamplingRate": _g(c["hedge_scenario"].audit.sampling_rate),
            "HedgeTasks": _g(hedge.run["tasks"], 4), "HedgeWindows": str(len(traj["windows"])),
            "HedgePassed": str(sum(x.passed for x in hedge.comparisons if "honest share" in x.quantity)),
            "HedgeFinalObs": _g(traj["windows"][-1]["observed"]),
            "HedgeFinalPred": _g(traj["windows"][-1]["predicted"]),
        })
    return n


def numbers_tex(macros: dict[str, str]) -> str:
    lines = ["% Generated by paper/build.py: do not edit. One macro per number quoted in the text."]
    lines += [f"\\newcommand{{\\{k}}}{{{v}}}" for k, v in macros.items()]
    return "\n".join(lines) + "\n"


def read_numbers_tex(text: str) -> dict[str, str]:
    """The macros of a numbers.tex (inverse of numbers_tex)."""
    import re

    return {m.group(1): m.group(2) for m in re.finditer(r"^\\newcommand\{\\(\w+)\}\{(.*)\}$", text, re.M)}


# --------------------------------------------------------------------------------------
# Tables
# --------------------------------------------------------------------------------------


def tables(runs: bool = True) -> dict[str, str]:
    c = compute(runs)
    out = {}
    g = c["guessing"]
    rows = [" & ".join([str(m)] + [f"${_g(float(v), 2)}$" for v in g.loc[m, [1, 2, 3, 5, 10]]]) + r" \\"
            for m in g.index]
    out["guessing"] = "\n".join([r"\begin{tabular}{r|rrrrr}", r"$m$ \textbackslash{} $k$ & 1 & 2 & 3 & 5 & 10 \\",
                                 r"\hline", *rows, r"\end{tabular}"])
    ds = c["default_solution"]
    rows = [f"{d.name} & ${_g(d.deterrence_sampling_rate)}$ & ${_g(d.minimum_slash)}$ & "
            f"${_g(d.minimum_total_stake)}$ & ${_g(d.detection_per_task)}$ \\\\" for d in ds.deviations]
    out["deviations"] = "\n".join([r"\begin{tabular}{lrrrr}", r"deviation & $q^*$ & $L^*(q)$ & $S^*$ & $d_j$ \\",
                                   r"\hline", *rows, r"\end{tabular}"])
    if runs:
        rows = []
        for x in c["run_fixed"].comparisons:
            if "distribution" in x.quantity:
                continue
            rows.append(f"{x.quantity.replace('_', ' ')} & ${_g(x.predicted)}$ & ${_g(x.observed)}$ & "
                        f"${_g(x.p_value, 2)}$ & {'pass' if x.passed else 'fail'} \\\\")
        out["comparisons"] = "\n".join([r"\begin{tabular}{lrrrl}",
                                        r"quantity & predicted & observed & $p$ & \\", r"\hline", *rows,
                                        r"\end{tabular}"])
    return out


# --------------------------------------------------------------------------------------
# Figures
# --------------------------------------------------------------------------------------


def _save(fig: Any, name: str) -> None:
    FIGURES.mkdir(parents=True, exist_ok=True)
    fig.savefig(FIGURES / f"{name}.pdf", bbox_inches="tight", metadata={"CreationDate": None})
    fig.savefig(FIGURES / f"{name}.png", dpi=110, bbox_inches="tight")


def figures(runs: bool = True) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from mira_theory import dynamics
    from mira_theory.design import frontier
    from mira_theory.sweep import sweep

    plt.rcParams.update({"font.size": 9, "svg.hashsalt": "mira", "pdf.fonttype": 42})
    c = compute(runs)
    made = []

    # 1. q* against L per deviation
    d = c["default"]
    slashes = np.geomspace(1, 1000, 61)
    ds = sweep(d, {"stake.slash": slashes}, episode=False)
    fig, ax = plt.subplots(figsize=(4.6, 3.2))
    for name in ds["deviation"].values:
        ax.plot(slashes, ds["deviation_deterrence_sampling_rate"].sel(deviation=name), label=str(name))
    ax.plot(d.stake.slash, d.audit.sampling_rate, "ko", ms=4, label="in force")
    ax.set(xscale="log", yscale="log", xlabel="slash $L$", ylabel="deterrence sampling rate $q^*$")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3, which="both")
    _save(fig, "qstar_vs_slash")
    made.append("qstar_vs_slash")

    # 2. stake against audit cost
    front = frontier(c["pos"], points=8)
    fig, ax = plt.subplots(figsize=(4.6, 3.2))
    front.plot(ax=ax)
    ax.set_yscale("log")
    ax.set_title("")
    _save(fig, "frontier")
    made.append("frontier")

    # 3. guessing heatmap
    g = c["guessing"]
    fig, ax = plt.subplots(figsize=(4.8, 2.9))
    mesh = ax.imshow(np.log10(g.values), cmap="viridis_r", aspect="auto")
    ax.set_xticks(range(g.shape[1]), g.columns)
    ax.set_yticks(range(g.shape[0]), g.index)
    ax.set(xlabel="verifications $k$", ylabel="options $m$")
    fig.colorbar(mesh, ax=ax, label=r"$\log_{10}(1/m)^k$")
    _save(fig, "guessing")
    made.append("guessing")

    # 4. false slash against detection for several windows
    cs = c["claims_solution"]
    p_h, p_j = cs.agreement_honest, cs.deviations[0].agreement
    fig, ax = plt.subplots(figsize=(4.6, 3.2))
    for W in WINDOWS:
        th = np.arange(W + 1) / W
        ax.plot(np.maximum(consensus.slash_probability(W, th, p_h), 1e-18), consensus.slash_probability(W, th, p_j),
                ".-", ms=2, label=f"$W = {W}$")
    ax.axvline(c["claims"].slashing.max_false_slash, color="grey", ls=":")
    ax.axhline(1 - c["claims"].slashing.max_miss, color="grey", ls="--")
    ax.set(xscale="log", xlim=(1e-12, 1), xlabel="false slash per window (honest)",
           ylabel="detection per window (guesser)")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    _save(fig, "window_test")
    made.append("window_test")

    # 5. symmetric equilibria against N
    fig, ax = plt.subplots(figsize=(4.6, 3.0))
    for N, eqs in c["equilibria"].items():
        for e in eqs:
            ax.plot(N, e.deviation_probability, "o", color="C0" if e.stable else "C3",
                    mfc="C0" if e.stable else "none", ms=5)
    ax.plot([], [], "o", color="C0", label="stable")
    ax.plot([], [], "o", color="C3", mfc="none", label="unstable")
    ax.set(xscale="log", xlabel="committee size $N$", ylabel=r"deviation probability $\sigma$")
    ax.set_xticks(COMMITTEE_SIZES, COMMITTEE_SIZES)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    _save(fig, "symmetric_equilibria")
    made.append("symmetric_equilibria")

    if runs:
        # 6. predicted against observed detection rates
        rates = [x for x in c["run_fixed"].comparisons if "detection per task" in x.quantity]
        fig, ax = plt.subplots(figsize=(3.6, 3.2))
        for x in rates:
            lo, hi = x.interval
            ax.errorbar(x.predicted, x.observed, yerr=[[x.observed - lo], [hi - x.observed]], fmt="o", capsize=3,
                        label=x.quantity.split(":")[0])
        top = max(x.interval[1] for x in rates) * 1.1
        ax.plot([0, top], [0, top], "k--", lw=0.8)
        ax.set(xlim=(0, top), ylim=(0, top), xlabel="predicted detection per task", ylabel="observed")
        ax.legend(fontsize=8)
        _save(fig, "predicted_vs_observed")
        made.append("predicted_vs_observed")

        # 7. adaptive providers against the predicted dynamics
        traj = next(iter(c["run_hedge"].trajectories.values()))
        w = traj["windows"]
        mid = [(x["start"] + x["end"]) / 2 for x in w]
        fig, ax = plt.subplots(figsize=(4.6, 3.2))
        ax.fill_between(mid, [x["band"][0] for x in w], [x["band"][1] for x in w], alpha=0.25,
                        label="predicted (simulated learners)")
        ax.plot(mid, [x["predicted"] for x in w], "C0-")
        ax.errorbar(mid, [x["observed"] for x in w],
                    yerr=[[x["observed"] - x["interval"][0] for x in w], [x["interval"][1] - x["observed"] for x in w]],
                    fmt="o", color="C1", capsize=2, ms=4, label="observed")
        hs = c["hedge_scenario"]
        path = dynamics.predicted_learning_path("hedge", dynamics.provider_payoffs(hs), eta=float(traj["spec"].split(":")[1]),
                                                rounds=int(w[-1]["end"]) + 1, sampling_rate=hs.audit.sampling_rate,
                                                names=dynamics.strategies(hs))
        ax.plot(path.index, path["honest"], "k:", label="mean-field Hedge")
        ax.set(xlabel="tasks per learning provider", ylabel="honest share", ylim=(0, 1))
        ax.legend(fontsize=8, loc="lower right")
        _save(fig, "adaptive_trajectories")
        made.append("adaptive_trajectories")
    plt.close("all")
    return made


# --------------------------------------------------------------------------------------
# Build
# --------------------------------------------------------------------------------------


def compile_pdf() -> str | None:
    """latexmk or pdflatex (twice) if installed; returns the tool used, None if neither."""
    if shutil.which("latexmk"):
        subprocess.run(["latexmk", "-pdf", "-interaction=nonstopmode", "-halt-on-error", "main.tex"], cwd=HERE,
                       check=True, stdout=subprocess.DEVNULL)
        return "latexmk"
    if shutil.which("pdflatex"):
        for _ in range(2):
            subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "main.tex"], cwd=HERE,
                           check=True, stdout=subprocess.DEVNULL)
        return "pdflatex"
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-figures", action="store_true", help="numbers and tables only")
    parser.add_argument("--no-pdf", action="store_true", help="do not run LaTeX")
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    GENERATED.mkdir(parents=True, exist_ok=True)
    (GENERATED / "numbers.tex").write_text(numbers_tex(numbers()), encoding="utf-8")
    for name, text in tables().items():
        (GENERATED / f"{name}.tex").write_text("% Generated by paper/build.py: do not edit.\n" + text + "\n",
                                               encoding="utf-8")
    print(f"numbers and tables written to {GENERATED.relative_to(ROOT)} ({time.perf_counter() - t0:.1f} s)")
    if not args.no_figures:
        made = figures()
        print(f"figures: {', '.join(made)} → {FIGURES.relative_to(ROOT)} ({time.perf_counter() - t0:.1f} s)")
    if not args.no_pdf:
        tool = compile_pdf()
        print(f"PDF compiled with {tool}: paper/main.pdf" if tool else
              "no latexmk or pdflatex on PATH: PDF not compiled (see paper/README.md)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
