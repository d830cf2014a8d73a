"""Plots of sweeps (matplotlib): a quantity against one axis, or a heatmap over two, with the
feasible region (every margin holds: the sweep's ``holds`` variable) marked.

    >>> import numpy as np, mira_theory as mt
    >>> from mira_theory.sweep import sweep
    >>> from mira_theory.plotting import plot_sweep
    >>> ds = sweep(mt.load("models/default.toml"), {"audit.sampling_rate": np.linspace(0, 0.2, 21)},
    ...            episode=False)
    >>> fig = plot_sweep(ds, "payoff_deviation")
    >>> [line.get_label() for line in fig.axes[0].get_lines()]
    ['weaker-model', 'random-output']
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from mira_theory.scenario import Problem, ScenarioError

MAX_LINES = 12


def _problem(key: str, expected: str, found: str, file: str = "<plot>") -> ScenarioError:
    return ScenarioError([Problem(file, key, expected, found)])


def axes_of_dataset(ds: xr.Dataset) -> list[str]:
    """The sweep axes of a Dataset (from its attrs, else its scenario-key coordinates)."""
    if "axes" in ds.attrs:
        return list(json.loads(ds.attrs["axes"]))
    return [str(c) for c in ds.coords if "." in str(c)]


def read_sweep(path: str | Path) -> xr.Dataset:
    """Read a sweep written by ``mira-theory sweep`` (.nc, .csv or .parquet)."""
    import pandas as pd

    p = Path(path)
    suffix = p.suffix.lower()
    if not p.exists():
        raise _problem("", "an existing sweep file", "no such file", str(path))
    try:
        if suffix == ".nc":
            with xr.open_dataset(p, engine="scipy") as ds:
                return ds.load()
        if suffix == ".parquet":
            df = pd.read_parquet(p)
        elif suffix == ".csv":
            df = pd.read_csv(p)
            index = [c for c in df.columns if "." in c or c in ("deviation", "point")]
            df = df.set_index(index)
        else:
            raise _problem("", "a .nc, .csv or .parquet file", f"extension {suffix!r}", str(path))
    except ScenarioError:
        raise
    except Exception as err:  # unreadable content is bad input, not a bug
        raise _problem("", "a sweep file written by mira-theory sweep", f"{type(err).__name__}: {err}",
                       str(path)) from None
    ds = xr.Dataset.from_dataframe(df)
    ds.attrs.update(getattr(df, "attrs", {}) or {})
    return ds


def plot_sweep(ds: xr.Dataset, y: str, x: str | None = None, deviation: str | None = None,
               sel: Mapping[str, Any] | None = None) -> Any:
    """A matplotlib Figure of ``y``: against axis ``x`` (one line per deviation and per value
    of any other axis, at most 12), or, without ``x`` and with two axes left, a heatmap. The
    region where ``holds`` is true is shaded (lines) or outlined and unhatched (heatmap)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    if y not in ds.data_vars:
        numeric = [v for v in ds.data_vars if ds[v].dtype.kind in "fiub"]
        raise _problem("--y", "a quantity of the sweep, one of: " + ", ".join(numeric), repr(y))
    if ds[y].dtype.kind not in "fiub":
        raise _problem("--y", "a numeric quantity", f"{y!r} of type {ds[y].dtype}")
    axes = axes_of_dataset(ds)
    sel = dict(sel or {})
    for k in sel:
        if k not in ds.dims and k not in ds.coords:
            raise _problem("--sel", "an axis, one of: " + ", ".join(axes), repr(k))
    try:
        sub = ds.sel({k: v for k, v in sel.items()}, method="nearest")
    except (KeyError, ValueError, TypeError) as err:
        raise _problem("--sel", "values of the axes", str(err)) from None
    da = sub[y]
    holds = sub["holds"] if "holds" in sub else None
    if "deviation" in da.dims and deviation is not None:
        if deviation not in list(sub["deviation"].values):
            raise _problem("--deviation", "one of " + ", ".join(map(str, sub["deviation"].values)), repr(deviation))
        da = da.sel(deviation=deviation)
    free = [d for d in da.dims if d not in ("deviation",)]
    units = da.attrs.get("units", "")
    label = f"{y} ({units})" if units and len(units) <= 30 else y
    if x is not None:
        if x not in da.dims:
            raise _problem("--x", "an axis of the sweep left free, one of: " + ", ".join(free), repr(x))
        fig, ax = plt.subplots(figsize=(7, 4.5))
        others = [d for d in da.dims if d != x]
        combos = list(itertools.product(*(range(da.sizes[d]) for d in others)))
        if len(combos) > MAX_LINES:
            raise _problem("--x", f"at most {MAX_LINES} lines: fix the other axes with --sel KEY=VALUE "
                           "(or --deviation)", f"{len(combos)} combinations of {', '.join(others)}")
        for combo in combos:
            idx = dict(zip(others, combo))
            line = da.isel(idx)
            name = ", ".join(f"{d}={_fmt(da[d].values[i])}" if d != "deviation" else str(da[d].values[i])
                             for d, i in idx.items())
            values = np.where(np.isfinite(line.values), line.values, np.nan)
            ax.plot(da[x].values, values, label=name or y, marker="." if da.sizes[x] < 40 else None)
        if holds is not None and holds.ndim >= 1 and x in holds.dims:
            h = holds.isel({d: 0 for d in holds.dims if d != x}).values.astype(bool)
            _shade(ax, da[x].values, h)
        ax.set_xlabel(x)
        ax.set_ylabel(label)
        ax.legend(fontsize="small")
        ax.grid(alpha=0.3)
    else:
        if "deviation" in da.dims:
            first = str(sub["deviation"].values[0])
            da = da.sel(deviation=first)
            label += f" [{first}]"
        free = list(da.dims)
        if len(free) == 1:
            return plot_sweep(ds, y, free[0], deviation, sel)
        if len(free) != 2:
            raise _problem("--x", "an axis (line plot), or exactly two free axes for a heatmap; fix the "
                           "others with --sel KEY=VALUE", f"{len(free)} free axes: {', '.join(free)}")
        a, b = free  # x (columns), y (rows)
        fig, ax = plt.subplots(figsize=(7, 5))
        grid = da.transpose(b, a)
        values = np.where(np.isfinite(grid.values), grid.values, np.nan)
        mesh = ax.pcolormesh(da[a].values, da[b].values, values, shading="auto")
        fig.colorbar(mesh, ax=ax, label=label)
        if holds is not None and set(holds.dims) == {a, b}:
            fails = np.ma.masked_where(holds.transpose(b, a).values.astype(bool), np.ones(values.shape))
            ax.pcolormesh(da[a].values, da[b].values, fails, shading="auto", cmap="Greys", vmin=0, vmax=1.4,
                          alpha=0.55)
            import matplotlib.patches as mpatches

            ax.legend(handles=[mpatches.Patch(color="grey", alpha=0.55, label="some margin fails"),
                               mpatches.Patch(facecolor="none", edgecolor="black",
                                              label="clear: feasible (every margin holds)")],
                      fontsize="small", loc="best")
        ax.set_xlabel(a)
        ax.set_ylabel(b)
    title = ds.attrs.get("scenario_name", "")
    ax.set_title(f"{y}" + (f" — scenario '{title}'" if title else "")
                 + (f" at {', '.join(f'{k}={v}' for k, v in sel.items())}" if sel else ""))
    fig.tight_layout()
    return fig


def _fmt(v: Any) -> str:
    return f"{v:g}" if isinstance(v, float | np.floating) else str(v)


def _shade(ax: Any, xs: np.ndarray, holds: np.ndarray) -> None:
    """Shade the x-ranges where every margin holds."""
    if holds.size == 0 or not holds.any():
        ax.text(0.02, 0.96, "no feasible point (some margin fails everywhere)", transform=ax.transAxes,
                va="top", fontsize="small")
        return
    xs = np.asarray(xs, float)
    edges = np.concatenate([[xs[0]], (xs[1:] + xs[:-1]) / 2, [xs[-1]]])
    first = True
    i = 0
    while i < holds.size:
        if holds[i]:
            j = i
            while j + 1 < holds.size and holds[j + 1]:
                j += 1
            ax.axvspan(edges[i], edges[j + 1], color="tab:green", alpha=0.12,
                       label="feasible (every margin holds)" if first else None)
            first = False
            i = j + 1
        else:
            i += 1
