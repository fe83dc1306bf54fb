"""Data: calibration and validation sets in one convention (:mod:`.dataset`), safe ``.npz``
reading (:mod:`.npzfile`), the paper's synthetic tasks (:mod:`.tasks`), task files and the
bundled JapaneseVowels set (:mod:`.taskfiles`, ``japanese_vowels.npz``)."""

from __future__ import annotations

from .dataset import DATA_KEYS, Dataset, check_not_quantized, load_dataset, to_model_layout
from .npzfile import MAX_ARRAY_BYTES, read_arrays
from .taskfiles import load_japanese_vowels, load_task_file

__all__ = ["DATA_KEYS", "MAX_ARRAY_BYTES", "Dataset", "check_not_quantized", "load_dataset", "load_japanese_vowels",
           "load_task_file", "read_arrays", "to_model_layout"]
