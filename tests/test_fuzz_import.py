"""Property-based fuzzing of ``tinylstm.load_onnx`` with hypothesis.

Seeds are small valid LSTM models (tests/onnx_builders.py). Each test applies 1-3 mutations
of one family (attributes, shapes, initializer bytes, op types, tensor names, opsets, graph
structure, raw bytes of the serialized file) and checks the only allowed outcomes:

* ``load_onnx`` raises a :class:`tinylstm.TinyLstmError`, or
* it returns a :class:`tinylstm.FloatModel` whose ``run`` on a small input returns a float32
  array or raises :class:`tinylstm.DataError`;

within :data:`EXAMPLE_SECONDS` and under an address-space limit (so a huge allocation is a
MemoryError, not a swapped machine). The default profile is derandomized (same examples on
every run, no example database) and takes ~20-40 s in all; ``scripts/fuzz_importer.py
--minutes N`` runs the same mutators and property much longer with fresh seeds.

Mutators take a :class:`Chooser` so hypothesis (shrinkable draws) and the long-run script
(a numpy generator) share them.

Families that currently find importer bugs are ``xfail(strict=True)`` with the minimal
example in the reason; they flip to failures when the importer is fixed.
"""

from __future__ import annotations

import math
import resource
import signal
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from functools import lru_cache
from typing import Any, Protocol

import numpy as np
import onnx
import onnx.defs
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from onnx import AttributeProto, TensorProto, helper, numpy_helper
from onnx_builders import HeadSpec, LstmSpec, single_lstm_model, stacked_model

import tinylstm
from tinylstm import DataError, TinyLstmError

#: wall-clock bound of one load + run (small models load in ~10 ms)
EXAMPLE_SECONDS = 10
#: address space allowed above what the test process already maps
MEMORY_HEADROOM = 3 << 30


# --------------------------------------------------------------------------------------
# choosing: hypothesis draws or a numpy generator
# --------------------------------------------------------------------------------------
class Chooser(Protocol):
    def integer(self, lo: int, hi: int) -> int: ...  # inclusive
    def choice(self, seq: Sequence[Any]) -> Any: ...
    def blob(self, max_size: int) -> bytes: ...


class DrawChooser:
    """A Chooser drawing from a hypothesis ``st.data()`` object (shrinks well)."""

    def __init__(self, data: st.DataObject):
        self.data = data

    def integer(self, lo: int, hi: int) -> int:
        return self.data.draw(st.integers(lo, hi))

    def choice(self, seq: Sequence[Any]) -> Any:
        return seq[self.data.draw(st.integers(0, len(seq) - 1))]

    def blob(self, max_size: int) -> bytes:
        return self.data.draw(st.binary(max_size=max_size))


class RngChooser:
    """A Chooser on a seeded numpy generator (the long-run script)."""

    def __init__(self, rng: np.random.Generator):
        self.rng = rng

    def integer(self, lo: int, hi: int) -> int:
        return int(self.rng.integers(lo, hi, endpoint=True))

    def choice(self, seq: Sequence[Any]) -> Any:
        return seq[int(self.rng.integers(len(seq)))]

    def blob(self, max_size: int) -> bytes:
        return self.rng.bytes(int(self.rng.integers(max_size + 1)))


# --------------------------------------------------------------------------------------
# seeds
# --------------------------------------------------------------------------------------
@lru_cache(maxsize=1)
def seed_models() -> tuple[bytes, ...]:
    """Small valid models covering the importer's main paths, serialized."""
    models = [
        stacked_model([LstmSpec()], head=HeadSpec("last_gemm")),
        single_lstm_model(LstmSpec(outputs=("Y", "Y_h"))),
        stacked_model([LstmSpec(direction="bidirectional", hidden_size=3)],
                      head=HeadSpec("state_matmul", activations=("Softmax",))),
        stacked_model([LstmSpec(layout=1, input_size=2, hidden_size=3, initial_h="zeros",
                                initial_c="zeros")], head=HeadSpec("last_slice_gemm_t0")),
        stacked_model([LstmSpec(peepholes=True, clip=2.0), LstmSpec(input_size=4, hidden_size=2)],
                      head=HeadSpec("per_step", activations=("Relu",)), glue="reshape"),
        single_lstm_model(LstmSpec(sequence_lens="input", direction="reverse",
                                   activations=("HardSigmoid", "Tanh", "Softsign"),
                                   activation_alpha=(0.3,), activation_beta=(0.4,))),
        stacked_model([LstmSpec(hidden_size=2)], head=HeadSpec("state_flatten_gemm"), opset=11,
                      batch=2, time=4),
    ]
    return tuple(m.SerializeToString(deterministic=True) for m in models)


def parse(data: bytes) -> onnx.ModelProto:
    m = onnx.ModelProto()
    m.ParseFromString(data)
    return m


# --------------------------------------------------------------------------------------
# interesting values
# --------------------------------------------------------------------------------------
INTS = (0, 1, -1, 2, 3, 4, 5, 7, -2, 1009, 1013, 2**31 - 1, 2**31, 2**40, 2**62, 2**63 - 1, -(2**63))
FLOATS = (0.0, -0.0, 1.0, -1.0, 0.5, 2.0, 1e-45, 1e-38, 1e38, 3.4e38, math.inf, -math.inf, math.nan)
STRINGS = ("", "forward", "reverse", "bidirectional", "Sigmoid", "Tanh", "Relu", "LeakyRelu",
           "x", "\x00", "\u00e9\u2028", "a" * 300)
OP_TYPES = tuple(sorted({s.name for s in onnx.defs.get_all_schemas() if s.domain == ""})) + (
    "", "lstm", "NotAnOp", "LSTM\x00")
ATTR_NAMES = ("hidden_size", "direction", "layout", "clip", "input_forget", "activations",
              "activation_alpha", "activation_beta", "axis", "axes", "perm", "to", "alpha", "beta",
              "transA", "transB", "value", "keepdims", "allowzero", "start", "end", "epsilon", "x")
ATTR_TYPES = (AttributeProto.INT, AttributeProto.FLOAT, AttributeProto.STRING, AttributeProto.INTS,
              AttributeProto.FLOATS, AttributeProto.STRINGS, AttributeProto.TENSOR,
              AttributeProto.UNDEFINED, AttributeProto.GRAPH)
DATA_TYPES = tuple(range(0, 24))


def some_int(ch: Chooser) -> int:
    return ch.choice(INTS) if ch.integer(0, 2) else ch.integer(-8, 8)


def some_value_tensor(ch: Chooser) -> onnx.TensorProto:
    kind = ch.integer(0, 3)
    if kind == 0:
        return numpy_helper.from_array(np.asarray([ch.choice(FLOATS)], np.float32), "value")
    if kind == 1:
        return numpy_helper.from_array(np.asarray([some_int(ch)], np.int64), "value")
    if kind == 2:
        return numpy_helper.from_array(np.zeros((0,), np.float32), "value")
    t = onnx.TensorProto()
    t.name = "value"
    t.data_type = ch.choice(DATA_TYPES)
    t.dims.extend([ch.integer(0, 3)])
    t.raw_data = ch.blob(16)
    return t


def make_attr(name: str, ch: Chooser) -> AttributeProto:
    """An attribute of a random type (UNDEFINED too) with interesting values."""
    t = ch.choice(ATTR_TYPES)
    a = AttributeProto()
    a.name = name
    if t == AttributeProto.INT:
        a.i = some_int(ch)
    elif t == AttributeProto.FLOAT:
        a.f = ch.choice(FLOATS)
    elif t == AttributeProto.STRING:
        a.s = ch.choice(STRINGS).encode()
    elif t == AttributeProto.INTS:
        a.ints.extend(some_int(ch) for _ in range(ch.integer(0, 4)))
    elif t == AttributeProto.FLOATS:
        a.floats.extend(ch.choice(FLOATS) for _ in range(ch.integer(0, 4)))
    elif t == AttributeProto.STRINGS:
        a.strings.extend(ch.choice(STRINGS).encode() for _ in range(ch.integer(0, 7)))
    elif t == AttributeProto.TENSOR:
        a.t.CopyFrom(some_value_tensor(ch))
    elif t == AttributeProto.GRAPH:
        a.g.CopyFrom(helper.make_graph([], "empty", [], []))
    else:  # UNDEFINED type with a value in some field
        a.i = some_int(ch)
    if t != AttributeProto.UNDEFINED:
        a.type = t
    return a


# --------------------------------------------------------------------------------------
# mutators: each edits a ModelProto in place
# --------------------------------------------------------------------------------------
def tensor_names(m: onnx.ModelProto) -> list[str]:
    g = m.graph
    names = [i.name for i in g.input] + [t.name for t in g.initializer]
    names += [o for n in g.node for o in n.output]
    return names or ["x"]


def decoded(t: onnx.TensorProto) -> np.ndarray | None:
    """The tensor's array, or None when an earlier mutation made it undecodable."""
    if t.data_location == TensorProto.EXTERNAL:
        return None
    try:
        return numpy_helper.to_array(t)
    except Exception:
        return None


def mutate_attributes(m: onnx.ModelProto, ch: Chooser) -> None:
    n = ch.choice(m.graph.node)
    action = ch.integer(0, 3)
    if action == 0 and n.attribute:  # retype/revalue an existing attribute
        k = ch.integer(0, len(n.attribute) - 1)
        n.attribute[k].CopyFrom(make_attr(n.attribute[k].name, ch))
    elif action == 1 and n.attribute:  # drop one
        del n.attribute[ch.integer(0, len(n.attribute) - 1)]
    elif action == 2 and n.attribute:  # duplicate one
        n.attribute.append(n.attribute[ch.integer(0, len(n.attribute) - 1)])
    else:  # add one
        n.attribute.append(make_attr(ch.choice(ATTR_NAMES), ch))


def mutate_shapes(m: onnx.ModelProto, ch: Chooser) -> None:
    g = m.graph
    action = ch.integer(0, 3)
    if action == 0 and g.initializer:  # declared dims no longer match the data
        t = ch.choice(g.initializer)
        if t.dims and ch.integer(0, 3):
            t.dims[ch.integer(0, len(t.dims) - 1)] = some_int(ch)
        elif t.dims and ch.integer(0, 1):
            del t.dims[ch.integer(0, len(t.dims) - 1)]
        else:
            t.dims.append(some_int(ch))
    elif action == 1:  # graph input dims
        v = ch.choice(list(g.input) + list(g.output))
        dims = v.type.tensor_type.shape.dim
        if dims and ch.integer(0, 3):
            d = dims[ch.integer(0, len(dims) - 1)]
            if ch.integer(0, 2):
                d.dim_value = some_int(ch)
            else:
                d.dim_param = ch.choice(STRINGS)
        elif dims and ch.integer(0, 1):
            del dims[ch.integer(0, len(dims) - 1)]
        else:
            v.type.tensor_type.shape.dim.add().dim_value = ch.integer(0, 5)
    else:  # values of an int64 (shape/axes/index) initializer: the data is reshaped consistently
        ints = [t for t in g.initializer if t.data_type == TensorProto.INT64]
        if not ints:
            return
        t = ch.choice(ints)
        a = decoded(t)
        if a is None:
            return
        a = a.copy()
        if a.size:
            a.reshape(-1)[ch.integer(0, a.size - 1)] = some_int(ch)
        elif action == 3:
            a = np.asarray([some_int(ch)], np.int64)
        t.CopyFrom(numpy_helper.from_array(a, t.name))


def mutate_initializer_bytes(m: onnx.ModelProto, ch: Chooser) -> None:
    g = m.graph
    if not g.initializer:
        return
    t = ch.choice(g.initializer)
    action = ch.integer(0, 4)
    a = decoded(t)
    if a is None:
        return
    if action == 0 and a.dtype.kind == "f" and a.size:  # one special value
        a = a.copy()
        a.reshape(-1)[ch.integer(0, a.size - 1)] = ch.choice(FLOATS)
        t.CopyFrom(numpy_helper.from_array(a, t.name))
    elif action == 1:  # random bytes, same or other length
        raw = numpy_helper.from_array(a).raw_data
        t.ClearField("float_data")
        t.ClearField("int64_data")
        t.ClearField("int32_data")
        t.ClearField("double_data")
        n = len(raw) if ch.integer(0, 1) else ch.integer(0, len(raw) + 8)
        t.raw_data = (ch.blob(n) + bytes(n))[:n]
    elif action == 2:  # another element type, same bytes
        t.data_type = ch.choice(DATA_TYPES)
    elif action == 3:  # typed field instead of raw_data (maybe of the wrong kind)
        t.ClearField("raw_data")
        field = ch.choice(("float_data", "int64_data", "int32_data", "double_data"))
        vals = a.reshape(-1)[: ch.integer(0, a.size)] if a.size else []
        if field in ("int64_data", "int32_data"):
            top = 2**31 - 1 if field == "int32_data" else 2**62
            getattr(t, field).extend(
                int(np.clip(v, -top, top)) if np.isfinite(v) else 0 for v in np.asarray(vals, np.float64))
        else:
            getattr(t, field).extend(float(v) for v in np.asarray(vals, np.float64))
    else:  # external-data marker without a file
        t.data_location = TensorProto.EXTERNAL
        e = t.external_data.add()
        e.key, e.value = "location", ch.choice(("w.bin", "../w.bin", "/etc/passwd", ""))


def mutate_op_types(m: onnx.ModelProto, ch: Chooser) -> None:
    n = ch.choice(m.graph.node)
    n.op_type = ch.choice(OP_TYPES)
    if not ch.integer(0, 5):
        n.domain = ch.choice(("ai.onnx", "ai.onnx.ml", "com.microsoft", "x"))


def mutate_names(m: onnx.ModelProto, ch: Chooser) -> None:
    g = m.graph
    n = ch.choice(g.node)
    names = tensor_names(m) + ["", "nowhere"]
    action = ch.integer(0, 5)
    if action == 0 and n.input:
        n.input[ch.integer(0, len(n.input) - 1)] = ch.choice(names)
    elif action == 1 and n.input:
        del n.input[ch.integer(0, len(n.input) - 1)]
    elif action == 2:
        n.input.append(ch.choice(names))
    elif action == 3 and n.output:
        n.output[ch.integer(0, len(n.output) - 1)] = ch.choice(names)
    elif action == 4:
        v = ch.choice(list(g.input) + list(g.output))
        v.name = ch.choice(names)
    else:
        n.output.append(ch.choice(names))


def mutate_opsets(m: onnx.ModelProto, ch: Chooser) -> None:
    action = ch.integer(0, 3)
    if action == 0 and m.opset_import:
        m.opset_import[ch.integer(0, len(m.opset_import) - 1)].version = ch.integer(-1, 30)
    elif action == 1:
        m.opset_import.append(helper.make_opsetid(ch.choice(("", "ai.onnx", "ai.onnx.ml", "x")),
                                                  ch.integer(0, 30)))
    elif action == 2 and m.opset_import:
        del m.opset_import[ch.integer(0, len(m.opset_import) - 1)]
    else:
        m.ir_version = ch.choice((0, 1, 3, 7, 9, 10, 11, 2**40))


def mutate_structure(m: onnx.ModelProto, ch: Chooser) -> None:
    nodes = m.graph.node
    i = ch.integer(0, len(nodes) - 1)
    action = ch.integer(0, 3)
    if action == 0 and len(nodes) > 1:
        del nodes[i]
    elif action == 1:
        nodes.insert(ch.integer(0, len(nodes)), nodes[i])
    elif action == 2:
        j = ch.integer(0, len(nodes) - 1)
        a, b = onnx.NodeProto(), onnx.NodeProto()
        a.CopyFrom(nodes[i])
        b.CopyFrom(nodes[j])
        nodes[i].CopyFrom(b)
        nodes[j].CopyFrom(a)
    else:  # a dead node of any op on an existing tensor
        names = tensor_names(m)
        nodes.insert(ch.integer(0, len(nodes)), helper.make_node(
            ch.choice(OP_TYPES), [ch.choice(names) for _ in range(ch.integer(0, 3))],
            [f"dead_{i}"], name=f"dead_{i}"))


def mutate_raw_bytes(data: bytes, ch: Chooser) -> bytes:
    b = bytearray(data)
    for _ in range(ch.integer(1, 4)):
        if not b:
            break
        pos = ch.integer(0, len(b) - 1)
        action = ch.integer(0, 5)
        if action == 0:
            b[pos] ^= 1 << ch.integer(0, 7)
        elif action == 1:
            b[pos] = ch.choice((0x00, 0x01, 0x7F, 0x80, 0xFF, 0x08, 0x0A, 0x12, 0x1A, 0x22))
        elif action == 2:
            del b[pos : pos + ch.integer(1, 16)]
        elif action == 3:
            b[pos:pos] = ch.blob(16)
        elif action == 4:
            n = ch.integer(1, 32)
            b[pos:pos] = b[pos : pos + n]
        else:
            del b[pos:]
    return bytes(b)


#: family name -> mutator of a ModelProto
MODEL_MUTATORS: dict[str, Callable[[onnx.ModelProto, Chooser], None]] = {
    "attributes": mutate_attributes,
    "shapes": mutate_shapes,
    "initializer_bytes": mutate_initializer_bytes,
    "op_types": mutate_op_types,
    "names": mutate_names,
    "opsets": mutate_opsets,
    "structure": mutate_structure,
}
FAMILIES = (*MODEL_MUTATORS, "raw_bytes", "mixed")


def mutated(family: str, ch: Chooser) -> bytes:
    """A seed model with 1-3 mutations of ``family`` ('mixed': any model family, then maybe
    raw bytes), serialized."""
    seed = ch.choice(seed_models())
    if family == "raw_bytes":
        return mutate_raw_bytes(seed, ch)
    m = parse(seed)
    for _ in range(ch.integer(1, 3)):
        fam = family if family != "mixed" else ch.choice(tuple(MODEL_MUTATORS))
        MODEL_MUTATORS[fam](m, ch)
    data = m.SerializeToString()
    if family == "mixed" and not ch.integer(0, 3):
        data = mutate_raw_bytes(data, ch)
    return data


# --------------------------------------------------------------------------------------
# the property
# --------------------------------------------------------------------------------------
class Hang(BaseException):
    """Raised by SIGALRM: a BaseException so no ``except Exception`` in tinylstm hides it."""


@contextmanager
def time_limit(seconds: int) -> Iterator[None]:
    def on_alarm(signum, frame):
        raise Hang(f"no answer within {seconds} s")

    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def _mapped_bytes() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    return 0


@contextmanager
def memory_limit(headroom: int = MEMORY_HEADROOM) -> Iterator[None]:
    """Lower the soft address-space limit to what is mapped now + ``headroom``; restore after."""
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    limit = _mapped_bytes() + headroom
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


def small_run(model: tinylstm.FloatModel) -> None:
    """Run a seeded small input (batch 2, time 5 where the file declares them dynamic); DataError is
    allowed."""
    batch = model.fixed_batch or model.export_batch or 2
    steps = model.fixed_time or model.export_time or 5
    shape = model.input_view.onnx_shape(batch, steps)
    if int(np.prod(shape, dtype=np.float64)) > 100_000 or steps > 1000:
        return  # a declared fixed size too large to feed (the reference loops over steps)
    x = np.random.default_rng(0).normal(size=shape).astype(np.float32)
    lens = np.full(batch, steps, np.int32) if model.sequence_lens_input else None
    try:
        y = model.run(x, sequence_lens=lens)
    except DataError:
        return
    assert isinstance(y, np.ndarray) and y.dtype == np.float32, type(y)


def outcome(data: bytes) -> str:
    """Load (and run) one candidate: 'loaded' / 'refused'; anything else raises."""
    with time_limit(EXAMPLE_SECONDS):
        try:
            model = tinylstm.load_onnx(data)
        except TinyLstmError:
            return "refused"
        small_run(model)
        return "loaded"


# --------------------------------------------------------------------------------------
# the tests
# --------------------------------------------------------------------------------------
#: derandomized, no database; no shrinking (the corpus in tests/bad_inputs holds the minimal
#: repros; shrinking several distinct bugs costs minutes), stop at the first failure
DEFAULT = settings(
    max_examples=500,
    deadline=None,
    derandomize=True,
    database=None,
    phases=[Phase.explicit, Phase.generate],
    report_multiple_bugs=False,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

#: families whose default run finds an importer bug today (minimal example in the reason)
KNOWN_FAILING: dict[str, str] = {
}


@pytest.fixture(autouse=True)
def _limits() -> Iterator[None]:
    with memory_limit(), np.errstate(all="ignore"):
        yield


def _family_test(family: str):
    @DEFAULT
    @given(st.data())
    def test(data: st.DataObject) -> None:
        outcome(mutated(family, DrawChooser(data)))

    marks = []
    if family in KNOWN_FAILING:
        marks.append(pytest.mark.xfail(strict=True, reason=KNOWN_FAILING[family]))
    for mark in marks:
        test = mark(test)
    test.__name__ = f"test_fuzz_{family}"
    return test


for _family in FAMILIES:
    globals()[f"test_fuzz_{_family}"] = _family_test(_family)


def test_seeds_load_and_run() -> None:
    """The property holds trivially on the unmutated seeds: each loads and runs."""
    for data in seed_models():
        assert outcome(data) == "loaded"


def test_mutators_change_the_model() -> None:
    """Every family really mutates (a no-op fuzzer cannot fail)."""
    rng = np.random.default_rng(0)
    seeds = set(seed_models())
    for family in FAMILIES:
        changed = sum(mutated(family, RngChooser(rng)) not in seeds for _ in range(20))
        assert changed >= 10, (family, changed)


def test_hang_guard_is_not_swallowed() -> None:
    """The time limit reaches the test even through tinylstm's ``except Exception``."""
    with pytest.raises(Hang), time_limit(1):
        try:
            while True:
                pass
        except Exception:  # noqa: BLE001 - what the importer does around the reference fold
            pass


def test_memory_guard_turns_huge_allocations_into_errors() -> None:
    with pytest.raises(MemoryError):
        np.ones(MEMORY_HEADROOM + (1 << 30), np.uint8)

