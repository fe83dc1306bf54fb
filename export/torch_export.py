"""PyTorch ``nn.Module`` with ``nn.LSTM`` / ``nn.GRU`` layers -> a checked ONNX file tinylstm can import.

One public function, :func:`from_torch`. It wraps ``torch.onnx.export`` (legacy TorchScript
path, opset 17, or the dynamo path, opset 18 with an external ``<name>.onnx.data`` file) and
works around the exporters' known traps in torch 2.13 (see docs/exporters.md):

- the dynamo path freezes the time axis on every export after the first in a process unless
  the dispatch caches of ``torch.ops.aten.lstm.input`` and ``aten.gru.input`` are cleared
  first, and on the first
  dynamic-length export after a fixed-length one unless ``torch._dynamo.reset()`` runs:
  both are done before each dynamo export;
- the dynamo path with ``batch_first=False`` bakes the example length into a ``Reshape``
  (upstream pytorch#191855); other exporter slips may freeze an axis too: the exported file
  is run with onnxruntime at the example shape *and* at a different length and batch size,
  and any mismatch with torch raises :class:`ExportError` naming the axis;
- ``proj_size > 0`` has no ONNX equivalent: refused up front;
- torch exports layers tinylstm does not implement (``Conv1d``, ``out.mean(dim=1)``...)
  without complaint: the file is loaded with :func:`tinylstm.load_onnx` before it is kept,
  and the importer's :class:`UnsupportedModelError` (naming the node) is raised instead.

torch is imported lazily, so ``tinylstm.export`` imports without it. The files are written
to a temporary folder beside ``path`` and renamed into place only after every check passes;
a file already at ``path`` stays as it was when a check fails.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tinylstm.errors import DataError, OutputPathError, TinyLstmError, UnsupportedModelError

from .checks import (
    ExportError,
    MissingDependencyError,
    check_destination,
    check_import,
    compare_outputs,
    move_into_place,
    one_line,
    ort_session,
    quiet,
)

if TYPE_CHECKING:  # pragma: no cover
    import torch

__all__ = ["ExportError", "MissingDependencyError", "from_torch"]

LEGACY_OPSET = 17
DYNAMO_OPSET = 18
INPUT_NAME = "input"
#: Node/value metadata keys the dynamo exporter writes for debugging (source paths, FX dumps).
_DEBUG_METADATA_PREFIXES = ("pkg.torch.", "namespace")


def from_torch(
    model: torch.nn.Module,
    example_input: torch.Tensor,
    path: str | os.PathLike[str],
    *,
    dynamo: bool = False,
    opset: int | None = None,
    batch_first: bool | None = None,
    dynamic_time: bool = True,
    check: bool = True,
    atol: float = 1e-5,
    keep_debug_metadata: bool = False,
) -> Path:
    """Export ``model`` to ONNX at ``path`` and check the file against torch.

    ``example_input`` is one 3-D float tensor ``(batch, time, features)`` when
    ``batch_first`` else ``(time, batch, features)``; ``batch_first=None`` takes the layout
    of the model's ``nn.LSTM`` / ``nn.GRU`` layers. The batch axis is always dynamic, the time axis when
    ``dynamic_time``. An example with batch 1 (or length 1) is repeated to 2 for the export,
    because exporters freeze size-1 axes.

    ``dynamo=False``: legacy exporter, opset 17, one file. ``dynamo=True``: opset 18, the
    weights in ``<name>.onnx.data`` beside the model. ``opset`` overrides the default.

    The file is always loaded with :func:`tinylstm.load_onnx`: a model tinylstm cannot
    import raises the importer's :class:`UnsupportedModelError` (its ``node`` and ``field``
    kept) and nothing is written.

    With ``check`` the file is also run by onnxruntime at the example shape, at another
    sequence length and at another batch size, and each output ``y`` must satisfy
    ``max|y_torch - y_ort| <= atol * max(1, max|y_torch|)`` (absolute for outputs within
    [-1, 1], relative to the largest magnitude above: float32 rounding grows with it).
    Debug metadata of the dynamo exporter (absolute source paths, FX node dumps) is removed
    unless ``keep_debug_metadata``.

    Returns the path of the ``.onnx`` file. Raises :class:`UnsupportedModelError`
    (``proj_size``, ``nn.RNN`` layers, no LSTM or GRU, a layer or op tinylstm cannot
    import), :class:`DataError` (example input),
    :class:`OutputPathError`, :class:`ExportError` (export or check failed) and
    :class:`MissingDependencyError` (no torch / onnxscript). Nothing is written on failure.
    """
    torch = _import_torch()
    if not isinstance(model, torch.nn.Module):
        raise UnsupportedModelError(
            f"expected a torch.nn.Module, got {type(model).__name__}", field="model"
        )
    layout_bf = _check_recurrent_layers(torch, model, batch_first)
    if batch_first is None:
        batch_first = layout_bf
    x = _check_example(torch, example_input, batch_first, dynamic_time)
    dest = check_destination(Path(path))
    opset = opset if opset is not None else (DYNAMO_OPSET if dynamo else LEGACY_OPSET)
    b_axis, t_axis = (0, 1) if batch_first else (1, 0)

    with _eval_mode(model), torch.no_grad():
        try:
            y = model(x)
        except Exception as e:
            raise DataError(
                f"the model cannot run on example_input of shape {tuple(x.shape)}: "
                f"{type(e).__name__}: {one_line(e)}"
            ) from e
        n_outputs = len(_flatten_outputs(torch, y))
        out_names = ["output"] if n_outputs == 1 else [f"output{k}" for k in range(n_outputs)]
        try:
            tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".tmp",
                                        dir=dest.parent))
        except OSError as e:
            raise OutputPathError(f"{dest.parent}: cannot write ({e.strerror})") from None
        try:
            tmp_model = tmp / dest.name
            shown = (tmp_model, dest)  # error texts name dest, not the temporary file
            label = _exporter_label(dynamo, opset)
            export = _export_dynamo if dynamo else _export_legacy
            try:
                export(torch, model, x, tmp_model, opset, out_names, b_axis, t_axis,
                       dynamic_time)
            except TinyLstmError:
                raise
            except Exception as e:
                raise ExportError(f"torch.onnx.export ({label}) failed: "
                                  f"{type(e).__name__}: {one_line(e, shown)}") from e
            if not tmp_model.is_file():
                raise ExportError(f"torch.onnx.export wrote no file for {dest.name}")
            if not keep_debug_metadata:
                strip_debug_metadata(tmp_model, shown)
            check_import(tmp_model, label, shown)
            if check:
                _check_export(torch, model, x, tmp_model, b_axis, t_axis, dynamic_time, atol,
                              label, batch_first, shown)
            move_into_place(tmp, tmp_model, dest)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return dest


# --------------------------------------------------------------------------------------
# Checks before exporting
# --------------------------------------------------------------------------------------
def _import_torch() -> Any:
    try:
        import torch
    except ImportError:
        raise MissingDependencyError(
            "from_torch needs PyTorch, which is not installed: "
            "pip install 'tinylstm[torch]' (torch>=2.1, CPU wheel is enough)"
        ) from None
    return torch


def _check_recurrent_layers(torch: Any, model: Any, batch_first: bool | None) -> bool:
    """Refuse what ONNX's LSTM and GRU cannot express; return the LSTMs' and GRUs' common
    ``batch_first`` (or the given one: then the layers may disagree, the model transposes
    itself)."""
    lstms = []
    for name, m in model.named_modules():
        if isinstance(m, torch.nn.LSTM):
            if m.proj_size > 0:
                raise UnsupportedModelError(
                    f"proj_size={m.proj_size}: ONNX's LSTM has no output projection, so this "
                    "layer cannot be exported faithfully; use proj_size=0 (or an nn.Linear "
                    "after the LSTM)",
                    node=name or "<model>",
                    field="proj_size",
                )
            lstms.append((name, m))
        elif isinstance(m, torch.nn.GRU):
            lstms.append((name, m))
        elif isinstance(m, torch.nn.RNNBase):
            raise UnsupportedModelError(
                f"{type(m).__name__} layers are not supported; tinylstm handles nn.LSTM and nn.GRU",
                node=name or "<model>",
                field="layer type",
            )
    if not lstms:
        raise UnsupportedModelError(
            "the model has no nn.LSTM or nn.GRU layer; tinylstm exports and imports LSTM and GRU "
            "models",
            field="model",
        )
    if batch_first is not None:
        return batch_first
    layouts = {bool(m.batch_first) for _, m in lstms}
    if len(layouts) > 1:
        raise UnsupportedModelError(
            "the nn.LSTM / nn.GRU layers disagree on batch_first "
            f"({', '.join(f'{n}={m.batch_first}' for n, m in lstms)}); pass batch_first= "
            "to say how the model's input is laid out",
            field="batch_first",
        )
    return layouts.pop()


def _check_example(torch: Any, x: Any, batch_first: bool, dynamic_time: bool) -> Any:
    layout = "(batch, time, features)" if batch_first else "(time, batch, features)"
    if not isinstance(x, torch.Tensor):
        raise DataError(f"example_input must be one torch.Tensor {layout}, got {type(x).__name__}")
    if x.dim() != 3 or not x.is_floating_point():
        raise DataError(
            f"example_input must be a 3-D float tensor {layout}, got shape {tuple(x.shape)} "
            f"of {x.dtype}"
        )
    if x.numel() == 0:
        raise DataError(f"example_input is empty: shape {tuple(x.shape)}")
    x = x.detach()
    b_axis, t_axis = (0, 1) if batch_first else (1, 0)
    # exporters freeze an axis of size 1; a copy of the example gives them size 2
    if x.shape[b_axis] == 1:
        x = torch.cat([x, x], dim=b_axis)
    if dynamic_time and x.shape[t_axis] == 1:
        x = torch.cat([x, x], dim=t_axis)
    return x


@contextlib.contextmanager
def _eval_mode(model: Any) -> Iterator[None]:
    training = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(training)


def _flatten_outputs(torch: Any, out: Any) -> list[Any]:
    if isinstance(out, torch.Tensor):
        return [out]
    if isinstance(out, (tuple, list)):
        return [t for o in out for t in _flatten_outputs(torch, o)]
    raise UnsupportedModelError(
        f"forward() returns {type(out).__name__}; expected a tensor or (nested) tuple of tensors",
        field="model output",
    )


def _exporter_label(dynamo: bool, opset: int) -> str:
    return f"{'dynamo' if dynamo else 'legacy'} exporter, opset {opset}"


# --------------------------------------------------------------------------------------
# The two exporters
# --------------------------------------------------------------------------------------
def _export_legacy(torch: Any, model: Any, x: Any, out: Path, opset: int,
                   out_names: list[str], b_axis: int, t_axis: int, dynamic_time: bool) -> None:
    axes = {b_axis: "batch"}
    if dynamic_time:
        axes[t_axis] = "time"
    with quiet("torch.onnx"):
        torch.onnx.export(
            model, (x,), str(out), dynamo=False, opset_version=opset,
            input_names=[INPUT_NAME], output_names=out_names,
            dynamic_axes={INPUT_NAME: dict(sorted(axes.items()))},
            do_constant_folding=True,
        )


def _export_dynamo(torch: Any, model: Any, x: Any, out: Path, opset: int,
                   out_names: list[str], b_axis: int, t_axis: int, dynamic_time: bool) -> None:
    try:
        import onnxscript  # noqa: F401  (the dynamo exporter needs it)
    except ImportError:
        raise MissingDependencyError(
            "the dynamo exporter needs onnxscript, which is not installed: pip install onnxscript"
        ) from None
    dims = {b_axis: torch.export.Dim("batch")}
    if dynamic_time:
        dims[t_axis] = torch.export.Dim("time")
    reset_export_caches(torch)
    with quiet("torch.onnx"):
        torch.onnx.export(
            model, (x,), str(out), dynamo=True, opset_version=opset,
            input_names=[INPUT_NAME], output_names=out_names,
            dynamic_shapes=(dict(sorted(dims.items())),),
            external_data=True, verbose=False,
        )


def reset_export_caches(torch: Any) -> None:
    """torch 2.13 keeps caches across exports that freeze the time axis of the next dynamo
    export to its example length: the dispatch caches of ``aten.lstm.input`` and
    ``aten.gru.input`` (keep the unrolled decomposition instead of the exporter's while_loop
    one; bite every export after the first of that layer type) and dynamo's frame cache of
    the while_loop it traces (bites the first dynamic-time export after a fixed-time one at
    the same length). All are cleared; the cost is that functions compiled with
    ``torch.compile`` in this process recompile."""
    for packet in (torch.ops.aten.lstm, torch.ops.aten.gru):
        cache = getattr(packet.input, "_dispatch_cache", None)
        if cache is not None:
            cache.clear()
    torch._dynamo.reset()


def strip_debug_metadata(path: Path, shown: tuple[Path, Path]) -> None:
    """Drop the dynamo exporter's per-node debug metadata (stack traces with absolute paths
    of this machine, FX dumps). Semantics are untouched; external data stays where it is."""
    import onnx

    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as e:
        raise ExportError(f"onnx cannot read the file torch.onnx.export wrote: "
                          f"{type(e).__name__}: {one_line(e, shown)}") from e
    changed = False

    def strip(holder: Any) -> None:
        nonlocal changed
        keep = [p for p in holder.metadata_props
                if not p.key.startswith(_DEBUG_METADATA_PREFIXES)]
        if len(keep) != len(holder.metadata_props):
            del holder.metadata_props[:]
            holder.metadata_props.extend(keep)
            changed = True

    g = model.graph
    for group in (g.node, g.input, g.output, g.value_info, g.initializer):
        for item in group:
            strip(item)
    strip(g)
    strip(model)
    if changed:
        onnx.save(model, str(path))


# --------------------------------------------------------------------------------------
# The checks: tinylstm's importer, then onnxruntime against torch
# --------------------------------------------------------------------------------------
def _check_export(torch: Any, model: Any, x: Any, onnx_path: Path, b_axis: int, t_axis: int,
                  dynamic_time: bool, atol: float, exporter: str, batch_first: bool,
                  shown: tuple[Path, Path]) -> None:
    sess = ort_session(onnx_path, f"the {exporter}", shown)
    feed_name = sess.get_inputs()[0].name
    hint = _hint(exporter, batch_first, sum(isinstance(m, torch.nn.RNNBase) for m in model.modules()))
    batch, time = int(x.shape[b_axis]), int(x.shape[t_axis])
    other_t = time + max(2, time // 2) if dynamic_time else time
    cases = [("the example shape", x)]
    if dynamic_time:
        cases.append((f"sequence length {other_t} (example: {time})",
                      _like(torch, x, b_axis, t_axis, batch, other_t, seed=1)))
    cases.append((f"batch size {batch + 1} and sequence length {other_t} (example: {batch}, "
                  f"{time})",
                   _like(torch, x, b_axis, t_axis, batch + 1, other_t, seed=2)))
    for what, xc in cases:
        want = [t.detach().cpu().numpy() for t in _flatten_outputs(torch, model(xc))]
        try:
            got = sess.run(None, {feed_name: xc.cpu().numpy()})
        except Exception as e:
            raise ExportError(
                f"the {exporter} wrote a model that onnxruntime cannot run at {what}: "
                f"{one_line(e, shown)}{hint}"
            ) from e
        compare_outputs(want, got, what, atol, exporter, "torch", hint)


def _like(torch: Any, x: Any, b_axis: int, t_axis: int, batch: int, time: int, seed: int) -> Any:
    """A seeded input of another shape with the example's per-feature mean and spread."""
    g = torch.Generator().manual_seed(seed)
    shape = [0, 0, x.shape[2]]
    shape[b_axis], shape[t_axis] = batch, time
    xf = x.reshape(-1, x.shape[2]).to(torch.float64)
    mean = xf.mean(0)
    std = xf.std(0, unbiased=False) if xf.shape[0] > 1 else torch.ones_like(mean)
    std = torch.where(std > 0, std, torch.ones_like(std))
    z = torch.randn(shape, generator=g, dtype=torch.float64)
    return (z * std + mean).to(dtype=x.dtype, device=x.device)


def _hint(exporter: str, batch_first: bool, rnn_modules: int) -> str:
    if exporter.startswith("dynamo") and not batch_first:
        return (
            "; the dynamo exporter of torch 2.13 bakes the example length into a Reshape "
            "when batch_first=False (pytorch#191855): use dynamo=False, a batch_first=True "
            "model, or dynamic_time=False"
        )
    if exporter.startswith("dynamo") and rnn_modules > 1:
        return (
            "; the dynamo exporter of torch 2.13 bakes the example length into the Reshape "
            "between two recurrent modules (nn.LSTM / nn.GRU) called one after the other: use "
            "dynamo=False, one module with num_layers, or dynamic_time=False"
        )
    return ""
