"""The 1997 LSTM paper's long-lag tasks, scored on float, the int8 simulator and compiled C.

    .venv/bin/python examples/paper_tasks.py [--tasks adding_T100,adding_T400,temporal_order_6a]
                                             [--limit N] [--target cortex-m4]

For each shipped model (``examples/models/<task>.onnx``, trained by scripts/train_models.py):
quantize on its calibration set, then run the shipped test set (2560 sequences, the paper's size)
through onnxruntime (float), the bit-exact numpy simulator (int8) and the generated C compiled with
gcc on the host (and, with ``--target``, cross-compiled and run under QEMU). Scores use the
paper's criteria (Hochreiter & Schmidhuber 1997): adding, correct when ``|output - target| < 0.04``;
temporal order, arg-max of the 4 outputs (logits; the paper's rule, every
``|output - target| < 0.3``, applied to their softmax is also printed). Every C output must equal
the simulator's, bit for bit.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import tinylstm  # noqa: E402
from tinylstm.data import tasks  # noqa: E402
from tinylstm.data.taskfiles import load_task_file  # noqa: E402
from tinylstm.data.tasks import TaskData, TaskScore  # noqa: E402
from tinylstm.qmodel import QuantizedModel  # noqa: E402
from tinylstm.validate.analyze import analyze  # noqa: E402

MODELS = ROOT / "examples" / "models"
TASKS = ("adding_T100", "adding_T400", "temporal_order_6a")
CRITERIA = {
    "adding": "|err| < 0.04",
    "japanese_vowels": "argmax = speaker",
    "temporal_order_6a": "argmax (paper: all |softmax - one-hot| < 0.3)",
}


@dataclass(frozen=True)
class CScore:
    name: str  # e.g. "host gcc -O2", "cortex-m4 -Os"
    score: TaskScore  # the C's outputs scored like the others
    mismatched_sequences: int  # sequences whose int8 output differs from the simulator's
    seconds: float


@dataclass(frozen=True)
class TaskResult:
    task: str  # model name, e.g. "adding_T100"
    criterion: str
    n: int  # test sequences
    float_score: TaskScore  # onnxruntime on the ONNX file
    int8_score: TaskScore  # the numpy simulator
    c: tuple[CScore, ...]  # compiled C builds
    threshold: tuple[int, int] | None  # temporal order: (float, int8) wrong by all |err| < 0.3
    parameters: int
    flash_bytes: int  # generated C's const data (32-bit target)
    ram_bytes: int  # sizeof the model state
    seconds: float


def _ort(path: Path) -> Callable[[np.ndarray], np.ndarray]:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    opts.intra_op_num_threads = 1
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    return lambda x: sess.run(None, {name: x.astype(np.float32)})[0]


def softmax(logits: np.ndarray) -> np.ndarray:
    """The shipped classifiers output logits; the paper's 0.3 rule reads probabilities."""
    z = np.exp(logits - logits.max(axis=1, keepdims=True))
    return z / z.sum(axis=1, keepdims=True)


def _score(pred: np.ndarray, data: TaskData) -> TaskScore:
    return tasks.score(pred, data)


def c_runners(qm: QuantizedModel, compilers: Sequence[str], targets: Sequence[str],
              workdir: Path | None) -> dict[str, Callable[[list[np.ndarray]], list[np.ndarray]]]:
    """Host runners per compiler and emulated-target runners per target spec (built here)."""
    from tinylstm.cbuild.host import host_runner

    runners = {f"host {cc} -O2": host_runner(qm, compiler=cc, workdir=workdir) for cc in compilers}
    if targets:
        from tinylstm.cbuild.emulated import target_runners

        runners.update(target_runners(qm, list(targets), workdir))
    return runners


def evaluate_task(
    name: str,
    *,
    limit: int | None = None,
    compilers: Sequence[str] = ("gcc",),
    targets: Sequence[str] = (),
    workdir: Path | None = None,
) -> TaskResult:
    """Quantize ``examples/models/<name>.onnx`` and score float / simulator / C on its test set
    (the first ``limit`` sequences when given). ``name``: one of :data:`TASKS` or
    ``japanese_vowels``."""
    t0 = time.perf_counter()
    onnx_path = MODELS / f"{name}.onnx"
    fm = tinylstm.load_onnx(onnx_path)
    calib = np.load(MODELS / f"{name}_calib.npz")
    cal_x, cal_len = calib["x"], calib["lengths"] if "lengths" in calib.files else None
    cal = [cal_x[i, : int(cal_len[i])] if cal_len is not None else cal_x[i] for i in range(cal_x.shape[0])]
    qm = tinylstm.quantize(fm, cal)
    data = load_task_file(MODELS / f"{name}_test.npz")
    if limit is not None:
        data = data.subset(np.arange(min(limit, data.n)))
    groups = list(tasks.length_groups(data.lengths))
    xs = [np.ascontiguousarray(data.x[idx, :length]) for length, idx in groups]

    def assemble(blocks: Sequence[np.ndarray]) -> np.ndarray:
        out = np.zeros((data.n, blocks[0].shape[-1]), np.float32)
        for (_, idx), b in zip(groups, blocks, strict=True):
            out[idx] = b
        return out

    run_float = _ort(onnx_path)
    y_float = assemble([run_float(x) for x in xs])
    x8 = [qm.quantize_input(x.astype(np.float32)) for x in xs]  # canonical (n, T, F), as the C runners take
    y8 = [qm.output_view.to_canonical(qm.run_int(qm.input_view.from_canonical(x))) for x in x8]
    y_int8 = assemble([qm.dequantize_output(y) for y in y8])
    cs = []
    for cname, runner in c_runners(qm, compilers, targets, workdir).items():
        t1 = time.perf_counter()
        yc = runner(x8)
        bad = sum(int(np.any(a != b, axis=1).sum()) for a, b in zip(yc, y8, strict=True))
        cs.append(CScore(cname, _score(assemble([qm.dequantize_output(y) for y in yc]), data), bad,
                         time.perf_counter() - t1))
    threshold = None
    if data.labels is not None and name.startswith("temporal_order"):
        threshold = (tasks.score_temporal_order(softmax(y_float), data, rule="threshold").wrong,
                     tasks.score_temporal_order(softmax(y_int8), data, rule="threshold").wrong)
    criterion = CRITERIA["adding" if name.startswith("adding") else name]
    an = analyze(qm)
    return TaskResult(name, criterion, data.n, _score(y_float, data), _score(y_int8, data), tuple(cs),
                      threshold, an["parameters"], an["generated"]["flash_bytes"],
                      an["generated"]["ram_bytes"], time.perf_counter() - t0)


def format_score(s: TaskScore, regression: bool) -> str:
    """``wrong/n wrong`` plus the mean |error| for regression tasks."""
    text = f"{s.wrong}/{s.n} wrong"
    return f"{text} (mean |err| {s.mean_abs_error:.4f})" if regression else text


def format_result(r: TaskResult) -> str:
    reg = r.task.startswith("adding")
    lines = [f"{r.task}: {r.n} test sequences, correct when {r.criterion}",
             f"  float (onnxruntime)  {format_score(r.float_score, reg)}",
             f"  int8 (simulator)     {format_score(r.int8_score, reg)}"]
    for c in r.c:
        lines.append(f"  C {c.name:<17} {format_score(c.score, reg)}; {c.mismatched_sequences} sequences "
                     f"differ from the simulator ({c.seconds:.1f} s)")
    if r.threshold is not None:
        lines.append(f"  paper's rule (all |softmax - one-hot| < 0.3): float {r.threshold[0]} wrong, "
                     f"int8 {r.threshold[1]} wrong")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tasks", default=",".join(TASKS), help=f"comma separated, from {', '.join(TASKS)}")
    ap.add_argument("--limit", type=int, default=None, help="only the first N test sequences")
    ap.add_argument("--target", default="", help="also run on emulated cores, e.g. cortex-m4")
    args = ap.parse_args(argv)
    names = [t.strip() for t in args.tasks.split(",") if t.strip()]
    for t in names:
        if t not in TASKS:
            ap.error(f"unknown task {t!r}; choose from {', '.join(TASKS)}")
    targets = [t.strip() for t in args.target.split(",") if t.strip()]
    mismatches = 0
    for t in names:
        r = evaluate_task(t, limit=args.limit, targets=targets)
        print(format_result(r), f"\n  ({r.seconds:.1f} s)", flush=True)
        mismatches += sum(c.mismatched_sequences for c in r.c)
    return 0 if mismatches == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
