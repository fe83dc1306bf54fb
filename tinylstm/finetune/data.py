"""Training and validation data for fine-tuning: sequences with what the model should output.

Data files as everywhere in tinylstm (:mod:`tinylstm.data.dataset`): ``x`` (N, T, F), optional
``lengths``, and ``labels`` (N,) for a classifier (one score vector per sequence, loss:
cross-entropy) or ``y`` for regression (the targets at the model's output steps, loss: mean
squared error). Sequences are kept zero-padded in one array with their lengths: a batch runs
padded (:mod:`.forward` keeps every row at its own length).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..data.dataset import Dataset, load_dataset
from ..errors import DataError
from ..ir import FloatModel


@dataclass(frozen=True)
class Examples:
    """Sequences, their lengths and targets, as the loss reads them."""

    x: np.ndarray  # (N, Tmax, F) float32 canonical, zero past lengths
    lengths: np.ndarray  # (N,) int64
    labels: np.ndarray | None  # (N,) int64 (classification)
    targets: np.ndarray | None  # (N, O) float64, or (N, Tmax, O) per step (regression)
    source: str
    dataset: Dataset  # the sequences unpadded (scoring runs them through the simulator)

    @property
    def classification(self) -> bool:
        return self.labels is not None

    def __len__(self) -> int:
        return int(self.x.shape[0])

    def subset(self, idx: np.ndarray) -> Examples:
        idx = np.asarray(idx, np.int64)
        tmax = int(self.lengths[idx].max())
        t = None if self.targets is None else self.targets[idx]
        if t is not None and t.ndim == 3:
            t = t[:, :tmax]
        ds = Dataset([self.dataset.sequences[i] for i in idx],
                     None if self.labels is None else self.labels[idx],
                     None if t is None else [t[k] for k in range(len(idx))], self.source)
        return Examples(self.x[idx, :tmax], self.lengths[idx], None if self.labels is None else self.labels[idx],
                        t, self.source, ds)


def examples(source, fm: FloatModel, what: str) -> Examples:
    """Load ``source`` (a data file, a :class:`Dataset`, ...) and check it can train ``fm``."""
    ds = load_dataset(source, fm, what=what)
    label = f"{what} '{ds.source}'" if ds.source != "<array>" else what
    n = len(ds)
    lens = np.array([s.shape[0] for s in ds.sequences], np.int64)
    x = np.zeros((n, int(lens.max()), fm.input_features), np.float32)
    for i, s in enumerate(ds.sequences):
        x[i, : s.shape[0]] = s
    classifier = not fm.many_to_many and fm.output_features >= 2
    if ds.labels is not None and classifier:
        return Examples(x, lens, ds.labels.astype(np.int64), None, ds.source, ds)
    if ds.targets is None:
        want = "'labels' (N,) class indices" if classifier else "'y' targets"
        raise DataError(f"{label} has no targets: fine-tuning needs {want}"
                        + (" or 'y' targets" if classifier else "")
                        + " besides 'x'")
    return Examples(x, lens, None, _targets(ds, fm, lens, label), ds.source, ds)


def _targets(ds: Dataset, fm: FloatModel, lens: np.ndarray, label: str) -> np.ndarray:
    out_f = fm.output_features
    rows = []
    for i, t in enumerate(ds.targets or []):
        t = np.asarray(t, np.float64)
        if not fm.many_to_many:
            if t.size != out_f:
                raise DataError(f"{label}: 'y' has {t.size} values for sequence {i}; the model outputs {out_f}")
            rows.append(t.reshape(out_f))
            continue
        flat = t.reshape(-1)
        if flat.size % out_f or flat.size // out_f < lens[i]:
            raise DataError(f"{label}: 'y' of sequence {i} has shape {t.shape}; the model outputs {out_f} values "
                            f"at each of its {lens[i]} steps")
        rows.append(flat.reshape(-1, out_f))
    if not fm.many_to_many:
        return np.stack(rows)
    tmax = int(lens.max())
    out = np.zeros((len(rows), tmax, out_f))
    for i, r in enumerate(rows):
        out[i, : lens[i]] = r[: lens[i]]
    return out


def split(ex: Examples, fraction: float, seed: int) -> tuple[Examples, Examples]:
    """A seeded random split: ``(rest, held out)``, the held-out part ``fraction`` of the
    sequences (at least one, at most 512), for validation when no validation file is given."""
    n = len(ex)
    if n < 2:
        raise DataError(f"training data '{ex.source}' holds {n} sequence: give validation data (--val)")
    k = min(max(1, int(round(n * fraction))), 512, n - 1)
    perm = np.random.default_rng(seed).permutation(n)
    return ex.subset(np.sort(perm[k:])), ex.subset(np.sort(perm[:k]))
