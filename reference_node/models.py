"""Integer inference models trained on handwritten digits, and how the modelled error rates are realised.

The data and the workload
-------------------------
The models read 8×8 images of handwritten digits with pixel values 0..16: scikit-learn's
``digits`` (1,797 images, a copy of the test set of the UCI optdigits data; see
``reference_node/data/README.md`` for provenance and licence), shipped as
``reference_node/data/digits.npz`` so the runtime does not need scikit-learn. A task's input
is the text ``"digits8x8:"`` followed by the 64 pixels, row by row, one character each from
``"0123456789abcdefg"`` (pixel value = the character's index; lowercase only, so one image
has exactly one encoding and one input hash). :func:`task_input` picks the i-th task's image
of a seeded workload as sha256(seed, i) mod 1797. Any valid encoding is a valid input (the
model runs on any 64 pixels in 0..16, dataset image or not); any other text is not a task of
this model: :func:`decode` raises :class:`InvalidInput` naming the first bad input and what is
wrong with it, the provider's ``POST /infer`` answers 422 with that message, and a verifier or
the arbiter that finds such an input in a commitment judges it divergent (the declared model
has no output on it, so no committed output can be its output).

The models (integer arithmetic, bit-exact on any machine)
----------------------------------------------------------
``reference_node/train_models.py`` trains small multilayer perceptrons in numpy float on a
fixed split of the data, quantizes them, and writes each as an ``.npz`` of integer arrays
under ``reference_node/data/models/``: per layer k an int8 weight matrix ``wk`` (in × out), an
int32 bias ``bk`` and a right shift ``shifts[k]``. A **model id is the sha256 (hex) of its
weight file's bytes**; :func:`model` loads a model by id from the registry of shipped files.
Inference, with x the input pixels (integers 0..16) and ``>>`` the arithmetic (floor) shift::

    acc  = Σ_i x_i · w_ij + b_j + ⌊2^(s−1)⌋          (exact integers; the rounding term is 0 for s = 0)
    x'_j = min(max(acc >> s, 0), 255)                  hidden layers (ReLU and clip to 0..255)
    y_j  = acc >> s                                    the last layer: the OUT = 10 class scores

The output is the vector of 10 integer scores (its argmax, lowest index on ties, is the
predicted digit). Some verifier models begin with a fixed *feature view* layer (2×2 pooling,
row and column sums) written in the same form (0/1 weights, no bias, no shift).

Exactness of the fast path: the matrix products run in IEEE double (BLAS). For every layer
the loader computes B = max_j (Σ_i |w_ij|·X + |b_j| + 2^(s−1)), with X the largest input value
(16 for pixels, 255 for hidden layers), and uses the float path only if B < 2^53 (otherwise
the same formula in int64). Every product w_ij·x_i and every partial sum, in whatever order or
blocking the BLAS kernel uses, and with or without fused multiply-add, is then an integer of
magnitude ≤ B < 2^53; such integers are exactly representable in binary64, so each IEEE
operation (correctly rounded) returns the exact integer and the result equals the integer
formula bit for bit. Scaling by 2^−s is exact (a power of two, no underflow at these
magnitudes) and ``floor`` of the exact quotient is the arithmetic right shift. For the
shipped models B ≤ 229,751 < 2^18, so even the 24-bit float32 mantissa would be exact, but
float64 is used for margin. A test compares the fast path with a pure-Python integer implementation.
Cost: decoding a batch of 512 inputs (one join, ``np.frombuffer`` and a lookup table) and
running the declared model takes about 0.6 µs per input on the reference 2-core machine.

The registry's roles (the ``name`` stored in each file): ``declared`` (the honest model the
protocol declares; :data:`DECLARED_ID`), ``weaker`` (a far cheaper, less accurate model: the
``weaker-model`` deviation), and ``verifier-0`` … (diverse verifier models for consensus mode:
different architectures, seeds, training subsets and feature views). Their accuracies,
divergences and error correlations are measured by ``mira-node calibrate``
(:mod:`reference_node.calibrate`). :func:`digit_claim` builds the consensus claims (an m-option
question about a held-out image) that :mod:`reference_node.committee` can vote on with the
verifier models.

Deviations (how δ_j is realised exactly)
----------------------------------------
A deviating provider decides per task, with a keyed hash of its own secret and the task id
(uniform on [0, 1), unknown to everyone else), whether the task is in its *divergent set*:
u_j < δ_j. On those tasks it does the cheap thing, elsewhere it runs the declared model:

* a deviation whose name contains ``random`` returns uniform random integer scores in
  [−RANDOM_SCALE, RANDOM_SCALE]; it costs nothing. Each score lands within the tolerance of
  the declared one with probability ≤ (2τ+1)/(2·RANDOM_SCALE+1) = 9/2049 < 4.4·10⁻³, all ten
  with probability < 3·10⁻²⁴, so it differs on every divergent task (exact and tolerance).
* any other deviation (``weaker-model``) returns the weaker model's scores (8× fewer
  multiply-adds). On every one of the 1,797 images the weaker model's scores differ from the
  declared model's by more than the tolerance τ in some class (so also in exact comparison):
  the training script refuses weights for which this fails, a test checks it, and
  ``mira-node calibrate`` reports the measured share ρ (= 1). The workload draws its inputs
  from these images, so the weaker output differs on every divergent task.

So the realised divergence of deviation j is the fraction of tasks with u_j < δ_j:
Binomial(n, δ_j)/n, mean δ_j. δ_j = 1 means every task is divergent (the cheap path always).
(Were ρ < 1 for some deviation, its realised divergence would be δ_j·ρ: that is what
``mira-node calibrate`` writes into a scenario's ``divergence``.)

Tolerance comparison (noisy GPU): how α and β are realised
-----------------------------------------------------------
With ``audit_comparison = "tolerance"`` an honest provider's output carries numeric noise:
y + s·v, v a random ±1 vector, s an integer drawn so that P(s > τ) = α' = α/(1 − β) (s uniform
on {τ+1, …, 2τ} with probability α', uniform on {0, …, τ} otherwise), τ = TOLERANCE score
units. Verifiers and the arbiter re-execute the integer model and flag iff ‖y' − y‖∞ > τ. An
effective audit is *inconclusive* with probability β (keyed by the verifier's secret and the
task id, so the provider cannot predict it: a re-execution that times out on the verifier's
noisy hardware) and an inconclusive audit passes. Hence an effective audit flags an honest
output with probability (1 − β)·α' = α and misses a divergent one with probability β. A
deviator's non-divergent outputs carry no noise, so its flag probability per effective audit
is exactly δ_j(1 − β), the model's d_j/(q·e) (the model has no false-alarm term for a
deviator). In exact mode α must be 0 (the params loader enforces it: a deterministic honest
output cannot fail an exact re-execution); β is realised the same way in both modes.

Output format
-------------
An output is a list of exactly OUT = 10 integers with |v| ≤ OUTPUT_BOUND = 2³¹ − 1 (every
model's scores are bounded far inside it by its weights; the loader checks). Its canonical
text is the integers in decimal joined by commas (:func:`canonical`, what is hashed and
signed); the ledger stores it as a JSON list (:func:`canonical_json`). :func:`parse_output`
accepts exactly such lists (JSON integers; bools, floats — even ``3.0`` —, non-finite and
out-of-bound values are rejected).
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import glob
import hashlib
import io
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

PIXELS = 64                 # 8×8 input pixels
PIXEL_MAX = 16              # pixel values 0..16
OUT = 10                    # class scores
HIDDEN_MAX = 255            # hidden activations are clipped to 0..255
PREFIX = "digits8x8:"
ALPHABET = "0123456789abcdefg"  # pixel value v is ALPHABET[v]
INPUT_LENGTH = len(PREFIX) + PIXELS
TOLERANCE = 4               # τ, in score units (tolerance comparison)
RANDOM_SCALE = 1024         # random output: uniform integers in [−RANDOM_SCALE, RANDOM_SCALE]
OUTPUT_BOUND = 2**31 - 1    # |score| bound accepted by parse_output

DATA = Path(__file__).resolve().parent / "data"
MODEL_DIR = DATA / "models"
_EXACT_FLOAT = 2**53


# ----------------------------------------------------------------------------------------
# BLAS threads
# ----------------------------------------------------------------------------------------


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


# ----------------------------------------------------------------------------------------
# Hashes
# ----------------------------------------------------------------------------------------


def unit_hash(*parts: str | bytes) -> float:
    """A keyed hash mapped to [0, 1): 53 bits of sha256 of the joined parts."""
    data = b"\x1f".join(p.encode() if isinstance(p, str) else p for p in parts) + b"\x1f"
    return (int.from_bytes(hashlib.sha256(data).digest()[:8], "big") >> 11) / _2_53


_2_53 = float(1 << 53)


def unit_hashes(parts: Sequence[str | bytes], last: Sequence[str]) -> np.ndarray:
    """``unit_hash(*parts, x)`` for each x of ``last``, as a float64 array of the same values (the
    53-bit integers and their scaling by 2^−53 are exact in float64): the common prefix is joined
    once and the digests are converted to numbers as one array."""
    prefix = b"".join((p.encode() if isinstance(p, str) else p) + b"\x1f" for p in parts)
    sha = hashlib.sha256
    top = b"".join([sha(prefix + x.encode() + b"\x1f").digest()[:8] for x in last])
    return (np.frombuffer(top, dtype=">u8") >> np.uint64(11)) / _2_53


def sha256_hex(data: str) -> str:
    return hashlib.sha256(data.encode()).hexdigest()


# ----------------------------------------------------------------------------------------
# The data set and the input encoding
# ----------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def digits() -> tuple[np.ndarray, np.ndarray]:
    """(pixels uint8 (1797, 64) in 0..16, labels uint8 (1797,)): the shipped data set."""
    with np.load(DATA / "digits.npz", allow_pickle=False) as z:
        pixels, labels = z["pixels"], z["labels"]
    pixels.setflags(write=False)
    labels.setflags(write=False)
    return pixels, labels


@functools.lru_cache(maxsize=1)
def heldout() -> np.ndarray:
    """Indices of the held-out images (about a third; the models never trained on them).

    Image i is held out iff the first byte of sha256("mira-digits-split|i") is < 86: a fixed
    split that needs no random generator (so it is the same for every numpy version).
    """
    n = len(digits()[1])
    idx = np.array([i for i in range(n) if hashlib.sha256(f"mira-digits-split|{i}".encode()).digest()[0] < 86])
    idx.setflags(write=False)
    return idx


def training() -> np.ndarray:
    """Indices of the training images (the complement of :func:`heldout`)."""
    mask = np.ones(len(digits()[1]), dtype=bool)
    mask[heldout()] = False
    return np.flatnonzero(mask)


def encode(pixels: Sequence[int] | np.ndarray) -> str:
    """The input text of one image (64 pixel values in 0..16)."""
    values = [int(v) for v in pixels]
    if len(values) != PIXELS or not all(0 <= v <= PIXEL_MAX for v in values):
        raise ValueError(f"encode: expected {PIXELS} pixel values in 0..{PIXEL_MAX}")
    return PREFIX + "".join(ALPHABET[v] for v in values)


@functools.lru_cache(maxsize=1)
def _encoded() -> tuple[str, ...]:
    return tuple(encode(row) for row in digits()[0])


def task_input(seed: int | str, i: int) -> str:
    """The input of the i-th task of a seeded workload (the in-process network and the load client)."""
    return task_inputs(seed, i, 1)[0]


def task_inputs(seed: int | str, first: int, count: int) -> list[str]:
    """The inputs of tasks first..first+count of a seeded workload: task i encodes image
    sha256("mira-task|seed|i")'s leading 8 bytes (big-endian) mod 1797, reduced as one uint64 array."""
    sha, images = hashlib.sha256, _encoded()
    top = b"".join([sha(f"mira-task|{seed}|{i}".encode()).digest()[:8] for i in range(first, first + count)])
    return [images[k] for k in (np.frombuffer(top, dtype=">u8") % np.uint64(len(images))).tolist()]


class InvalidInput(ValueError):
    """An input that is not a valid encoding of 64 pixels (see the module docstring).

    ``index``: the position of the first bad input in the batch; ``problem``: what is wrong with it.
    """

    def __init__(self, message: str, index: int = 0, problem: str = ""):
        super().__init__(message)
        self.index, self.problem = index, problem or message


_LUT = np.full(256, 255, dtype=np.uint8)
for _v, _c in enumerate(ALPHABET):
    _LUT[ord(_c)] = _v
_PREFIX_BYTES = np.frombuffer(PREFIX.encode(), dtype=np.uint8)


def input_problem(text: object) -> str | None:
    """What is wrong with one input (None if it is a valid encoding)."""
    if not isinstance(text, str):
        return f"expected a string, found {type(text).__name__}"
    if not text.startswith(PREFIX):
        return f"expected the prefix {PREFIX!r} followed by {PIXELS} pixel characters, found {text[:24]!r}"
    body = text[len(PREFIX):]
    if len(body) != PIXELS:
        return f"expected {PIXELS} pixel characters after {PREFIX!r}, found {len(body)}"
    for k, c in enumerate(body):
        if c not in ALPHABET:
            return (f"pixel {k}: expected one of {ALPHABET!r} (the pixel value 0..{PIXEL_MAX} as an index), "
                    f"found {c!r}")
    return None


def decode(inputs: Sequence[str]) -> np.ndarray:
    """The pixels (uint8, n × 64) of valid inputs; :class:`InvalidInput` names the first bad one."""
    n = len(inputs)
    if n == 0:
        return np.zeros((0, PIXELS), dtype=np.uint8)
    try:
        if set(map(len, inputs)) != {INPUT_LENGTH}:
            raise ValueError
        raw = np.frombuffer("".join(inputs).encode("ascii"), dtype=np.uint8).reshape(n, INPUT_LENGTH)
    except (ValueError, TypeError, UnicodeEncodeError):
        raw = None
    if raw is not None:
        pixels = _LUT[raw[:, len(PREFIX):]]
        if (raw[:, :len(PREFIX)] == _PREFIX_BYTES).all() and not (pixels == 255).any():
            return pixels
    for k, text in enumerate(inputs):
        problem = input_problem(text)
        if problem is not None:
            raise InvalidInput(f"input {k}: {problem}", k, problem)
    raise AssertionError("decode: no invalid input found")  # unreachable: the fast path accepted them


# ----------------------------------------------------------------------------------------
# Models and the registry
# ----------------------------------------------------------------------------------------


class UnknownModel(KeyError):
    pass


@dataclass(frozen=True, eq=False)
class Model:
    """A quantized network: per layer an integer weight matrix, bias and right shift."""

    id: str
    name: str
    path: Path
    weights: tuple[np.ndarray, ...]   # int64, (in, out)
    biases: tuple[np.ndarray, ...]    # int64, (out,)
    shifts: tuple[int, ...]
    bounds: tuple[int, ...]           # per layer: the largest |partial sum| (the exactness bound B)
    score_bound: int                  # the largest |score| the weights allow

    @property
    def layers(self) -> int:
        return len(self.shifts)

    @property
    def multiply_adds(self) -> int:
        """Multiply-adds per input (feature views included)."""
        return int(sum(w.shape[0] * w.shape[1] for w in self.weights))

    @property
    def float_exact(self) -> bool:
        return max(self.bounds) < _EXACT_FLOAT

    @functools.cached_property
    def _float(self) -> tuple[tuple[np.ndarray, np.ndarray, float], ...]:
        return tuple((w.astype(np.float64), (b + ((1 << s) >> 1)).astype(np.float64), 2.0 ** -s)
                     for w, b, s in zip(self.weights, self.biases, self.shifts))

    def scores(self, pixels: np.ndarray) -> np.ndarray:
        """The integer class scores (int64, n × OUT) of uint8 pixel rows."""
        if not self.float_exact:
            return self.scores_int64(pixels)
        h = pixels.astype(np.float64)
        last = self.layers - 1
        for k, (w, b, scale) in enumerate(self._float):
            h = h @ w
            h += b
            if scale != 1.0:
                h *= scale
                np.floor(h, out=h)
            if k < last:
                np.clip(h, 0.0, HIDDEN_MAX, out=h)
        return h.astype(np.int64)

    def scores_int64(self, pixels: np.ndarray) -> np.ndarray:
        """The same scores computed in int64 (the definition; slower than the float path)."""
        h = pixels.astype(np.int64)
        last = self.layers - 1
        for k, (w, b, s) in enumerate(zip(self.weights, self.biases, self.shifts)):
            h = (h @ w + b + ((1 << s) >> 1)) >> s
            if k < last:
                h = np.clip(h, 0, HIDDEN_MAX)
        return h

    def run(self, inputs: Sequence[str]) -> np.ndarray:
        """Scores of input texts (:class:`InvalidInput` if one is not a valid encoding)."""
        return self.scores(decode(inputs))


def read_model(path: str | Path) -> Model:
    """Load a model file; its id is the sha256 of the file's bytes."""
    path = Path(path)
    raw = path.read_bytes()
    with np.load(io.BytesIO(raw), allow_pickle=False) as z:
        shifts = tuple(int(s) for s in z["shifts"])
        weights = tuple(z[f"w{k}"].astype(np.int64) for k in range(len(shifts)))
        biases = tuple(z[f"b{k}"].astype(np.int64) for k in range(len(shifts)))
        name = str(z["name"])
    bounds, top = [], PIXEL_MAX
    for k, (w, b, s) in enumerate(zip(weights, biases, shifts)):
        if w.ndim != 2 or b.shape != (w.shape[1],) or s < 0 or (k and w.shape[0] != weights[k - 1].shape[1]):
            raise ValueError(f"{path}: layer {k}: inconsistent shapes or shift")
        bounds.append(int((np.abs(w).sum(axis=0) * top + np.abs(b)).max()) + ((1 << s) >> 1))
        top = HIDDEN_MAX
    if weights[0].shape[0] != PIXELS or weights[-1].shape[1] != OUT:
        raise ValueError(f"{path}: expected {PIXELS} inputs and {OUT} outputs")
    score_bound = (bounds[-1] >> shifts[-1]) + 1
    if score_bound + 2 * TOLERANCE > OUTPUT_BOUND:
        raise ValueError(f"{path}: scores may exceed the output bound")
    return Model(hashlib.sha256(raw).hexdigest(), name, path, weights, biases, shifts, tuple(bounds), score_bound)


@functools.lru_cache(maxsize=1)
def registry() -> dict[str, Model]:
    """Every shipped model, by id."""
    found = [read_model(p) for p in sorted(MODEL_DIR.glob("*.npz"))]
    return {m.id: m for m in found}


def by_name(name: str) -> Model:
    for m in registry().values():
        if m.name == name:
            return m
    raise UnknownModel(f"no shipped model named {name!r}")


def model(model_id: str) -> Model:
    """The shipped model with this id (sha256 of its weight file)."""
    try:
        return registry()[model_id]
    except KeyError:
        raise UnknownModel(f"unknown model id {model_id!r}: expected the sha256 of a file in {MODEL_DIR}") from None


def verifier_models() -> list[Model]:
    """The consensus verifier models, in order (verifier-0, verifier-1, …)."""
    found = sorted((m for m in registry().values() if m.name.startswith("verifier-")),
                   key=lambda m: int(m.name.split("-")[1]))
    return found


def __getattr__(name: str) -> str:
    # DECLARED_ID and WEAKER_ID, read from the registry on first use (so the training script can
    # import this module before any weight file exists)
    if name == "DECLARED_ID":
        return by_name("declared").id
    if name == "WEAKER_ID":
        return by_name("weaker").id
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def run(model_id: str, inputs: Sequence[str]) -> np.ndarray:
    """The integer scores (int64, n × OUT) of a shipped model on input texts."""
    return model(model_id).run(inputs)


def run_declared(inputs: Sequence[str]) -> np.ndarray:
    return by_name("declared").run(inputs)


def run_weaker(inputs: Sequence[str]) -> np.ndarray:
    return by_name("weaker").run(inputs)


def multiply_adds(model_id: str) -> int:
    return model(model_id).multiply_adds


def predict(scores: np.ndarray) -> np.ndarray:
    """The predicted digit of each score row (argmax; the lowest index on ties)."""
    return np.argmax(scores, axis=-1)


def deviation_kind(name: str) -> str:
    """How the network realises a deviation: ``random`` (random scores) or ``weaker`` (the weaker model)."""
    return "random" if "random" in name else "weaker"


def random_output(rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.integers(-RANDOM_SCALE, RANDOM_SCALE + 1, size=(n, OUT), dtype=np.int64)


def honest_noise(rng: np.random.Generator, n: int, exceed: float) -> np.ndarray:
    """Integer noise rows whose ∞-norm exceeds TOLERANCE with probability ``exceed`` each."""
    big = rng.random(n) < exceed
    s = np.where(big, rng.integers(TOLERANCE + 1, 2 * TOLERANCE + 1, n), rng.integers(0, TOLERANCE + 1, n))
    v = rng.choice(np.array([-1, 1], dtype=np.int64), size=(n, OUT))
    return s[:, None] * v


# ----------------------------------------------------------------------------------------
# Consensus claims built from digits
# ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DigitClaim:
    """An m-option claim: "which of these digits does the image show?".

    ``image``: the index of a held-out image; ``options``: m distinct digits in increasing order,
    its true label and m − 1 distractors; ``truth``: the index of the true label in ``options``.
    """

    image: int
    options: tuple[int, ...]
    truth: int


def _h(*parts: object) -> int:
    return int.from_bytes(hashlib.sha256("|".join(map(str, parts)).encode()).digest()[:8], "big")


def digit_claim(seed: int | str, claim_id: str, options: int) -> DigitClaim:
    """The claim of a claim id: a held-out image drawn by sha256(seed, claim id), its true digit and
    ``options`` − 1 distinct wrong digits drawn uniformly (a partial Fisher–Yates shuffle on hashes)."""
    if not 2 <= options <= OUT:
        raise ValueError(f"options: expected 2..{OUT} for digit claims, found {options}")
    held = heldout()
    image = int(held[_h("mira-claim", seed, claim_id, "image") % len(held)])
    label = int(digits()[1][image])
    wrong = [d for d in range(OUT) if d != label]
    for k in range(options - 1):
        j = k + _h("mira-claim", seed, claim_id, "distractor", k) % (len(wrong) - k)
        wrong[k], wrong[j] = wrong[j], wrong[k]
    opts = tuple(sorted([label, *wrong[:options - 1]]))
    return DigitClaim(image, opts, opts.index(label))


def answer(scores: Sequence[int] | np.ndarray, options: Sequence[int]) -> int:
    """A model's vote on a claim: the index of the option whose digit has the highest score (the
    lowest digit on ties, as :func:`predict`)."""
    best = 0
    for k in range(1, len(options)):
        if scores[options[k]] > scores[options[best]]:
            best = k
    return best


# ----------------------------------------------------------------------------------------
# The output format
# ----------------------------------------------------------------------------------------

_CANONICAL = ",".join(["%d"] * OUT)


def canonical(values) -> str:
    """The canonical text of an output (integers; what is hashed and signed)."""
    if len(values) == OUT:
        return _CANONICAL % tuple(values)
    return ",".join(str(int(v)) for v in values)


def canonical_json(values) -> str:
    """The stored form of an output (the ledger's ``tasks.output`` column): a JSON list."""
    return "[" + canonical(values) + "]"


def output_hash(values) -> str:
    return hashlib.sha256(canonical(values).encode()).hexdigest()


_CANONICAL_BYTES = _CANONICAL.encode()


def output_hashes(outputs) -> list[str]:
    """:func:`output_hash` of each output (the canonical text of OUT integers formatted as bytes,
    the same ASCII digits)."""
    sha, text = hashlib.sha256, _CANONICAL_BYTES
    return [sha(text % tuple(v)).hexdigest() if len(v) == OUT else output_hash(v) for v in outputs]


def stored_and_hash(values) -> tuple[str, str]:
    """(:func:`canonical_json`, :func:`output_hash`) of an output, formatting it once."""
    text = canonical(values)
    return "[" + text + "]", hashlib.sha256(text.encode()).hexdigest()


NO_OUTPUT_HASH = hashlib.sha256(b"mira-no-output|the input is not a valid encoding").hexdigest()


def recomputed_hash(values) -> str:
    """The hash a verifier signs over its re-executed output: :func:`output_hash`, or
    NO_OUTPUT_HASH for ``None`` (the committed input is not a valid encoding: no output)."""
    return NO_OUTPUT_HASH if values is None else output_hash(values)


def parse_output(value) -> list[int] | None:
    """A claimed output as a list of OUT integers within ±OUTPUT_BOUND, or None if malformed."""
    if value.__class__ is not list or len(value) != OUT:
        return None
    for v in value:
        if v.__class__ is not int or not -OUTPUT_BOUND <= v <= OUTPUT_BOUND:  # bool is not int here
            return None
    return value


def matches(reference, claimed, comparison: str) -> bool:
    """Does a claimed output agree with the reference re-execution?

    exact: the same 10 integers; tolerance: every score within TOLERANCE (‖Δ‖∞ ≤ τ).
    """
    if len(reference) != len(claimed):
        return False
    if comparison == "exact":
        return all(int(a) == int(b) for a, b in zip(reference, claimed))
    return all(abs(int(a) - int(b)) <= TOLERANCE for a, b in zip(reference, claimed))
