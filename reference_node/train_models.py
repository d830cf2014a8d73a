"""Train and quantize the reference network's models: ``python -m reference_node.train_models [--out DIR]``.

What it does, deterministically (seeded; no wall clock, no unseeded randomness):

1. **Data.** Reads scikit-learn's bundled ``digits`` (1,797 8×8 images, pixels 0..16; a ``dev``
   dependency) and writes ``<out>/../digits.npz`` (uint8 ``pixels`` and ``labels``) — the copy the
   runtime reads, so the runtime never imports scikit-learn. With ``--data-from-package`` it
   trains from the shipped ``reference_node/data/digits.npz`` instead (no scikit-learn needed).
2. **Split.** The held-out images are those of :func:`reference_node.models.heldout` (about a
   third, fixed by a hash of the index); the models train only on the rest.
3. **Training.** Each model is a multilayer perceptron (ReLU hidden layers, softmax
   cross-entropy, L2 weight decay) trained in numpy float64 by full-batch Adam from a seeded
   He initialisation, on pixels / 16 or on a fixed integer *feature view* of them / 16.
4. **Quantization.** Weights to int8 per layer, activations to 0..255 with a per-layer scale
   taken from the training data, biases to int32, and a power-of-two right shift per layer
   (the integer inference of :mod:`reference_node.models`). The output scale is about
   ``SCORE_UNIT`` score units per logit.
5. **Checks.** The quantized models' accuracies are printed; the script refuses to write a
   weaker model whose scores come within the tolerance of the declared model's on any image
   (the divergence guarantee of :mod:`reference_node.models`).
6. **Files.** ``<out>/<name>.npz`` per model (``w0, b0, w1, b1, …, shifts, name``), written
   byte-for-byte deterministically (stored zip members with a fixed timestamp), so a model's
   id — the sha256 of its file — depends only on its weights.

The models: ``declared`` (64→64→10, the honest model), ``weaker`` (64→8→10, 8× fewer
multiply-adds), and five diverse ``verifier-k`` models for consensus mode (different
architectures, seeds, training subsets and feature views: pixels, 2×2 pooling, row and column
profiles), so their errors are correlated but not identical.

Re-running the script on the same numpy/BLAS reproduces the committed files exactly (a test
checks it); on another BLAS build a last-bit difference in training could move a weight across a
rounding boundary. The committed files are the models: their sha256 ids are what the network
declares and what ``mira-node calibrate`` measures.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from reference_node import models

SCORE_UNIT = 64          # target score units per logit of the float network
ACT_QUANTILE = 99.9      # activation scale: this percentile of the training activations maps to 255


@dataclass(frozen=True)
class Spec:
    name: str
    hidden: tuple[int, ...]
    seed: int
    view: str = "pixels"      # pixels | pool2 | profile
    subset: float = 1.0       # share of the training images used (a hash-selected subset)
    steps: int = 600
    lr: float = 0.01
    l2: float = 1e-4


SPECS = (
    Spec("declared", (64,), seed=1),
    Spec("weaker", (8,), seed=2),
    Spec("verifier-0", (32,), seed=10, subset=0.7),
    Spec("verifier-1", (32,), seed=11, view="pool2", subset=0.7),
    Spec("verifier-2", (48,), seed=12, view="profile", subset=0.7),
    Spec("verifier-3", (), seed=13, subset=0.7, l2=1e-3),
    Spec("verifier-4", (24, 24), seed=14, subset=0.7),
)


# ----------------------------------------------------------------------------------------
# Files
# ----------------------------------------------------------------------------------------


def npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    """An .npz archive of the arrays, deterministic byte for byte (np.load reads it)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED) as z:
        for key, arr in arrays.items():
            member = io.BytesIO()
            np.lib.format.write_array(member, np.asarray(arr), allow_pickle=False)
            info = zipfile.ZipInfo(f"{key}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            z.writestr(info, member.getvalue())
    return buf.getvalue()


def sklearn_digits() -> tuple[np.ndarray, np.ndarray]:
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise SystemExit("train_models: scikit-learn is needed to read its digits data set "
                         "(pip install -e '.[dev]'), or pass --data-from-package") from None
    d = load_digits()
    data = np.asarray(d.data)
    if data.shape != (1797, 64) or not np.array_equal(data, np.round(data)) or data.min() < 0 or data.max() > 16:
        raise SystemExit(f"train_models: unexpected digits data {data.shape}, values {data.min()}..{data.max()}")
    return data.astype(np.uint8), np.asarray(d.target).astype(np.uint8)


# ----------------------------------------------------------------------------------------
# Feature views (fixed integer layers)
# ----------------------------------------------------------------------------------------


def view_matrix(view: str) -> np.ndarray | None:
    """The 0/1 integer matrix (64 × features) of a feature view; None for raw pixels."""
    if view == "pixels":
        return None
    if view == "pool2":  # sums of 2×2 blocks: 16 features in 0..64
        m = np.zeros((64, 16), dtype=np.int64)
        for p in range(64):
            r, c = divmod(p, 8)
            m[p, (r // 2) * 4 + c // 2] = 1
        return m
    if view == "profile":  # row sums and column sums: 16 features in 0..128
        m = np.zeros((64, 16), dtype=np.int64)
        for p in range(64):
            r, c = divmod(p, 8)
            m[p, r] = 1
            m[p, 8 + c] = 1
        return m
    raise ValueError(f"unknown view {view!r}")


# ----------------------------------------------------------------------------------------
# Training (numpy float64, full-batch Adam)
# ----------------------------------------------------------------------------------------


def train(x: np.ndarray, y: np.ndarray, spec: Spec) -> list[tuple[np.ndarray, np.ndarray]]:
    """Float weights [(W, b), …] of an MLP trained on features x (n × d) and labels y."""
    rng = np.random.default_rng(spec.seed)
    sizes = [x.shape[1], *spec.hidden, models.OUT]
    params = [(rng.standard_normal((a, b)) * np.sqrt(2.0 / a), np.zeros(b)) for a, b in zip(sizes, sizes[1:])]
    onehot = np.eye(models.OUT)[y]
    m = [(np.zeros_like(w), np.zeros_like(b)) for w, b in params]
    v = [(np.zeros_like(w), np.zeros_like(b)) for w, b in params]
    b1, b2, eps = 0.9, 0.999, 1e-8
    n = len(x)
    for t in range(1, spec.steps + 1):
        acts = [x]
        for k, (w, b) in enumerate(params):
            a = acts[-1] @ w + b
            acts.append(np.maximum(a, 0.0) if k < len(params) - 1 else a)
        z = acts[-1] - acts[-1].max(axis=1, keepdims=True)
        p = np.exp(z)
        p /= p.sum(axis=1, keepdims=True)
        grad = (p - onehot) / n
        for k in range(len(params) - 1, -1, -1):
            w, b = params[k]
            gw = acts[k].T @ grad + spec.l2 * w
            gb = grad.sum(axis=0)
            if k:
                grad = (grad @ w.T) * (acts[k] > 0)
            mw, mb = m[k]
            vw, vb = v[k]
            mw = b1 * mw + (1 - b1) * gw
            mb = b1 * mb + (1 - b1) * gb
            vw = b2 * vw + (1 - b2) * gw * gw
            vb = b2 * vb + (1 - b2) * gb * gb
            m[k], v[k] = (mw, mb), (vw, vb)
            c1, c2 = 1 - b1 ** t, 1 - b2 ** t
            w = w - spec.lr * (mw / c1) / (np.sqrt(vw / c2) + eps)
            b = b - spec.lr * (mb / c1) / (np.sqrt(vb / c2) + eps)
            params[k] = (w, b)
    return params


def float_logits(x: np.ndarray, params: list[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    h = x
    for k, (w, b) in enumerate(params):
        h = h @ w + b
        if k < len(params) - 1:
            h = np.maximum(h, 0.0)
    return h


# ----------------------------------------------------------------------------------------
# Quantization
# ----------------------------------------------------------------------------------------


def quantize(params: list[tuple[np.ndarray, np.ndarray]], view: np.ndarray | None, x_train: np.ndarray
             ) -> dict[str, np.ndarray]:
    """The integer layers (the model file's arrays) of a float MLP on features view(pixels)/16.

    x_train: training pixels (uint8), for the activation scales.
    """
    ws, bs, shifts = [], [], []
    if view is not None:  # the feature view: a fixed 0/1 layer, no bias, no shift
        ws.append(view.astype(np.int8))
        bs.append(np.zeros(view.shape[1], dtype=np.int32))
        shifts.append(0)
        feats = x_train.astype(np.float64) @ view
    else:
        feats = x_train.astype(np.float64)
    s_in = 1.0 / models.PIXEL_MAX     # float value of one integer unit of the layer's input
    h_float = feats * s_in
    last = len(params) - 1
    for k, (w, b) in enumerate(params):
        a = h_float @ w + b
        if k < last:
            act = np.maximum(a, 0.0)
            s_out = max(np.percentile(act, ACT_QUANTILE), 1e-6) / models.HIDDEN_MAX
        else:
            s_out = 1.0 / SCORE_UNIT
        # integer weights w·s_in·2^s/s_out within ±127: the largest shift s that allows it
        ideal = 127.0 * s_out / (np.abs(w).max() * s_in)
        s = max(0, int(np.floor(np.log2(ideal))))
        w_int = np.round(w * s_in * 2.0 ** s / s_out)
        if np.abs(w_int).max() > 127:  # s = 0 and still too large: a coarser output unit
            s_out = np.abs(w).max() * s_in / 127.0
            w_int = np.round(w * s_in / s_out)
        b_int = np.round(b * 2.0 ** s / s_out)
        ws.append(w_int.astype(np.int8))
        bs.append(b_int.astype(np.int32))
        shifts.append(s)
        if k < last:
            h_float = np.maximum(a, 0.0)
            s_in = s_out
    arrays: dict[str, np.ndarray] = {}
    for k, (w, b) in enumerate(zip(ws, bs)):
        arrays[f"w{k}"] = w
        arrays[f"b{k}"] = b
    arrays["shifts"] = np.array(shifts, dtype=np.int32)
    return arrays


# ----------------------------------------------------------------------------------------
# Main
# ----------------------------------------------------------------------------------------


def subset_of(name: str, indices: np.ndarray, share: float) -> np.ndarray:
    if share >= 1.0:
        return indices
    keep = [i for i in indices
            if int.from_bytes(hashlib.sha256(f"mira-subset|{name}|{i}".encode()).digest()[:8], "big") < share * 2**64]
    return np.array(keep)


def build(pixels: np.ndarray, labels: np.ndarray, train_idx: np.ndarray) -> dict[str, bytes]:
    """The model files (name -> bytes) trained on the given images."""
    out = {}
    for spec in SPECS:
        idx = subset_of(spec.name, train_idx, spec.subset)
        view = view_matrix(spec.view)
        feats = pixels[idx].astype(np.float64) if view is None else pixels[idx].astype(np.float64) @ view
        params = train(feats / models.PIXEL_MAX, labels[idx].astype(np.int64), spec)
        arrays = quantize(params, view, pixels[idx])
        arrays["name"] = np.array(spec.name)
        out[spec.name] = npz_bytes(arrays)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m reference_node.train_models", description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=str(models.MODEL_DIR), help="directory for the model files")
    ap.add_argument("--data-from-package", action="store_true",
                    help="train from the shipped digits.npz (no scikit-learn; do not rewrite it)")
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.data_from_package:
        pixels, labels = models.digits()
    else:
        pixels, labels = sklearn_digits()
        data_path = out.parent / "digits.npz"
        data_path.write_bytes(npz_bytes({"pixels": pixels, "labels": labels}))
        print(f"wrote {data_path} ({len(labels)} images)")
    held = models.heldout()
    mask = np.ones(len(labels), dtype=bool)
    mask[held] = False
    train_idx = np.flatnonzero(mask)
    with models.one_blas_thread():  # faster for these small matrices, and the same summation order every run
        files = build(pixels, labels, train_idx)
    loaded = {}
    for name, raw in files.items():
        path = out / f"{name}.npz"
        path.write_bytes(raw)
        loaded[name] = models.read_model(path)
    declared = loaded["declared"].scores(pixels)
    weaker = loaded["weaker"].scores(pixels)
    gap = np.abs(declared - weaker).max(axis=1)
    if gap.min() <= models.TOLERANCE:
        bad = int(np.argmin(gap))
        raise SystemExit(f"train_models: the weaker model comes within the tolerance of the declared model on "
                         f"image {bad} (gap {gap.min()}): change its seed or size")
    for name, m in loaded.items():
        pred = models.predict(m.scores(pixels))
        acc_train = float((pred[train_idx] == labels[train_idx]).mean())
        acc_held = float((pred[held] == labels[held]).mean())
        print(f"{name:<11} {m.id[:16]}  {m.multiply_adds:>5} multiply-adds  train {acc_train:.4f}  "
              f"held-out {acc_held:.4f}  |score| ≤ {int(np.abs(m.scores(pixels)).max())}  "
              f"exactness bound {max(m.bounds)}")
    print(f"weaker vs declared: min ‖Δ‖∞ over all images {int(gap.min())} (tolerance {models.TOLERANCE})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
