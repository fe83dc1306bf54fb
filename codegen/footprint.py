"""Flash and RAM of a generated model, counted in one place: ``<P>_FLASH_BYTES`` (the model's
const data on a 32-bit target, runtime code excluded) and ``<P>_RAM_BYTES`` (``sizeof`` of the
state struct).

The sizes of the runtime's const structs are one table, :data:`STRUCT_SIZES`, and every
generated source checks it at compile time (:func:`size_check`): a runtime change that breaks
the count fails to compile on any 32-bit target instead of misreporting ``<P>_FLASH_BYTES``.
The RAM count is checked the same way, against ``sizeof(<p>_state_t)``.
"""

from __future__ import annotations

#: bytes per element of the C types the emitter uses
C_SIZES = {"int8_t": 1, "uint8_t": 1, "int16_t": 2, "uint16_t": 2, "int32_t": 4}
#: ``sizeof`` of the runtime's const structs on a 32-bit target (4-byte pointers; every field is
#: 4-byte aligned or packs into 4 bytes, so there is no padding): codegen/runtime/tl_*.h
STRUCT_SIZES = {
    "tl_lut_t": 20,  # 2 table pointers, n, sym, shift
    "tl_lstm_unit_t": 36,  # int32[4], uint32[4], int8[4]
    "tl_lstm_params_t": 132,  # 9 pointers, 24 int32 (peep_mult, peep_shift: 3 each)
    "tl_gru_unit_t": 32,  # 3 x (int32, uint32), int32, int8[3] + 1
    "tl_gru_params_t": 108,  # 10 pointers, 17 int32
    "tl_dense_params_t": 36,  # 4 pointers, 5 int32
    "tl_softmax_params_t": 28,  # 2 pointers, 5 int32
}


def array_bytes(ctype: str, count: int) -> int:
    """Flash of a const array: arrays start 4-byte aligned."""
    return (C_SIZES[ctype] * count + 3) // 4 * 4


def size_check(prefix: str) -> str:
    """The compile-time check of :data:`STRUCT_SIZES` (a negative array size stops the build)."""
    sizes = " &&\n    ".join(f"sizeof({name}) == {n}" for name, n in STRUCT_SIZES.items())
    return (f"/* {prefix.upper()}_FLASH_BYTES counts the runtime's const structs at these sizes (32-bit targets) */\n"
            f"typedef char {prefix}_flash_bytes_check[(sizeof(void *) != 4 || (\n    {sizes})) ? 1 : -1];")


class Footprint:
    """The counts, filled while the emitter writes const data and declares state fields."""

    def __init__(self) -> None:
        self.flash = 0  # const data bytes
        self.fields: list[tuple[int, str]] = []  # (alignment, declaration) of the state struct
        self.fixed_ram = 0  # state bytes besides the step counter and the sequence workspace
        self.scratch_halves = 0  # int16 elements of the LSTM step scratch (0: no LSTM)

    def const_array(self, ctype: str, count: int) -> None:
        self.flash += array_bytes(ctype, count)

    def const_structs(self, struct: str, count: int = 1) -> None:
        self.flash += STRUCT_SIZES[struct] * count

    def field(self, ctype: str, decl: str, count: int, comment: str) -> None:
        """A state struct member of ``count`` elements of ``ctype``."""
        self.fields.append((C_SIZES[ctype], f"    {ctype} {decl}; /* {comment} */"))
        self.fixed_ram += C_SIZES[ctype] * count

    def scratch(self, halves: int) -> None:
        """The LSTM step scratch: ``halves`` int16 elements (whole words)."""
        self.scratch_halves = halves
        self.fixed_ram += 2 * halves

    @property
    def ram_fixed(self) -> int:
        """State bytes besides the sequence workspace (the int32 step counter included)."""
        return 4 + self.fixed_ram

    def ram_bytes(self, ws_width: int, steps: int) -> int:
        """``sizeof`` of the state with a workspace of ``ws_width`` bytes per step for ``steps``."""
        return (self.ram_fixed + ws_width * steps + 3) // 4 * 4

    def ram_macro(self, ws_width: int, buffered: bool, max_steps_macro: str) -> str:
        """The value of ``<P>_RAM_BYTES``: an expression of ``<P>_MAX_STEPS`` when buffered."""
        if buffered:
            return f"(({self.ram_fixed} + {ws_width} * ({max_steps_macro}) + 3) / 4 * 4)"
        return f"{self.ram_bytes(0, 0)}"
