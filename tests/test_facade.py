"""The public facade (tinylstm/__init__): the API the README shows keeps working while the stages
move, and no stage is shadowed by a function of the same name."""

from __future__ import annotations

import inspect
import pkgutil
import subprocess
import sys
import types
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
from onnx_builders import HeadSpec, LstmSpec, random_input, stacked_model

import tinylstm

ROOT = Path(__file__).resolve().parents[1]


def _stages() -> list[str]:
    names = {m.name for m in pkgutil.iter_modules(tinylstm.__path__) if m.name not in ("__main__",)}
    return sorted(names | {"codegen", "export"})


def test_every_stage_is_a_module_after_a_plain_import():
    names = _stages()
    assert {"ir", "onnx_import", "data", "quantize", "qmodel", "simulate", "cbuild", "validate", "pipeline",
            "cli", "codegen", "export"} <= set(names)
    code = f"""
import importlib, sys, types
import tinylstm
bad = []
for name in {names!r}:
    lazy = getattr(tinylstm, name)  # a plain `import tinylstm` reaches every stage
    mod = importlib.import_module("tinylstm." + name)
    exec("import tinylstm.%s as alias" % name, globals())
    if not (lazy is mod is alias is sys.modules["tinylstm." + name]) or not isinstance(mod, types.ModuleType):
        bad.append(name)
print(bad)
"""
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]"


def test_quantize_stage_is_callable_and_calibrate_is_a_function():
    m = stacked_model([LstmSpec(input_size=3, hidden_size=4)], head=HeadSpec("last_gemm", 2))
    fm = tinylstm.load_onnx(m)
    x = random_input(m, 3, 6, seed=2)
    import tinylstm.quantize.calibration as cmod
    import tinylstm.quantize.quantizer as qmod
    from tinylstm.quantize import quantize

    assert isinstance(tinylstm.quantize, types.ModuleType) and qmod.quantize is quantize
    assert tinylstm.quantize.calibration is cmod and tinylstm.calibrate is cmod.calibrate
    documented = tinylstm.quantize(fm, [x])  # README: tinylstm.quantize(float_model, calib)
    direct = qmod.quantize(fm, [x])
    xq = documented.quantize_input(x)
    assert np.array_equal(documented.run_int(xq), direct.run_int(xq))
    via_calib = tinylstm.quantize(fm, tinylstm.calibrate(fm, [x]))
    assert np.array_equal(via_calib.run_int(xq), direct.run_int(xq))
    assert list(inspect.signature(tinylstm.quantize).parameters)[:2] == ["float_model", "calib"]
    assert isinstance(tinylstm.validate, types.ModuleType)
    assert tinylstm.validate.validate is tinylstm.validate.validation.validate  # README: tinylstm.validate.validate
    with pytest.raises(AttributeError, match="no_such_thing"):
        tinylstm.no_such_thing  # noqa: B018


def test_dotted_patch_targets_reach_the_module():
    import tinylstm.quantize.lstm as qmod

    before = qmod.INT32_MAX
    with mock.patch("tinylstm.quantize.lstm.INT32_MAX", 7):
        assert qmod.INT32_MAX == 7
    assert qmod.INT32_MAX == before


def test_readme_python_api_names_exist():
    """Every name the README's Python API section uses resolves."""
    from tinylstm.qmodel import QuantizedModel
    from tinylstm.quantize import quantize

    for obj in (tinylstm.load_onnx, tinylstm.FloatModel.run, quantize, QuantizedModel.run, QuantizedModel.run_int,
                QuantizedModel.quantize_input, QuantizedModel.save, QuantizedModel.load, tinylstm.generate_c,
                tinylstm.codegen.generate_c, tinylstm.validate.validate, tinylstm.export.from_torch):
        assert callable(obj)
    assert tinylstm.qmodel.QuantizedModel is tinylstm.QuantizedModel
