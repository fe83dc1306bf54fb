"""Validation metrics on hand-computable cases."""

from __future__ import annotations

import numpy as np
import pytest

from tinylstm.validate.metrics import class_stats, drift_slope, error_stats, per_step_error


def test_error_stats_known_values():
    ref = np.array([1.0, -2.0, 2.0])
    got = np.array([1.0, -2.0, 3.0])
    s = error_stats(got, ref)
    assert s.max_abs == 1.0
    assert s.mae == pytest.approx(1 / 3)
    assert s.rmse == pytest.approx(np.sqrt(1 / 3))
    assert s.l2r == pytest.approx(1 / 3)
    assert s.cosine == pytest.approx((1 + 4 + 6) / (3 * np.sqrt(14)))


def test_error_stats_identical_is_zero():
    x = np.random.default_rng(0).standard_normal((4, 5))
    s = error_stats(x, x)
    assert (s.rmse, s.mae, s.max_abs, s.l2r) == (0.0, 0.0, 0.0, 0.0)
    assert s.cosine == pytest.approx(1.0)


def test_class_stats():
    ref = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]])
    got = np.array([[0.8, 0.2], [0.6, 0.4], [0.7, 0.3]])
    s = class_stats(got, ref, labels=np.array([0, 1, 1]))
    assert s.top1_agreement == pytest.approx(2 / 3)
    assert s.accuracy_ref == pytest.approx(2 / 3)
    assert s.accuracy_got == pytest.approx(1 / 3)


def test_drift():
    ref = np.zeros((2, 10, 3))
    got = ref + (np.arange(10) * 0.01)[None, :, None]
    e = per_step_error(got, ref, time_axis=1)
    assert e.shape == (10,)
    assert drift_slope(e) == pytest.approx(0.01)
    assert drift_slope(np.full(10, 0.3)) == pytest.approx(0.0)
