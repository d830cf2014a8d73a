"""Helpers for tests and benchmarks: params files from the bundled scenarios, with changes."""

from __future__ import annotations

import copy
import functools
import json
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
MODELS = ROOT / "models"

# deployment parameter -> environment key (the export carries both; a change sets both)
ENV_KEYS = {"sampling_rate": ("audit", "sampling_rate"), "slash": ("stake", "slash"),
            "minimum_stake": ("stake", "total"), "reward": ("task", "reward"),
            "verifiers_per_audit": ("audit", "verifiers"), "audit_comparison": ("audit", "comparison")}


@functools.lru_cache(maxsize=8)
def _exported(scenario: str) -> str:
    import mira_theory as mt
    from mira_theory.deployment import dumps, export

    return dumps(export(mt.load(MODELS / f"{scenario}.toml")))


def params_doc(scenario: str = "default", parameters: dict[str, Any] | None = None,
               environment: dict[str, Any] | None = None) -> dict[str, Any]:
    """The exported params document of a bundled scenario, with parameters/environment changed.

    ``environment`` keys are dotted (``audit.collusion``, ``deviation.0.divergence``).
    """
    doc = copy.deepcopy(json.loads(_exported(scenario)))
    for k, v in (parameters or {}).items():
        doc["parameters"][k] = v
        section, field = ENV_KEYS[k]
        doc["environment"][section][field] = v
    for k, v in (environment or {}).items():
        parts = k.split(".")
        node: Any = doc["environment"]
        for p in parts[:-1]:
            node = node[int(p)] if isinstance(node, list) else node[p]
        last = parts[-1]
        if isinstance(node, list):
            node[int(last)] = v
        else:
            node[last] = v
    return doc


def write_params(path: str | Path, scenario: str = "default", **changes: Any) -> Path:
    path = Path(path)
    path.write_text(json.dumps(params_doc(scenario, changes.get("parameters"), changes.get("environment"))))
    return path


def assert_rejected(client: Any, method: str, url: str, body: Any, status: int, needle: str | None) -> Any:
    """Send one bad request (``body``: bytes or None as a raw body, else JSON), check the answer's
    status and that its error names ``needle``; the response."""
    if isinstance(body, bytes | type(None)):
        r = client.request(method, url, content=body, headers={"content-type": "application/json"})
    else:
        r = client.request(method, url, json=body)
    assert r.status_code == status, (url, body if not isinstance(body, bytes) else body[:40], r.text)
    if needle:
        assert needle in r.json().get("error", r.json().get("detail", "")), (url, r.text)
    return r


class Clock:
    """A ledger clock a test moves by hand (``clock.t += seconds``)."""

    def __init__(self, t: float = 1000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def assert_same_checks(a: list, b: list) -> None:
    """Two lists of a ledger's commit check results (``ledger._check_commit``'s tuples) agree: the
    values, and each error's status and message."""
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert x[1:5] == y[1:5] and x[6] == y[6]
        for ex, ey in ((x[0], y[0]), (x[5], y[5])):
            assert (ex is None) == (ey is None)
            if ex is not None:
                assert (ex.status, ex.message) == (ey.status, ey.message)
