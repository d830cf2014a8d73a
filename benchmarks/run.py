"""Run every benchmark module, print a table, write benchmarks/RESULTS.md (``make bench``).

A benchmark module is a file ``benchmarks/bench_<name>.py`` that exposes

* ``run() -> list[dict]``: one dict per figure, with the keys ``name``, ``value``, ``unit``,
  ``baseline`` (what the figure is compared with, or ""), ``ratio`` (value ÷ baseline, or
  None), ``target`` (text, or ""), ``met`` (True / False / None when there is no target), and
  optionally ``group`` (rows are shown under group headings), ``note`` (how the figure was
  obtained) and ``check`` (True for correctness rows: a failed check fails the run);
* optionally ``TITLE`` (a heading) and ``describe() -> list[str]`` (Markdown notes on the
  last run, written to RESULTS.md).

Modules are found by file name; adding one needs no change here. The run exits 1 if a module
raises or a correctness check fails, and with ``--strict`` also if a target is missed.

    .venv/bin/python benchmarks/run.py                 # all modules, writes RESULTS.md
    .venv/bin/python benchmarks/run.py audit --quick   # a smoke run of bench_audit.py only
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import importlib.metadata as md
import math
import os
import platform
import subprocess
import sys
import time
import traceback
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
REQUIRED = ("name", "value", "unit", "baseline", "ratio", "target", "met")
COLUMNS = ("benchmark", "value", "unit", "baseline", "ratio", "target", "met")


# --------------------------------------------------------------------------------------
# The machine
# --------------------------------------------------------------------------------------


def _cpuinfo() -> tuple[str, int]:
    model, processors = "", 0
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and not model:
                model = value.strip()
            elif key.strip() == "processor":
                processors += 1
    except OSError:
        pass
    return model or platform.processor() or "unknown", processors


def _memory() -> str:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return f"{int(line.split()[1]) / 2**20:.1f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    return "unknown"


def _version(dist: str) -> str:
    try:
        return md.version(dist)
    except md.PackageNotFoundError:
        return "not installed"


def _git() -> str:
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                              text=True, timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return head + (" (uncommitted changes)" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def machine() -> list[tuple[str, str]]:
    import numpy

    model, processors = _cpuinfo()
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    load = " / ".join(f"{x:.2f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "n/a"
    return [
        ("date", dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")),
        ("CPU", model),
        ("cores", f"{processors} in /proc/cpuinfo, {os.cpu_count()} logical, {usable} usable by this process"),
        ("memory", _memory()),
        ("load average at start (1/5/15 min)", load),
        ("OS", platform.platform()),
        ("Python", f"{platform.python_version()} ({platform.python_implementation()})"),
        ("numpy", numpy.__version__),
        ("nashpy / pygambit / scipy", " / ".join(_version(d) for d in ("nashpy", "pygambit", "scipy"))),
        ("mira-theory", f"{_version('mira-theory')}, commit {_git()}"),
    ]


# --------------------------------------------------------------------------------------
# Formatting
# --------------------------------------------------------------------------------------


def fmt(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "yes" if v else "NO"
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, float):
        if not math.isfinite(v):
            return str(v)
        if v != 0 and (abs(v) >= 1e4 or abs(v) < 1e-3):
            mantissa, _, exp = f"{v:.3g}".partition("e")
            return f"{mantissa}e{int(exp)}"
        return f"{v:.4g}"
    return str(v)


def _cells(row: dict[str, Any]) -> list[str]:
    met = "—" if row["met"] is None else fmt(bool(row["met"]))
    return [str(row["name"]), fmt(row["value"]), str(row["unit"]), "" if row["baseline"] in (None, "") else fmt(row["baseline"]),
            fmt(row["ratio"]), str(row["target"] or ""), met]


def text_table(rows: list[dict[str, Any]]) -> str:
    body = [_cells(r) for r in rows]
    widths = [max(len(c) for c in col) for col in zip(COLUMNS, *body)]
    right = {1, 4}  # numbers

    def line(cells: list[str] | tuple[str, ...]) -> str:
        return "  ".join(c.rjust(w) if i in right else c.ljust(w)
                         for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

    out = [line(COLUMNS), line(["-" * w for w in widths])]
    group = None
    for row, cells in zip(rows, body):
        if row.get("group") and row["group"] != group:
            group = row["group"]
            out.append(f"[{group}]")
        out.append(line(cells))
    return "\n".join(out)


def markdown_table(rows: list[dict[str, Any]]) -> str:
    def esc(s: str) -> str:
        return s.replace("|", "\\|")

    out = ["| " + " | ".join((*COLUMNS, "note")) + " |", "|" + "---|" * (len(COLUMNS) + 1)]
    group = None
    for row in rows:
        if row.get("group") and row["group"] != group:
            group = row["group"]
            out.append(f"| **{esc(group)}** |" + " |" * len(COLUMNS))
        out.append("| " + " | ".join(esc(c) for c in (*_cells(row), str(row.get("note", "")))) + " |")
    return "\n".join(out)


# --------------------------------------------------------------------------------------
# Running
# --------------------------------------------------------------------------------------


def discover() -> list[str]:
    return sorted(p.stem for p in HERE.glob("bench_*.py"))


def check_rows(module: str, rows: Any) -> list[dict[str, Any]]:
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise TypeError(f"{module}.run() must return a list of dicts, got {type(rows).__name__}")
    for r in rows:
        missing = [k for k in REQUIRED if k not in r]
        if missing:
            raise KeyError(f"{module}: row {r.get('name')!r} lacks {missing}")
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("modules", nargs="*", help="run only these (bench_audit or audit); default all")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: small sizes (sets BENCH_QUICK=1); RESULTS.md is not written")
    parser.add_argument("--output", type=Path, help="write the Markdown report here "
                        "(default benchmarks/RESULTS.md, written only by a full run of every module)")
    parser.add_argument("--strict", action="store_true", help="exit 1 if any target is missed")
    args = parser.parse_args(argv)

    available = discover()
    wanted = [m if m.startswith("bench_") else f"bench_{m}" for m in args.modules] or available
    unknown = [m for m in wanted if m not in available]
    if unknown:
        parser.error(f"no such benchmark module(s) {unknown}; available: {available}")
    if args.quick:
        os.environ["BENCH_QUICK"] = "1"
    for p in (str(HERE), str(ROOT)):
        if p not in sys.path:
            sys.path.insert(0, p)

    info = machine()
    width = max(len(k) for k, _ in info)
    print("machine")
    for k, v in info:
        print(f"  {k.ljust(width)}  {v}")
    command = "benchmarks/run.py " + " ".join(argv if argv is not None else sys.argv[1:])

    sections: list[str] = []
    failed: list[str] = []
    missed: list[str] = []
    n_targets = 0
    started = time.perf_counter()
    for name in wanted:
        print(f"\n== {name} ==", flush=True)
        t0 = time.perf_counter()
        try:
            mod = importlib.import_module(name)
            rows = check_rows(name, mod.run())
        except Exception:  # noqa: BLE001 - report and go on with the other modules
            tb = traceback.format_exc()
            print(tb, file=sys.stderr)
            failed.append(f"{name}: raised {tb.strip().splitlines()[-1]}")
            sections.append(f"## {name}\n\nFAILED:\n\n```\n{tb}```\n")
            continue
        elapsed = time.perf_counter() - t0
        title = getattr(mod, "TITLE", name)
        print(title)
        print(text_table(rows))
        notes = [r for r in rows if r.get("note")]
        if notes:
            print("notes")
            for r in notes:
                print(f"  - {r['name']}: {r['note']}")
        print(f"({elapsed:.1f} s)")
        n_targets += sum(r["met"] is not None for r in rows)
        for r in rows:
            if r.get("check") and r["met"] is False:
                failed.append(f"{name}: check failed: {r['name']} ({fmt(r['value'])} {r['unit']})")
            elif r["met"] is False:
                missed.append(f"{name}: {r['name']}: {fmt(r['value'])} {r['unit']}"
                              + (f", ratio {fmt(r['ratio'])}" if r["ratio"] is not None else "")
                              + f" (target {r['target']})")
        describe = getattr(mod, "describe", None)
        extra = describe() if callable(describe) else []
        if extra:
            print("setup")
            for line in extra:
                print(f"  - {line}")
        sections.append("\n".join([f"## {name}: {title}", "", markdown_table(rows), "",
                                   *(f"- {line}" for line in extra), "",
                                   f"Module run time: {elapsed:.1f} s.", ""]))

    total = time.perf_counter() - started
    if hasattr(os, "getloadavg"):
        info.append(("load average at end (1/5/15 min)", " / ".join(f"{x:.2f}" for x in os.getloadavg())))
    print(f"\ntotal {total:.1f} s; {len(missed)} of {n_targets} targets/checks missed; "
          f"{len(failed)} failure(s)")
    for m in missed:
        print(f"  missed: {m}")
    for f in failed:
        print(f"  FAILED: {f}")

    output = args.output
    if output is None and not args.quick and wanted == available:
        output = HERE / "RESULTS.md"
    if output is not None:
        head = ["# Benchmark results", "",
                f"Written by `{command.strip()}` (`make bench`); every figure below is from this one "
                "run. The machines are shared and noisy: re-run before quoting a figure.", "",
                "| machine | |", "|---|---|", *(f"| {k} | {v} |" for k, v in info), "",
                f"Total run time {total:.1f} s. Targets missed: {len(missed)}"
                + "".join(f"\n- {m}" for m in missed)
                + (f"\n\nFailures: {len(failed)}" + "".join(f"\n- {f}" for f in failed) if failed else ""),
                ""]
        output.write_text("\n".join(head + sections))
        print(f"wrote {output}")
    return 1 if failed or (args.strict and missed) else 0


if __name__ == "__main__":
    sys.exit(main())
