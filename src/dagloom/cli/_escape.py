"""Text from storage made safe for a terminal: tags, job names, messages and config were
written by clients and user code, so they may hold escape sequences or rich markup."""

from __future__ import annotations

import unicodedata

from rich.text import Text

_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t", "\\": "\\\\"}


def escape_control(text: str, *, keep_newlines: bool = False) -> str:
    """`text` with every control or format character (ESC, BEL, C1 codes, bidi overrides)
    written as a visible escape (`\\x1b`, `\\u202e`), so printing it cannot move the
    cursor, recolour the terminal or reorder what follows."""
    out = []
    for char in text:
        if keep_newlines and char == "\n":
            out.append(char)
        elif char in _NAMED and char != "\\":
            out.append(_NAMED[char])
        elif unicodedata.category(char) in ("Cc", "Cf"):
            code = ord(char)
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")
        else:
            out.append(char)
    return "".join(out)


def safe(text: str) -> Text:
    """`text` escaped, as a rich `Text`: rich prints it as is, never as markup."""
    return Text(escape_control(text))
