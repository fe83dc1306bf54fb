"""Views: how an ONNX tensor's axes hold a canonical value's batch, time and feature atoms.

Canonical values are ``(batch, time, features)`` (sequences) or ``(batch, features)`` (vectors);
a :class:`View` maps the ONNX input and output tensors onto them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

SEQ: Literal["seq"] = "seq"
VEC: Literal["vec"] = "vec"
ValueKind = Literal["seq", "vec"]


@dataclass(frozen=True)
class Atom:
    """One indivisible axis: ``B`` (batch), ``T`` (time) or a feature sub-axis.

    ``size`` is None for a dynamic batch/time axis.
    """

    label: str
    size: int | None

    @property
    def is_feature(self) -> bool:
        return self.label not in ("B", "T")


@dataclass(frozen=True)
class View:
    """How an ONNX tensor relates to a canonical value.

    ``atoms`` lists the canonical axes in canonical order: ``B``, then ``T`` for a sequence
    value, then the feature sub-axes whose row-major flattening is the canonical feature
    vector. ``dims`` gives, for each ONNX axis, the atoms (indices into ``atoms``) merged
    into it, row-major; an empty tuple is an axis of size 1.
    """

    atoms: tuple[Atom, ...]
    dims: tuple[tuple[int, ...], ...]

    @property
    def kind(self) -> ValueKind:
        return SEQ if any(a.label == "T" for a in self.atoms) else VEC

    @property
    def features(self) -> int:
        n = 1
        for a in self.atoms:
            if a.is_feature:
                n *= int(a.size)  # type: ignore[arg-type]
        return n

    def _sizes(self, batch: int, time: int | None) -> list[int]:
        out = []
        for a in self.atoms:
            if a.label == "B":
                out.append(batch)
            elif a.label == "T":
                out.append(int(time) if time is not None else 0)
            else:
                out.append(int(a.size))  # type: ignore[arg-type]
        return out

    def onnx_shape(self, batch: int, time: int | None) -> tuple[int, ...]:
        sizes = self._sizes(batch, time)
        return tuple(int(np.prod([sizes[i] for i in g], dtype=np.int64)) for g in self.dims)

    def axis_of(self, label: str) -> int | None:
        """The ONNX axis holding atom ``label`` (alone or merged), or None."""
        for d, g in enumerate(self.dims):
            for i in g:
                if self.atoms[i].label == label:
                    return d
        return None

    def to_canonical(self, x: np.ndarray) -> np.ndarray:
        """ONNX-shaped array -> canonical ``(B, T, F)`` or ``(B, F)``."""
        order = [i for g in self.dims for i in g]
        if sorted(order) != list(range(len(self.atoms))):
            raise ValueError("view does not cover every atom")
        batch, time = self._infer_bt(x.shape)
        sizes = self._sizes(batch, time)
        xa = x.reshape([sizes[i] for i in order])
        perm = [order.index(i) for i in range(len(self.atoms))]
        xa = xa.transpose(perm)
        lead = [batch] + ([time] if self.kind == SEQ else [])
        return xa.reshape(lead + [self.features])  # type: ignore[operator]

    def from_canonical(self, y: np.ndarray) -> np.ndarray:
        """Canonical array -> the ONNX tensor's own shape."""
        batch = y.shape[0]
        time = y.shape[1] if self.kind == SEQ else None
        sizes = self._sizes(batch, time)
        ya = y.reshape(sizes)
        order = [i for g in self.dims for i in g]
        return ya.transpose(order).reshape(self.onnx_shape(batch, time))

    def _infer_bt(self, shape: tuple[int, ...]) -> tuple[int, int | None]:
        if len(shape) != len(self.dims):
            raise ValueError(f"expected rank {len(self.dims)}, got shape {tuple(shape)}")
        batch = time = None
        for d, g in enumerate(self.dims):
            fixed = 1
            unknown = []
            for i in g:
                a = self.atoms[i]
                if a.is_feature or a.size is not None:
                    fixed *= int(a.size)  # type: ignore[arg-type]
                else:
                    unknown.append(a.label)
            if shape[d] % fixed:
                raise ValueError(f"axis {d} has size {shape[d]}, not a multiple of {fixed}")
            rest = shape[d] // fixed
            if not unknown:
                if rest != 1:
                    raise ValueError(f"axis {d} must have size {fixed}, got {shape[d]}")
            elif len(unknown) == 1:
                if unknown[0] == "B":
                    batch = rest
                else:
                    time = rest
            else:
                raise ValueError("cannot infer batch and time from a merged dynamic axis")
        for a in self.atoms:
            if a.label == "B" and a.size is not None:
                batch = a.size
            if a.label == "T" and a.size is not None:
                time = a.size
        if batch is None:
            batch = 1
        return batch, time
