"""Hostile data files, integer models, output paths and prefixes through the pipeline CLI.

For every case the CLI (``tinylstm quantize / validate / analyze / generate / build``) must exit
2 with ONE line ``error: ...`` that names the culprit and holds no control character, print no
traceback, and write nothing: the output path does not exist afterwards if it did not before,
an existing output is byte-identical, and no temporary file is left in the output's folder.

The data corpus is ``tests/bad_inputs/data_corpus/`` (``make_data_corpus.py``); the ``.tlq``
cases are derived from a fresh quantization. Most cases call ``tinylstm.cli.main`` in-process;
a few run ``python -m tinylstm`` as a subprocess to prove the contract end to end.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import tempfile
import unicodedata
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "bad_inputs"))

import make_data_corpus as mdc  # noqa: E402

import tinylstm  # noqa: E402
from tinylstm.cli import main  # noqa: E402
from tinylstm.data.dataset import load_dataset  # noqa: E402
from tinylstm.errors import (  # noqa: E402
    DataError,
    ModelFormatError,
    OutputPathError,
    TinyLstmError,
    UnsupportedModelError,
)
from tinylstm.qmodel import QuantizedModel, check_model  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
MODELS = REPO / "examples" / "models"
JV = str(MODELS / "japanese_vowels.onnx")
JV_CALIB = str(MODELS / "japanese_vowels_calib.npz")
JV_TEST = str(MODELS / "japanese_vowels_test.npz")
CASES = list(mdc.CASES.values())


# --------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------
def unsafe_chars(text: str) -> list[str]:
    """Characters a terminal would interpret: C0/C1 controls, DEL, line/paragraph separators."""
    return sorted({repr(ch) for ch in text if unicodedata.category(ch) in ("Cc", "Zl", "Zp")})


def run_main(capsys, args: list[str]) -> tuple[int, str, str]:
    capsys.readouterr()
    try:
        rc = main(args)
    except SystemExit as e:  # argparse
        rc = int(e.code or 0)
    out, err = capsys.readouterr()
    return rc, out, err


def check_refused(rc: int, err: str, *culprits: str) -> str:
    """Exit 2, one clean ``error:`` line naming every culprit; returns the line."""
    assert "Traceback" not in err and "internal error" not in err, err
    assert rc == 2, f"exit {rc}: {err[:500]}"
    lines = err.splitlines()  # CR, U+2028, ... count as line breaks too
    assert len(lines) == 1, f"stderr is {len(lines)} lines: {err[:500]!r}"
    assert lines[0].startswith("error: "), lines[0]
    assert not unsafe_chars(lines[0]), lines[0]
    for c in culprits:
        assert c in lines[0], f"{c!r} not named in: {lines[0]}"
    return lines[0]


def snapshot(folder: Path) -> dict[str, bytes | None]:
    """Every path under ``folder`` (hidden temporary files too) with its bytes (None: folder)."""
    return {str(p.relative_to(folder)): None if p.is_dir() else p.read_bytes()
            for p in sorted(folder.rglob("*"))}


@pytest.fixture(scope="module")
def jv_tlq(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("tlq") / "jv.tlq"
    assert main(["quantize", JV, "--calib", JV_CALIB, "-o", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def tlq_corpus(jv_tlq: Path, tmp_path_factory) -> dict[str, tuple[Path, str]]:
    root = tmp_path_factory.mktemp("tlq_corpus")
    out = {}
    for name, (data, culprit) in mdc.tlq_cases(jv_tlq.read_bytes()).items():
        p = root / f"{name}.tlq"
        p.write_bytes(data)
        out[name] = (p, culprit)
    return out


@pytest.fixture(autouse=True, scope="module")
def no_unpickling():
    """The pickled payloads of the corpus would create PWNED if anything unpickled them."""
    Path(mdc.PWNED).unlink(missing_ok=True)
    yield
    assert not Path(mdc.PWNED).exists(), "a pickle of the corpus was executed"


# --------------------------------------------------------------------------------------
# the stored corpus
# --------------------------------------------------------------------------------------
def test_data_corpus_is_fresh_and_small() -> None:
    assert not mdc.check_corpus(), "stale: run python tests/bad_inputs/make_data_corpus.py"
    sizes = [c.path(mdc.CORPUS).stat().st_size for c in CASES]
    assert max(sizes) < 10_000 and sum(sizes) < 250_000


# --------------------------------------------------------------------------------------
# bad data: every case as calibration data and as validation data
# --------------------------------------------------------------------------------------
def _culprits(c: mdc.DataCase) -> tuple[str, ...]:
    return (c.path(mdc.CORPUS).name, c.culprit)


#: a -k keyword per category (docs/reliability.md): `pytest tests/test_bad_data.py -k sizes`
SLUGS = {
    "not a data file": "notdata", "pickled objects": "pickled", "x shape": "xshape",
    "x dtype": "xdtype", "x values": "xvalues", "lengths": "lens", "labels": "labs",
    "targets": "tgts", "declared sizes": "sizes", "task recipes": "recipes",
}
CASE_IDS = [pytest.param(c.name, id=f"{SLUGS[c.category]}-{c.name}") for c in CASES]


@pytest.mark.parametrize("name", CASE_IDS)
def test_bad_calibration_data(name: str, capsys, tmp_path: Path) -> None:
    c = mdc.CASES[name]
    out = tmp_path / "m.tlq"
    rc, stdout, err = run_main(capsys, ["quantize", JV, "--calib", str(c.path(mdc.CORPUS)), "-o", str(out)])
    check_refused(rc, err, *_culprits(c))
    assert stdout == "" and snapshot(tmp_path) == {}


@pytest.mark.parametrize("name", CASE_IDS)
def test_bad_validation_data(name: str, capsys, tmp_path: Path, jv_tlq: Path) -> None:
    c = mdc.CASES[name]
    report = tmp_path / "report.md"
    rc, stdout, err = run_main(capsys, ["validate", JV, "--qmodel", str(jv_tlq), "--data",
                                        str(c.path(mdc.CORPUS)), "--no-c", "--report", str(report)])
    check_refused(rc, err, *_culprits(c))
    assert stdout == "" and snapshot(tmp_path) == {}


@pytest.mark.parametrize("name", CASE_IDS)
def test_bad_data_api_raises_data_error(name: str) -> None:
    """The Python API: only DataError, with the file named, and nothing else."""
    c = mdc.CASES[name]
    fm = tinylstm.load_onnx(JV)
    with pytest.raises(DataError) as e:
        load_dataset(c.path(mdc.CORPUS), fm, what="data")
    assert c.path(mdc.CORPUS).name in str(e.value) and c.culprit in str(e.value)
    assert not unsafe_chars(str(e.value))


#: one case per category, through the other commands that read data
ONE_PER_CATEGORY = [pytest.param(c.name, id=f"{SLUGS[c.category]}-{c.name}")
                    for c in {c.category: c for c in CASES}.values()]


@pytest.mark.parametrize("name", ONE_PER_CATEGORY)
@pytest.mark.parametrize("how", ["build --calib", "build --data", "analyze --calib", "validate --calib"])
def test_bad_data_other_commands(name: str, how: str, capsys, tmp_path: Path) -> None:
    c = mdc.CASES[name]
    bad = str(c.path(mdc.CORPUS))
    lib = str(tmp_path / "lib")
    args = {
        "build --calib": ["build", JV, "--calib", bad, "-o", lib],
        "build --data": ["build", JV, "--calib", JV_CALIB, "--data", bad, "-o", lib, "--compilers", ""],
        "analyze --calib": ["analyze", JV, "--calib", bad],
        "validate --calib": ["validate", JV, "--calib", bad, "--data", JV_TEST, "--no-c"],
    }[how]
    rc, stdout, err = run_main(capsys, args)
    check_refused(rc, err, *_culprits(c))
    assert stdout == "" and snapshot(tmp_path) == {}


def test_bad_data_leaves_existing_outputs_identical(capsys, tmp_path: Path, jv_tlq: Path) -> None:
    """A refused run leaves an existing .tlq, report and library folder byte-identical."""
    tlq = tmp_path / "m.tlq"
    tlq.write_bytes(b"previous model")
    (tmp_path / "report.md").write_text("previous report")
    lib = tmp_path / "lib"
    lib.mkdir()
    (lib / "model.c").write_text("/* previous */")
    (lib / "notes.txt").write_text("mine")
    before = snapshot(tmp_path)
    bad = str(mdc.CASES["x_nan"].path(mdc.CORPUS))
    for args in (["quantize", JV, "--calib", bad, "-o", str(tlq)],
                 ["validate", JV, "--qmodel", str(jv_tlq), "--data", bad, "--no-c", "--report",
                  str(tmp_path / "report.md")],
                 ["build", JV, "--calib", bad, "-o", str(lib)],
                 ["build", JV, "--calib", JV_CALIB, "--data", bad, "-o", str(lib), "--compilers", ""]):
        check_refused(*run_main(capsys, args)[::2], "x_nan.npz")
        assert snapshot(tmp_path) == before


# --------------------------------------------------------------------------------------
# .tlq integer model files
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", mdc.TLQ_CASES)
@pytest.mark.parametrize("how", ["generate", "analyze", "validate"])
def test_bad_tlq(name: str, how: str, capsys, tmp_path: Path, tlq_corpus) -> None:
    path, culprit = tlq_corpus[name]
    out = tmp_path / "gen"
    args = {
        "generate": ["generate", str(path), "-o", str(out)],
        "analyze": ["analyze", str(path)],
        "validate": ["validate", JV, "--qmodel", str(path), "--data", JV_TEST, "--no-c"],
    }[how]
    rc, stdout, err = run_main(capsys, args)
    check_refused(rc, err, path.name, culprit)
    assert stdout == "" and snapshot(tmp_path) == {}


@pytest.mark.parametrize("name", mdc.TLQ_CASES)
def test_bad_tlq_api_raises_model_format_error(name: str, tlq_corpus) -> None:
    path, culprit = tlq_corpus[name]
    with pytest.raises(ModelFormatError) as e:
        QuantizedModel.load(path)
    assert path.name in str(e.value) and culprit in str(e.value)


def test_valid_models_pass_the_load_checks(jv_tlq: Path) -> None:
    """The .tlq checks refuse nothing the quantizer writes (here: the shipped example, both
    ways; tests/test_quantize.py and friends quantize many more)."""
    qm = QuantizedModel.load(jv_tlq)
    check_model(qm)
    check_model(tinylstm.quantize(tinylstm.load_onnx(JV), JV_CALIB))


# --------------------------------------------------------------------------------------
# output paths
# --------------------------------------------------------------------------------------
def _outputs(tmp_path: Path, jv_tlq: Path) -> dict[str, Callable[[str], list[str]]]:
    """Each command that writes, as a function of its output path."""
    return {
        "quantize": lambda o: ["quantize", JV, "--calib", JV_CALIB, "-o", o],
        "generate": lambda o: ["generate", str(jv_tlq), "-o", o],
        "build": lambda o: ["build", JV, "--calib", JV_CALIB, "-o", o, "--compilers", ""],
        "validate --report": lambda o: ["validate", JV, "--qmodel", str(jv_tlq), "--data", JV_TEST,
                                        "--no-c", "--report", o],
        "validate --plot": lambda o: ["validate", JV, "--qmodel", str(jv_tlq), "--data", JV_TEST,
                                      "--no-c", "--plot", o],
    }


FILE_OUTPUTS = ["quantize", "validate --report", "validate --plot"]
FOLDER_OUTPUTS = ["generate", "build"]


@pytest.mark.parametrize("cmd", FILE_OUTPUTS)
def test_file_output_is_an_existing_folder(cmd: str, capsys, tmp_path: Path, jv_tlq: Path) -> None:
    target = tmp_path / "out"
    target.mkdir()
    (target / "keep.txt").write_text("x")
    before = snapshot(tmp_path)
    check_refused(*run_main(capsys, _outputs(tmp_path, jv_tlq)[cmd](str(target)))[::2], str(target),
                  "is a folder")
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("cmd", FOLDER_OUTPUTS)
def test_folder_output_is_an_existing_file(cmd: str, capsys, tmp_path: Path, jv_tlq: Path) -> None:
    target = tmp_path / "out"
    target.write_text("a file")
    check_refused(*run_main(capsys, _outputs(tmp_path, jv_tlq)[cmd](str(target)))[::2], str(target),
                  "not a folder")
    assert snapshot(tmp_path) == {"out": b"a file"}


@pytest.mark.parametrize("cmd", FILE_OUTPUTS + FOLDER_OUTPUTS)
def test_output_in_a_missing_folder(cmd: str, capsys, tmp_path: Path, jv_tlq: Path) -> None:
    target = tmp_path / "missing" / "deeper" / "out"
    check_refused(*run_main(capsys, _outputs(tmp_path, jv_tlq)[cmd](str(target)))[::2], str(target),
                  "does not exist")
    assert snapshot(tmp_path) == {}


@pytest.mark.parametrize("cmd", FILE_OUTPUTS + FOLDER_OUTPUTS)
def test_output_path_with_control_characters(cmd: str, capsys, tmp_path: Path, jv_tlq: Path) -> None:
    """Newlines, ESC sequences, CR, BEL and U+2028 in a path: the message stays one printable line."""
    target = tmp_path / "new\nline\x1b[31m\r\x07\u2028dir" / "out"
    line = check_refused(*run_main(capsys, _outputs(tmp_path, jv_tlq)[cmd](str(target)))[::2],
                         "does not exist")
    assert "new\\x0aline\\x1b[31m\\x0d\\x07\\u2028dir" in line
    assert snapshot(tmp_path) == {}


@pytest.mark.parametrize("cmd", FILE_OUTPUTS + FOLDER_OUTPUTS)
def test_output_path_empty(cmd: str, capsys, tmp_path: Path, jv_tlq: Path, monkeypatch) -> None:
    """An empty -o (an unset shell variable) is refused, not taken as the current folder."""
    monkeypatch.chdir(tmp_path)
    check_refused(*run_main(capsys, _outputs(tmp_path, jv_tlq)[cmd](""))[::2], "empty")
    assert snapshot(tmp_path) == {}


def test_nul_bytes_in_paths(tmp_path: Path, jv_tlq: Path) -> None:
    """The API with a NUL byte in a path (argv cannot hold one): the family's errors only."""
    with pytest.raises(DataError, match="cannot read"):
        load_dataset(str(tmp_path / "a\0b.npz"), tinylstm.load_onnx(JV))
    with pytest.raises(ModelFormatError, match="cannot read"):
        QuantizedModel.load(str(tmp_path / "a\0b.tlq"))


def test_data_path_with_control_characters(capsys, tmp_path: Path) -> None:
    bad = tmp_path / "calib\n\x1b]0;title\x07.npz"
    bad.write_bytes(mdc.CASES["x_rank2"].build())
    line = check_refused(*run_main(capsys, ["quantize", JV, "--calib", str(bad), "-o",
                                            str(tmp_path / "m.tlq")])[::2], "'x'")
    assert "calib\\x0a\\x1b]0;title\\x07.npz" in line
    assert {p.name for p in tmp_path.iterdir()} == {bad.name}


def test_generate_into_an_existing_folder_replaces_only_its_own_files(capsys, tmp_path: Path,
                                                                        jv_tlq: Path) -> None:
    """Documented behaviour: files with the generated names are replaced, others stay as they are."""
    out = tmp_path / "gen"
    out.mkdir()
    (out / "model.c").write_text("/* stale */")
    (out / "main.c").write_text("int main(void) { return 0; }\n")
    (out / "sub").mkdir()
    (out / "sub" / "x.h").write_text("#pragma once\n")
    rc, _, err = run_main(capsys, ["generate", str(jv_tlq), "-o", str(out)])
    assert rc == 0, err
    assert (out / "main.c").read_text() == "int main(void) { return 0; }\n"
    assert (out / "sub" / "x.h").read_text() == "#pragma once\n"
    assert "stale" not in (out / "model.c").read_text() and (out / "model.h").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["gen"]  # no temporary folder left


def test_quantize_over_an_existing_file_replaces_it(capsys, tmp_path: Path) -> None:
    out = tmp_path / "m.tlq"
    out.write_bytes(b"old")
    rc, _, err = run_main(capsys, ["quantize", JV, "--calib", JV_CALIB, "-o", str(out)])
    assert rc == 0, err
    QuantizedModel.load(out)
    assert [p.name for p in tmp_path.iterdir()] == ["m.tlq"]


def test_failed_rename_leaves_no_temporary_file(capsys, tmp_path: Path, monkeypatch) -> None:
    """A write that fails at the last step (os.replace) keeps the old file and leaves no temp file."""
    out = tmp_path / "m.tlq"
    out.write_bytes(b"old")

    def refuse(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", refuse)
    check_refused(*run_main(capsys, ["quantize", JV, "--calib", JV_CALIB, "-o", str(out)])[::2],
                  "m.tlq", "No space left")
    monkeypatch.undo()
    assert snapshot(tmp_path) == {"m.tlq": b"old"}


# --------------------------------------------------------------------------------------
# non-writable folders (root ignores permissions: then the CLI runs without the capabilities
# that let it, CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH)
# --------------------------------------------------------------------------------------
_CAP_DAC_OVERRIDE, _CAP_DAC_READ_SEARCH, _PR_CAPBSET_DROP = 1, 2, 24


def _drop_dac_capabilities() -> None:
    """In the child before exec: drop the capabilities that let root ignore file permissions
    from the bounding set, so the exec'ed process does not get them."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    for cap in (_CAP_DAC_OVERRIDE, _CAP_DAC_READ_SEARCH):
        if libc.prctl(_PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


def run_cli(*args: str, drop_caps: bool = False, cwd: Path = REPO) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "TINYLSTM_DEBUG"}
    env["PYTHONPATH"] = str(REPO)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return subprocess.run([sys.executable, "-m", "tinylstm", *args], capture_output=True, text=True,
                          errors="backslashreplace", timeout=120, cwd=cwd, env=env,
                          preexec_fn=_drop_dac_capabilities if drop_caps else None)


@pytest.fixture
def readonly_dir():
    """A folder the CLI cannot write to (mode 555), and whether the CLI must drop capabilities."""
    root = Path(tempfile.mkdtemp(prefix="tinylstm-ro-"))
    try:
        ro = root / "ro"
        ro.mkdir()
        (ro / "existing").mkdir()
        os.chmod(ro / "existing", 0o555)
        os.chmod(ro, 0o555)
        drop = os.geteuid() == 0
        if drop:
            probe = [sys.executable, "-c", f"open({str(ro / 'probe')!r}, 'w')"]
            try:
                r = subprocess.run(probe, capture_output=True, text=True, preexec_fn=_drop_dac_capabilities)
            except OSError as e:
                r = subprocess.CompletedProcess(probe, 0, "", str(e))
            if r.returncode == 0:
                pytest.skip("running as root, which ignores file permissions, and dropping "
                            f"CAP_DAC_OVERRIDE did not make it respect them: {r.stderr.strip()[-200:]}")
        yield ro, drop
    finally:
        for p in (root / "ro" / "existing", root / "ro"):
            if p.exists():
                os.chmod(p, 0o755)
        shutil.rmtree(root, ignore_errors=True)


@pytest.mark.parametrize("cmd", ["quantize", "generate", "build", "generate into existing"])
def test_output_in_a_read_only_folder(cmd: str, readonly_dir, jv_tlq: Path) -> None:
    ro, drop = readonly_dir
    tlq = ro.parent / "jv.tlq"
    tlq.write_bytes(jv_tlq.read_bytes())
    os.chmod(tlq, 0o644)
    args = {
        "quantize": ["quantize", JV, "--calib", JV_CALIB, "-o", str(ro / "m.tlq")],
        "generate": ["generate", str(tlq), "-o", str(ro / "gen")],
        "build": ["build", JV, "--calib", JV_CALIB, "-o", str(ro / "lib"), "--compilers", ""],
        "generate into existing": ["generate", str(tlq), "-o", str(ro / "existing")],
    }[cmd]
    before = snapshot(ro)
    r = run_cli(*args, drop_caps=drop, cwd=ro.parent)
    check_refused(r.returncode, r.stderr, str(ro), "not writable")
    assert snapshot(ro) == before


# --------------------------------------------------------------------------------------
# prefixes
# --------------------------------------------------------------------------------------
BAD_PREFIXES = {
    "keyword": "int",
    "keyword_upper": "WHILE",
    "c_name": "main",
    "digit_first": "1abc",
    "hyphen": "a-b",
    "space": "a b",
    "empty": "",
    "reserved_underscore_upper": "_X",
    "reserved_dunder": "__x",
    "runtime_namespace": "tl_x",
    "too_long": "x" * 41,
    "unicode": "caf\u00e9",
    "newline": "a\nb",
    "escape_sequence": "a\x1b[2Jb",
    "comment": "a/*b",
}


@pytest.mark.parametrize("name", list(BAD_PREFIXES))
@pytest.mark.parametrize("cmd", ["generate", "build"])
def test_bad_prefix(name: str, cmd: str, capsys, tmp_path: Path, jv_tlq: Path) -> None:
    prefix = BAD_PREFIXES[name]
    out = str(tmp_path / "out")
    args = (["generate", str(jv_tlq), "-o", out] if cmd == "generate"
            else ["build", JV, "--calib", JV_CALIB, "-o", out, "--compilers", ""])
    check_refused(*run_main(capsys, [*args, "--prefix", prefix])[::2], "prefix")
    assert snapshot(tmp_path) == {}


# --------------------------------------------------------------------------------------
# end to end (subprocess) and the Python API's messages
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "make_args, culprits",
    [
        (lambda d, t: ["quantize", JV, "--calib", str(mdc.CASES["object_x"].path(mdc.CORPUS)), "-o",
                       str(d / "m.tlq")], ("object_x.npz", "'x'")),
        (lambda d, t: ["validate", JV, "--qmodel", str(t), "--data",
                       str(mdc.CASES["zip_declares_2_gib"].path(mdc.CORPUS)), "--no-c"], ("2 GiB",)),
        (lambda d, t: ["generate", str(mdc.CASES["truncated_zip_half"].path(mdc.CORPUS)), "-o",
                       str(d / "gen")], ("truncated_zip_half.npz",)),
        (lambda d, t: ["build", JV, "--calib", JV_CALIB, "-o", str(d / "a\nb\x1b[0m" / "lib")],
         ("a\\x0ab\\x1b[0m",)),
    ],
    ids=["pickled-x", "zip-bomb-header", "data-as-tlq", "control-chars-in-output"],
)
def test_cli_subprocess_end_to_end(make_args, culprits, tmp_path: Path, jv_tlq: Path) -> None:
    r = run_cli(*make_args(tmp_path, jv_tlq))
    check_refused(r.returncode, r.stderr, *culprits)
    assert r.stdout == "" and snapshot(tmp_path) == {}


def test_error_messages_escape_control_characters() -> None:
    """The exception family escapes what a terminal would interpret, for the Python API too."""
    e = DataError("file 'a\x1b[2J\nb\r\x07\u202e.npz' \u00e9")
    assert str(e) == "file 'a\\x1b[2J\\x0ab\\x0d\\x07\\u202e.npz' \u00e9"
    u = UnsupportedModelError("bad\tattr", node="n\x00ode", field="f\x85")
    assert str(u) == "node 'n\\x00ode', f\\x85: bad\\x09attr" and u.node == "n\x00ode"
    assert isinstance(OutputPathError("x"), TinyLstmError)

    class Multiline(TinyLstmError):
        keep_controls = "\n"

    assert str(Multiline("line 1\nline 2\x1b")) == "line 1\nline 2\\x1b"


def test_api_error_from_a_hostile_path_is_printable(tmp_path: Path) -> None:
    path = tmp_path / "x\x1b[2J\u2028.npz"
    with pytest.raises(DataError) as e:
        load_dataset(path, tinylstm.load_onnx(JV))
    assert not unsafe_chars(str(e.value)) and "x\\x1b[2J\\u2028.npz" in str(e.value)


def test_loading_never_unpickles(tmp_path: Path) -> None:
    """np.load's pickle path is never taken: the object-array cases are refused from their
    header, the bare pickle from its first bytes (and PWNED stays absent, see the fixture)."""
    for name in ("pickle_file", "object_npy", "object_x", "object_lengths", "object_labels",
                 "recipe_task_object"):
        with pytest.raises(DataError):
            load_dataset(mdc.CASES[name].path(mdc.CORPUS), tinylstm.load_onnx(JV))
    assert not Path(mdc.PWNED).exists()


def test_valid_example_data_still_loads(tmp_path: Path) -> None:
    """The example files in all three forms (arrays, recipe, bundled reference) load."""
    fm = tinylstm.load_onnx(JV)
    cal = load_dataset(JV_CALIB, fm)
    test = load_dataset(JV_TEST, fm)
    assert len(cal) == 270 and len(test) == 370 and test.labels is not None
    assert {s.shape[1] for s in cal.sequences} == {12}
    adding = load_dataset(MODELS / "adding_T100_test.npz", tinylstm.load_onnx(MODELS / "adding_T100.onnx"))
    assert len(adding) == 2560 and adding.targets is not None
    np.save(tmp_path / "x.npy", np.zeros((2, 3, 12), np.float16))
    assert len(load_dataset(tmp_path / "x.npy", fm)) == 2
    np.savez_compressed(tmp_path / "c.npz", x=np.ones((3, 4, 12), np.float32), lengths=np.array([1, 4, 2]),
                        labels=np.array([0, 8, 3], np.uint8))
    assert [len(s) for s in load_dataset(tmp_path / "c.npz", fm).sequences] == [1, 4, 2]


def test_stat_of_outputs_is_unchanged_by_refusals(capsys, tmp_path: Path) -> None:
    """A refused quantize does not even touch the existing output's metadata."""
    out = tmp_path / "m.tlq"
    out.write_bytes(b"old")
    st = out.stat()
    check_refused(*run_main(capsys, ["quantize", JV, "--calib",
                                     str(mdc.CASES["empty"].path(mdc.CORPUS)), "-o", str(out)])[::2])
    st2 = out.stat()
    assert (st.st_ino, st.st_mtime_ns, stat.S_IMODE(st.st_mode)) == \
        (st2.st_ino, st2.st_mtime_ns, stat.S_IMODE(st2.st_mode))
