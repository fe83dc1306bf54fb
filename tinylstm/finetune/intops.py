"""The integer primitives of docs/quantization.md in torch, exact in value, with straight-through
gradients.

Every tensor here holds integers in float64. Where the spec's integers stay below 2^53 (every
product and sum of the LSTM gates, the tables and the cell update, §11), float64 computes them
exactly and ``floor`` / ``round`` give the spec's shifts; the one product that can exceed 2^53
(``requant``'s ``acc * mult``, up to 2^61) is computed in int64. Rounding steps pass the gradient
through unchanged (straight-through estimator), so the forward value is the integer model's while
the backward pass sees the smooth function it approximates.
"""

from __future__ import annotations

import numpy as np
import torch


class _Ste(torch.autograd.Function):
    """``exact`` in the forward pass, the gradient of ``surrogate`` in the backward pass."""

    @staticmethod
    def forward(ctx, exact: torch.Tensor, surrogate: torch.Tensor) -> torch.Tensor:  # noqa: ARG004
        return exact.clone()

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # noqa: ARG004
        return None, grad


def ste(exact: torch.Tensor, surrogate: torch.Tensor) -> torch.Tensor:
    """The value of ``exact`` (no gradient) carrying the gradient of ``surrogate``."""
    if not surrogate.requires_grad:
        return exact
    return _Ste.apply(exact.detach(), surrogate)


def floor_ste(x: torch.Tensor) -> torch.Tensor:
    """``floor(x)`` with the gradient of ``x`` (the spec's ``>>`` of a value already scaled)."""
    return ste(torch.floor(x.detach()), x)


def round_even_ste(x: torch.Tensor) -> torch.Tensor:
    """``x`` rounded half to even (``round_shift``'s rule) with the gradient of ``x``."""
    return ste(torch.round(x.detach()), x)


def mul16(acc: torch.Tensor, mult: torch.Tensor) -> torch.Tensor:
    """``(acc * m) >> 16`` (spec §2; ``|acc m| < 2^46``: exact in float64)."""
    return floor_ste(acc * (mult * 2.0**-16))


def requant(acc: torch.Tensor, mult: int, shift: int) -> torch.Tensor:
    """``(acc * mult + 2^(shift-1)) >> shift`` (spec §2), the product in int64 (up to 2^61);
    gradient of ``acc * mult * 2^-shift``."""
    a = acc.detach().to(torch.int64) * mult
    if shift:
        a = (a + (1 << (shift - 1))) >> shift
    return ste(a.to(torch.float64), acc * (mult * 2.0**-shift))


def sat(x: torch.Tensor, lo: int, hi: int) -> torch.Tensor:
    """``min(max(x, lo), hi)``: no gradient where it saturates."""
    return torch.clamp(x, lo, hi)


def lut_u16(table: torch.Tensor, u: torch.Tensor, shift: int) -> torch.Tensor:
    """The standard table interpolated at ``u >= 0`` (``fixedpoint.lut_u16``), not rounded; its
    gradient is the slope of the segment ``u`` falls on (0 beyond the grid)."""
    n = table.shape[0] - 1
    if shift <= 0:
        j = torch.clamp(u.detach().to(torch.int64) << -shift, max=n)
        return table[j]  # constant between grid points: no gradient
    step = float(1 << shift)
    j = torch.floor(u.detach() / step)
    jc = torch.clamp(j, max=n - 1).to(torch.int64)
    lo = table[jc]
    v = lo * step + (table[jc + 1] - lo) * (u - jc.to(u.dtype) * step)
    return torch.where(j >= n, table[n] * step, v)


def sigmoid_q15(z: torch.Tensor, table: torch.Tensor, shift: int) -> torch.Tensor:
    """``sigma(z)`` in Q(15) from the standard table (``fixedpoint.sigmoid_q15``)."""
    s = max(shift, 0)
    d = floor_ste((lut_u16(table, torch.abs(z), shift) + (1 << s)) * 2.0 ** -(s + 1))
    return torch.where(z >= 0, 32768.0 - d, d)


def tanh_q15(z: torch.Tensor, table: torch.Tensor, shift: int) -> torch.Tensor:
    """``tanh(z) = 2 sigma(2z) - 1`` in Q(15) from the standard table (``fixedpoint.tanh_q15``)."""
    n = table.shape[0] - 1
    cap = float(n << shift if shift > 0 else n >> -shift)
    s = max(shift, 0)
    v = lut_u16(table, 2.0 * torch.clamp(torch.abs(z), max=cap), shift)
    t = 32768.0 - (floor_ste((v + ((1 << s) >> 1)) * 2.0**-s) if s else v)
    return torch.where(z >= 0, t, -t)


def requant_rows(acc: torch.Tensor, mult: np.ndarray, shift: np.ndarray) -> torch.Tensor:
    """:func:`requant` with one ``(mult, shift)`` per output feature (the last axis)."""
    m = torch.as_tensor(np.asarray(mult, np.int64))
    s = torch.as_tensor(np.asarray(shift, np.int64))
    a = acc.detach().to(torch.int64) * m
    a = (a + ((torch.ones_like(s) << s) >> 1)) >> s
    return ste(a.to(torch.float64), acc * (m.double() * torch.exp2(-s.double())))
