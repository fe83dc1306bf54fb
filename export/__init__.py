"""Exporters from training frameworks to ONNX files tinylstm imports (``tinylstm.export``).

Importing this package needs neither torch nor any other framework; each exporter imports
its framework when called.
"""

from __future__ import annotations

from .keras_export import from_keras
from .torch_export import ExportError, MissingDependencyError, from_torch

__all__ = ["ExportError", "MissingDependencyError", "from_keras", "from_torch"]
