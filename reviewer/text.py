"""How bytes become text, decided once for every entrance (git, GitLab, spec files, names).

Code under review is not always clean UTF-8: a Latin-1 source file, a Windows-1252 comment, a
file name written on an old system. None of that may crash a run or silently drop a file. The
rule: UTF-8 where it is UTF-8 (a leading byte-order mark dropped); any line that is not is read
as Windows-1252, and bytes that even that leaves undefined as Latin-1, so every byte becomes a
character and a reader (or the model) still sees ``Jürgen`` rather than a replacement mark.
Decoding line by line keeps one odd line from changing how the rest of a patch is read.
Text that starts with a UTF-16 byte-order mark (what Windows editors call "Unicode") is read as
UTF-16 when it decodes as such; git itself treats such files as binary, but a rule file may be one.
"""

from __future__ import annotations

import unicodedata

BOM = "\ufeff"
UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")


def decode(data: bytes) -> str:
    """Text from bytes of unknown encoding; never raises (see the module's rule)."""
    if data.startswith(UTF16_BOMS):
        try:
            return data.decode("utf-16").removeprefix(BOM)
        except UnicodeDecodeError:
            pass
    try:
        return data.decode("utf-8").removeprefix(BOM)
    except UnicodeDecodeError:
        pass
    return "".join(_line(part) for part in data.splitlines(keepends=True)).removeprefix(BOM)


def _line(data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return "".join(_legacy(b) for b in data)


def _legacy(byte: int) -> str:
    # Windows-1252 leaves five bytes undefined (0x81, 0x8D, 0x8F, 0x90, 0x9D): Latin-1 takes them.
    try:
        return bytes([byte]).decode("cp1252")
    except UnicodeDecodeError:
        return bytes([byte]).decode("latin-1")


def clean(text: str) -> str:
    """Text that may hold lone surrogates (os.fsdecode of a non-UTF-8 name) made encodable."""
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return decode(text.encode("utf-8", "surrogateescape"))


def printable(text: str) -> str:
    """text safe to show on a terminal, as one line: a control character from the input (a
    file name, a line of a diff) would recolour (ESC), rewind (CR) or break the line. A line
    break or tab becomes a space; any other control character, and a lone surrogate (a name
    from os.fsdecode), becomes an escape such as \\x1b."""
    return "".join(_printable(char) for char in text)


def _printable(char: str) -> str:
    kind = unicodedata.category(char)
    if kind == "Cc" and char.isspace():
        return " "
    if kind in ("Cc", "Cs"):
        code = ord(char)
        return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"
    return char
