"""C identifiers and comments from untrusted model text.

Nothing from a model file (node names, doc strings, producer) reaches generated C except
through :func:`c_ident` or :func:`c_comment`, so it can neither break the code nor inject into it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from ..errors import TinyLstmError

C_KEYWORDS = frozenset(
    """auto break case char const continue default do double else enum extern float for goto if
    inline int long register restrict return short signed sizeof static struct switch typedef union
    unsigned void volatile while _Bool _Complex _Imaginary _Alignas _Alignof _Atomic _Generic
    _Noreturn _Static_assert _Thread_local bool true false NULL main""".split()
)
#: identifiers reserved by C or by our runtime's namespace
RESERVED_PREFIXES = ("tl_", "TL_", "__", "_")
_IDENT = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
MAX_PREFIX = 40


class PrefixError(TinyLstmError):
    """The user's C prefix is not usable."""


def check_prefix(prefix: str) -> str:
    """Validate the user's prefix: a C identifier, not a keyword, not our namespace."""
    if not isinstance(prefix, str) or not _IDENT.match(prefix):
        raise PrefixError(
            f"prefix {prefix!r} is not a C identifier (ASCII letters A-Z a-z, digits 0-9 and _, starting with a letter)"
        )
    if prefix in C_KEYWORDS or prefix.lower() in C_KEYWORDS:
        raise PrefixError(f"prefix {prefix!r} is a C keyword or reserved name")
    if prefix.startswith(RESERVED_PREFIXES) or prefix.lower() == "tl":
        raise PrefixError(f"prefix {prefix!r} starts with a reserved prefix ({', '.join(RESERVED_PREFIXES)})")
    if len(prefix) > MAX_PREFIX:
        raise PrefixError(f"prefix {prefix!r} is longer than {MAX_PREFIX} characters")
    return prefix


def c_ident(text: str, fallback: str = "x") -> str:
    """Any text -> a safe C identifier fragment (lower case, [a-z0-9_], no leading digit)."""
    s = re.sub(r"[^A-Za-z0-9]+", "_", str(text)).strip("_").lower()
    if not s:
        s = fallback
    if s[0].isdigit():
        s = "n" + s
    return s[:48]


def c_comment(text: str, limit: int = 120) -> str:
    """Any text -> safe content for a /* */ or // comment: printable ASCII, no comment delimiters,
    no line breaks, no trigraphs or line-continuation backslashes."""
    s = "".join(ch if 32 <= ord(ch) < 127 else "?" for ch in str(text))
    s = s.replace("*/", "* /").replace("/*", "/ *").replace("\\", "/").replace("??", "?_")
    if len(s) > limit:
        s = s[: limit - 3] + "..."
    return s


class Names:
    """The C names of one model's nodes under the user's ``prefix``."""

    def __init__(self, prefix: str, nodes: Sequence[object]):
        self.p = prefix
        self.P = prefix.upper()
        self.nodes = nodes

    def fid(self, k: int) -> str:
        """Name of node k's fields in the state struct."""
        return f"n{k}_{c_ident(self.nodes[k].name, 'node')}"

    def nid(self, k: int) -> str:
        """Name of node k's static data: prefixed, so it can never meet a public name."""
        return f"{self.p}_{self.fid(k)}"

    def describe(self, k: int) -> str:
        """``node k: Kind 'name'`` for comments."""
        n = self.nodes[k]
        return f"node {k}: {type(n).__name__[1:]} '{c_comment(n.name, 80)}'"
