"""Extract the JapaneseVowels train/test split into tinylstm/data/japanese_vowels.npz.

Run with a Python that has ``aeon`` installed (a throwaway venv is enough; tinylstm itself
never needs aeon):

    python3 -m venv /tmp/aeonvenv && /tmp/aeonvenv/bin/pip install aeon
    /tmp/aeonvenv/bin/python scripts/extract_japanese_vowels.py

aeon ships the UEA archive's ``JapaneseVowels_TRAIN.ts``/``_TEST.ts`` (270 + 370 utterances,
12 LPC cepstrum channels, 7-29 frames, 9 speakers) inside its wheel; no download happens.
Output arrays (compressed): ``x_<split>`` (n, 29, 12) float32, zero past ``lengths_<split>``;
``lengths_<split>`` (n,) int16; ``labels_<split>`` (n,) int8, speaker 1..9 stored as 0..8.
See docs/data.md for the citation.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

MAX_LENGTH = 29
CHANNELS = 12


def extract(split: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    from aeon.datasets import load_japanese_vowels

    series, labels = load_japanese_vowels(split=split)
    n = len(series)
    x = np.zeros((n, MAX_LENGTH, CHANNELS), dtype=np.float32)
    lengths = np.zeros(n, dtype=np.int16)
    for i, s in enumerate(series):  # each s is (channels, length)
        s = np.asarray(s, dtype=np.float64)
        if s.shape[0] != CHANNELS or not 1 <= s.shape[1] <= MAX_LENGTH:
            raise SystemExit(f"unexpected series shape {s.shape} in the {split} split")
        x[i, : s.shape[1]] = s.T
        lengths[i] = s.shape[1]
    y = np.array([int(v) for v in labels], dtype=np.int64) - 1
    if y.min() != 0 or y.max() != 8:
        raise SystemExit(f"unexpected labels {sorted(set(labels))}")
    return x, lengths, y.astype(np.int8)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = Path(__file__).resolve().parents[1] / "tinylstm" / "data" / "japanese_vowels.npz"
    parser.add_argument("--out", type=Path, default=default)
    args = parser.parse_args()
    arrays = {}
    for split in ("train", "test"):
        x, lengths, labels = extract(split)
        arrays |= {f"x_{split}": x, f"lengths_{split}": lengths, f"labels_{split}": labels}
        print(f"{split}: {x.shape[0]} sequences, lengths {lengths.min()}-{lengths.max()}, "
              f"class counts {np.bincount(labels).tolist()}")
    np.savez_compressed(args.out, **arrays)
    print(f"wrote {args.out} ({args.out.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
