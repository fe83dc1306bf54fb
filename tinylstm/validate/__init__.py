"""The validate stage: onnxruntime float (:mod:`.oracle`) vs the integer simulator vs the compiled
C (:mod:`.validation`), error and accuracy metrics (:mod:`.metrics`) and the footprint report of
``tinylstm analyze`` (:mod:`.analyze`)."""

from __future__ import annotations

from .validation import CResult, ValidationReport, check_same_model, plot_step_error, validate

__all__ = ["CResult", "ValidationReport", "check_same_model", "plot_step_error", "validate"]
