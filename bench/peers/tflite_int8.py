"""TFLite full-integer int8 of the Keras twin, run by TFLite Micro and by LiteRT.

    .venv-peers/bin/python bench/peers/tflite_int8.py MODEL.onnx CALIB.npz TEST.npz

- :func:`convert`: ``TFLiteConverter.from_keras_model`` on the batch-1 twin with a dynamic
  time axis, ``optimizations=[DEFAULT]``, ``supported_ops=[TFLITE_BUILTINS_INT8]``, int8 input
  and output, representative dataset = the calibration sequences (unpadded, one per sample).
  Result: ``UNIDIRECTIONAL_SEQUENCE_LSTM`` (+ ``STRIDED_SLICE`` + ``FULLY_CONNECTED``).
- :class:`LiteRtRunner`: ``ai_edge_litert`` interpreter, one thread, input resized to each
  sequence's length, ``reset_all_variables()`` before every sequence.
- :class:`TflmRunner`: TFLite Micro's own kernels (``tflite_micro`` Python interpreter). TFLM
  cannot resize, so the flatbuffer's dynamic tensor shapes (``shape_signature`` -1) are set to
  each sequence length in a copy (same weights and quantization), one interpreter per length;
  ``reset()`` before every sequence.

Both runtimes keep the LSTM state in variable tensors between invocations: without the reset
every sequence starts from the previous one's final state and the results are silently wrong.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402  (sets TF_USE_LEGACY_KERAS before TensorFlow)


@dataclass(frozen=True)
class Converted:
    flatbuffer: bytes
    ops: tuple[str, ...]  # builtin operator names, in execution order
    seconds: float  # conversion wall time
    calib_sequences: int


def convert(twin: Any, calib_seqs: list[np.ndarray]) -> Converted:
    """Full-integer int8 conversion of a batch-1 tf_keras twin."""
    import tensorflow as tf

    def representative() -> Iterator[list[np.ndarray]]:
        for x in calib_seqs:
            yield [x]

    conv = tf.lite.TFLiteConverter.from_keras_model(twin)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = representative
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = tf.int8
    conv.inference_output_type = tf.int8
    t0 = time.perf_counter()
    fb = conv.convert()
    seconds = time.perf_counter() - t0
    return Converted(bytes(fb), op_names(bytes(fb)), seconds, len(calib_seqs))


def op_names(flatbuffer: bytes) -> tuple[str, ...]:
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_content=flatbuffer)
    return tuple(op["op_name"] for op in it._get_ops_details())


def with_length(flatbuffer: bytes, length: int) -> bytes:
    """A copy of the flatbuffer with every dynamic (-1) dimension set to ``length``."""
    from tensorflow.lite.tools import flatbuffer_utils as fu

    model = fu.convert_bytearray_to_object(bytearray(flatbuffer))
    for sg in model.subgraphs:
        for t in sg.tensors:
            sig = t.shapeSignature
            if sig is not None and -1 in list(sig):
                t.shape = np.array([length if s == -1 else s for s in sig], dtype=np.int32)
    return bytes(fu.convert_object_to_bytearray(model))


class _Int8Io:
    """Quantize the float input, dequantize the int8 output (per-tensor scale, zero point)."""

    def __init__(self, in_q: tuple[float, int], out_q: tuple[float, int]):
        self.in_scale, self.in_zp = float(in_q[0]), int(in_q[1])
        self.out_scale, self.out_zp = float(out_q[0]), int(out_q[1])

    def quantize(self, x: np.ndarray) -> np.ndarray:
        return np.clip(np.round(x / self.in_scale) + self.in_zp, -128, 127).astype(np.int8)

    def dequantize(self, q: np.ndarray) -> np.ndarray:
        return ((q.astype(np.float32) - self.out_zp) * self.out_scale).astype(np.float32)


class LiteRtRunner:
    """``ai_edge_litert`` (desktop TFLite kernels) on one sequence (1, L, F) at a time."""

    def __init__(self, flatbuffer: bytes, reset: bool = True):
        from ai_edge_litert.interpreter import Interpreter

        self.it = Interpreter(model_content=flatbuffer, num_threads=1)
        self.inp = self.it.get_input_details()[0]
        self.out = self.it.get_output_details()[0]
        self.io = _Int8Io(self.inp["quantization"], self.out["quantization"])
        self.length = -1
        self.reset = reset

    def __call__(self, x: np.ndarray) -> np.ndarray:
        if x.shape[1] != self.length:
            self.it.resize_tensor_input(self.inp["index"], x.shape)
            self.it.allocate_tensors()
            self.length = x.shape[1]
        if self.reset:
            self.it.reset_all_variables()
        self.it.set_tensor(self.inp["index"], self.io.quantize(x))
        self.it.invoke()
        return self.io.dequantize(self.it.get_tensor(self.out["index"]))


class TflmRunner:
    """TFLite Micro's interpreter and kernels on one sequence (1, L, F) at a time."""

    def __init__(self, flatbuffer: bytes, reset: bool = True):
        self.flatbuffer = flatbuffer
        self.by_length: dict[int, Any] = {}
        self.reset = reset
        first = self._interpreter(1)
        iq = first.get_input_details(0)["quantization_parameters"]
        oq = first.get_output_details(0)["quantization_parameters"]
        self.io = _Int8Io((iq["scales"][0], iq["zero_points"][0]), (oq["scales"][0], oq["zero_points"][0]))

    def _interpreter(self, length: int) -> Any:
        if length not in self.by_length:
            from tflite_micro.python.tflite_micro import runtime

            fb = with_length(self.flatbuffer, length)
            self.by_length[length] = runtime.Interpreter.from_bytes(fb, arena_size=max(1 << 16, 16 * len(fb)))
        return self.by_length[length]

    def __call__(self, x: np.ndarray) -> np.ndarray:
        it = self._interpreter(x.shape[1])
        if self.reset:
            it.reset()
        it.set_input(self.io.quantize(x), 0)
        it.invoke()
        return self.io.dequantize(it.get_output(0))


def main(argv: list[str] | None = None) -> int:
    from keras_twin import build_twin

    import tinylstm
    from tinylstm.data.taskfiles import load_task_file

    ap = argparse.ArgumentParser(description="TFLite int8 of an ONNX LSTM, run by TFLM and LiteRT.")
    ap.add_argument("onnx", type=Path)
    ap.add_argument("calib", type=Path)
    ap.add_argument("test", type=Path)
    ap.add_argument("--limit", type=int, default=None, help="first N test sequences only")
    args = ap.parse_args(argv)
    twin = build_twin(tinylstm.load_onnx(args.onnx))
    conv = convert(twin, common.sequences(load_task_file(args.calib)))
    print(f"flatbuffer {len(conv.flatbuffer)} bytes, ops {', '.join(conv.ops)}, converted in {conv.seconds:.1f} s")
    test = load_task_file(args.test)
    for label, runner in (("LiteRT", LiteRtRunner(conv.flatbuffer)), ("TFLM", TflmRunner(conv.flatbuffer))):
        pred = common.run_by_sequence(runner, test, args.limit)
        s = common.score(pred, test)
        lat = common.time_per_sequence(runner, common.sequences(test)[:50])
        print(f"{label}: {'' if s is None else f'{s[0]}/{s[1]} wrong, '}{lat * 1e6:.0f} us/sequence")
    return 0


if __name__ == "__main__":
    sys.exit(main())
