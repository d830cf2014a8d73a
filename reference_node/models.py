"""Deterministic inference models, and how the modelled error rates are realised.

The declared model
------------------
A model id names a small numpy network whose weights are generated from sha256(model id), so
every node holds identical weights without shipping files. An input string is embedded by
hashing (64 bytes of sha256 output mapped to [−0.5, 0.5)), then

    M(x) = C(x) + R(x) / ‖R(x)‖∞

where C is a one-hidden-layer network of width 32 (the cheap trunk) and R a two-hidden-layer
residual network of width 256 (the expensive part, ~40× the multiply-adds of C). The output
is the vector of ``OUT`` values rounded to 6 decimals; its canonical text (``%.6f`` joined by
commas) is what is hashed and signed. numpy's float64 kernels make this deterministic on one
machine (the reference network's setting; cross-machine bit-equality is not claimed).

Deviations (how δ_j is realised exactly)
----------------------------------------
A deviating provider decides per task, with a keyed hash of its own secret and the task id
(uniform on [0, 1), unknown to everyone else), whether the task is in its *divergent set*:
u_j < δ_j. On those tasks it does the cheap thing, elsewhere it runs the declared model:

* a deviation whose name contains ``random`` returns uniform random values in [−4, 4]; it
  costs nothing. It equals M(x) within the tolerance with probability < (2·10⁻³/8)⁸, so it
  differs on every divergent task.
* any other deviation (``weaker-model``) returns the truncated model C(x) alone, ~40× cheaper.
  By construction ‖M(x) − C(x)‖∞ = 1 exactly, so it differs on every divergent task, in exact
  and in tolerance comparison (τ = 10⁻³).

So the realised divergence of deviation j is the fraction of tasks with u_j < δ_j:
Binomial(n, δ_j)/n, mean δ_j. δ_j = 1 means every task is divergent (the cheap path always).

Tolerance comparison (noisy GPU): how α and β are realised
-----------------------------------------------------------
With ``audit_comparison = "tolerance"`` an honest provider's output carries numeric noise:
M(x) + s·v, v a random ±1 vector, s drawn so that P(s > τ) = α' = α/(1 − β) (s uniform in
[1.1τ, 2τ] with probability α', uniform in [0, 0.9τ] otherwise). Verifiers and the arbiter
re-execute on deterministic CPU kernels and flag iff ‖y − M(x)‖∞ > τ. An effective audit is
*inconclusive* with probability β (keyed by the verifier's secret and the task id, so the
provider cannot predict it: a re-execution that times out or overflows on the verifier's
noisy hardware) and an inconclusive audit passes. Hence an effective audit flags an honest
output with probability (1 − β)·α' = α and misses a divergent one with probability β. A
deviator's non-divergent outputs carry no noise, so its flag probability per effective audit
is exactly δ_j(1 − β), the model's d_j/(q·e) (the model has no false-alarm term for a
deviator). In exact mode α must be 0 (the params loader enforces it: a deterministic honest
output cannot fail an exact re-execution); β is realised the same way in both modes.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import glob
import hashlib
import math
import os
from collections.abc import Iterator

import numpy as np

IN = 64          # embedding width (two sha256 digests)
TRUNK = 32       # width of the cheap trunk C
DEEP = 256       # width of the residual network R
OUT = 8          # output values
TOLERANCE = 1e-3
RANDOM_SCALE = 4.0


@functools.lru_cache(maxsize=1)
def _openblas() -> tuple | None:
    """numpy's bundled OpenBLAS (set/get thread count), if it is the one loaded; else None."""
    libs = os.path.join(os.path.dirname(np.__file__), os.pardir, "numpy.libs")
    for path in sorted(glob.glob(os.path.join(libs, "libscipy_openblas*.so*")) +
                       glob.glob(os.path.join(libs, "libopenblas*.so*"))):
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for setter, getter in (("scipy_openblas_set_num_threads64_", "scipy_openblas_get_num_threads64_"),
                               ("scipy_openblas_set_num_threads", "scipy_openblas_get_num_threads"),
                               ("openblas_set_num_threads", "openblas_get_num_threads")):
            if hasattr(lib, setter) and hasattr(lib, getter):
                return getattr(lib, setter), getattr(lib, getter)
    return None


@contextlib.contextmanager
def one_blas_thread() -> Iterator[None]:
    """Run the block with one OpenBLAS thread (the models' small matrices; see reference_node/__init__.py).

    For a process that loaded numpy before reference_node (e.g. ``mira-theory experiment``), where
    the environment variables came too late; the previous thread count is restored afterwards.
    """
    blas = _openblas()
    if blas is None:
        yield
        return
    setter, getter = blas
    before = getter()
    if before != 1:
        setter(1)
    try:
        yield
    finally:
        if before != 1:
            setter(before)


def task_input(seed: int | str, i: int) -> str:
    """The input of the i-th task of a seeded workload (the in-process network and the load client)."""
    return f"prompt {seed}/{i}: summarise the staked-inference audit of item {i * 7919 % 100003}"


def unit_hash(*parts: str | bytes) -> float:
    """A keyed hash mapped to [0, 1): 53 bits of sha256 of the joined parts."""
    data = b"\x1f".join(p.encode() if isinstance(p, str) else p for p in parts) + b"\x1f"
    return (int.from_bytes(hashlib.sha256(data).digest()[:8], "big") >> 11) / _2_53


_2_53 = float(1 << 53)


def sha256_hex(data: str) -> str:
    return hashlib.sha256(data.encode()).hexdigest()


def embed(inputs: list[str]) -> np.ndarray:
    buf = bytearray()
    for s in inputs:
        b = s.encode()
        buf += hashlib.sha256(b).digest()
        buf += hashlib.sha256(b + b"\x01").digest()
    return np.frombuffer(bytes(buf), dtype=np.uint8).reshape(len(inputs), IN) / 256.0 - 0.5


@functools.lru_cache(maxsize=16)
def weights(model_id: str) -> tuple[np.ndarray, ...]:
    seed = int.from_bytes(hashlib.sha256(b"mira-model|" + model_id.encode()).digest()[:8], "big")
    rng = np.random.default_rng(seed)

    def layer(a: int, b: int) -> np.ndarray:
        return rng.standard_normal((a, b)) / np.sqrt(a)

    return (layer(IN, TRUNK), layer(TRUNK, OUT), layer(IN, DEEP), layer(DEEP, DEEP), layer(DEEP, OUT))


def truncated(model_id: str, x: np.ndarray) -> np.ndarray:
    """C(x): the cheap trunk (the weaker model)."""
    c0, c1, _, _, _ = weights(model_id)
    return np.tanh(x @ c0) @ c1


def declared(model_id: str, x: np.ndarray) -> np.ndarray:
    """M(x) = C(x) + R(x)/‖R(x)‖∞ (rows of x are inputs)."""
    c0, c1, d0, d1, d2 = weights(model_id)
    r = np.tanh(np.tanh(x @ d0) @ d1) @ d2
    norm = np.abs(r).max(axis=1, keepdims=True)
    norm[norm == 0] = 1.0
    return np.tanh(x @ c0) @ c1 + r / norm


def multiply_adds(kind: str) -> int:
    """Multiply-adds per input of the declared model or its truncated variant."""
    trunk = IN * TRUNK + TRUNK * OUT
    return trunk if kind == "truncated" else trunk + IN * DEEP + DEEP * DEEP + DEEP * OUT


def run_declared(model_id: str, inputs: list[str]) -> np.ndarray:
    return np.round(declared(model_id, embed(inputs)), 6)


def run_truncated(model_id: str, inputs: list[str]) -> np.ndarray:
    return np.round(truncated(model_id, embed(inputs)), 6)


def random_output(rng: np.random.Generator, n: int) -> np.ndarray:
    return np.round(rng.uniform(-RANDOM_SCALE, RANDOM_SCALE, size=(n, OUT)), 6)


def honest_noise(rng: np.random.Generator, n: int, exceed: float) -> np.ndarray:
    """Noise rows whose ∞-norm exceeds TOLERANCE with probability ``exceed`` each."""
    big = rng.random(n) < exceed
    s = np.where(big, rng.uniform(1.1 * TOLERANCE, 2 * TOLERANCE, n), rng.uniform(0, 0.9 * TOLERANCE, n))
    v = rng.choice(np.array([-1.0, 1.0]), size=(n, OUT))
    return s[:, None] * v


_CANONICAL = ",".join(["%.6f"] * OUT)


def canonical(values) -> str:
    if len(values) == OUT:
        return _CANONICAL % tuple(values)  # %-formatting converts each value with float(), as %.6f
    return ",".join(f"{float(v):.6f}" for v in values)


def canonical_json(values) -> str:
    """The stored form of an output (the ledger's ``tasks.output`` column): a JSON list."""
    return "[" + ",".join(f"{float(v):.6f}" for v in values) + "]"


def output_hash(values) -> str:
    return hashlib.sha256(canonical(values).encode()).hexdigest()


def parse_output(value) -> list[float] | None:
    """A claimed output as a list of OUT finite floats, or None if malformed."""
    if not isinstance(value, list) or len(value) != OUT:
        return None
    out = []
    for v in value:
        if v.__class__ is float:  # the common case (JSON numbers, numpy .tolist())
            if not math.isfinite(v):
                return None
            out.append(v)
        elif isinstance(v, bool) or not isinstance(v, int | float) or not _finite_number(v):
            return None
        else:
            out.append(float(v))
    return out


def _finite_number(v: int | float) -> bool:
    try:
        return math.isfinite(v)
    except OverflowError:  # an int beyond float range
        return False


def matches(reference, claimed, comparison: str) -> bool:
    """Does a claimed output agree with the reference re-execution?"""
    if comparison == "exact":
        return canonical(reference) == canonical(claimed)
    return float(np.max(np.abs(np.asarray(reference, dtype=float) - np.asarray(claimed, dtype=float)))) \
        <= TOLERANCE + 1e-9
