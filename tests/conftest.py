"""Shared test setup: quiet onnxruntime, and make ``tests/`` helpers importable."""

from __future__ import annotations

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))


@pytest.fixture(autouse=True, scope="session")
def _quiet_onnxruntime() -> None:
    try:
        import onnxruntime as ort
    except ImportError:  # pragma: no cover - onnxruntime is a dependency
        return
    ort.set_default_logger_severity(3)
