"""The 512-byte ustar header, written and parsed by hand.

Written: every field fixed (mode 0644, uid/gid 0, mtime 0, no user or group names, POSIX magic),
so the same member gives the same bytes and an archive is reproducible. A size of 8 GiB or more
does not fit ustar's 11 octal digits and goes in a pax `size` record before the header, as does a
sha512 blob's name (its 128-character file name overflows ustar's 100-byte name field), as GNU tar
and Go's archive/tar do.

Parsed: only what a layout reader needs (name with prefix, size, type), faster than `tarfile`'s
full `TarInfo` (benchmarks/layout.py), with the checksum checked so a gzip'd or corrupt archive is
refused at its first header instead of being read as nonsense.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

__all__ = ["BLOCK", "END_OF_ARCHIVE", "Header", "HeaderError", "build", "padding", "parse", "pax_records"]

BLOCK: Final = 512
END_OF_ARCHIVE: Final = bytes(2 * BLOCK)
MAX_OCTAL_SIZE: Final = 8**11 - 1
_ZERO_BLOCK: Final = bytes(BLOCK)
_MODE_0644: Final = b"0000644\x00"
_ZERO_ID: Final = b"0000000\x00"
_MTIME_0: Final = b"00000000000\x00"
_MAGIC: Final = b"ustar\x0000"

REGULAR: Final = (b"0", b"\x00")
DIRECTORY: Final = b"5"
PAX_HEADER: Final = b"x"
PAX_GLOBAL: Final = b"g"
GNU_LONG_NAME: Final = b"L"


class HeaderError(ValueError):
    """A block that is not a valid tar header (bad checksum, bad number, malformed pax record)."""


@dataclass(frozen=True, slots=True)
class Header:
    name: str
    size: int
    kind: bytes  # the typeflag byte


def padding(size: int) -> int:
    """Zero bytes after a body of `size` bytes, up to the next block."""
    return -size % BLOCK


def _split_name(name: str) -> tuple[bytes, bytes] | None:
    """ustar's name and prefix fields for `name`, or None when it does not fit them."""
    encoded = name.encode()
    if len(encoded) <= 100:
        return encoded, b""
    cut = encoded.rfind(b"/", 0, 156)
    if cut <= 0 or len(encoded) - cut - 1 > 100:
        return None
    return encoded[cut + 1 :], encoded[:cut]


def _header(base: bytes, prefix: bytes, size: int, kind: bytes) -> bytes:
    block = bytearray(BLOCK)
    block[0 : len(base)] = base
    block[100:108] = _MODE_0644
    block[108:116] = _ZERO_ID
    block[116:124] = _ZERO_ID
    block[124:136] = b"%011o\x00" % size if size <= MAX_OCTAL_SIZE else b"00000000000\x00"
    block[136:148] = _MTIME_0
    block[148:156] = b"        "
    block[156:157] = kind
    block[257:265] = _MAGIC
    block[345 : 345 + len(prefix)] = prefix
    block[148:156] = b"%06o\x00 " % sum(block)
    return bytes(block)


def build(name: str, size: int) -> bytes:
    """The header of a regular file member. A name that does not fit ustar (a sha512 blob's
    128-character file name) or a size of 8 GiB or more goes in a pax record before it."""
    fields = _split_name(name)
    records = b""
    if fields is None:
        records += pax_record("path", name)
        fields = name.encode()[:100], b""
    if size > MAX_OCTAL_SIZE:
        records += pax_record("size", str(size))
    member = _header(*fields, size, b"0")
    if not records:
        return member
    pax_name = b"PaxHeaders/" + fields[0][:89]
    return _header(pax_name, b"", len(records), PAX_HEADER) + records + bytes(padding(len(records))) + member


def pax_record(key: str, value: str) -> bytes:
    """One `<length> <key>=<value>\\n` record, its length counting itself."""
    body = f" {key}={value}\n".encode()
    length = len(body) + 1
    while len(str(length).encode()) + len(body) != length:
        length += 1
    return str(length).encode() + body


def pax_records(data: bytes) -> dict[str, str]:
    """The records of a pax extended header body."""
    records: dict[str, str] = {}
    position = 0
    while position < len(data):
        space = data.find(b" ", position)
        if space < 0:
            raise HeaderError("malformed pax record")
        try:
            length = int(data[position:space])
        except ValueError:
            raise HeaderError("malformed pax record length") from None
        record = data[space + 1 : position + length]
        if length <= 0 or not record.endswith(b"\n") or b"=" not in record:
            raise HeaderError("malformed pax record")
        key, _, value = record[:-1].partition(b"=")
        records[key.decode("utf-8", "replace")] = value.decode("utf-8", "replace")
        position += length
    return records


def _number(field: bytes) -> int:
    if field[0] & 0x80:  # GNU base-256, for sizes beyond 8 GiB
        return int.from_bytes(field[1:], "big") | ((field[0] & 0x7F) << (8 * (len(field) - 1)))
    digits = field.split(b"\x00", 1)[0].strip()
    try:
        return int(digits, 8) if digits else 0
    except ValueError:
        raise HeaderError(f"invalid number {field!r} in tar header") from None


def parse(block: bytes) -> Header | None:
    """The header in `block`, or None for a zero block (the end of the archive)."""
    if block == _ZERO_BLOCK:
        return None
    if _number(block[148:156]) != sum(block) - sum(block[148:156]) + 256:
        raise HeaderError("tar header checksum mismatch (not a tar archive, or a corrupt one)")
    name = block[:100].split(b"\x00", 1)[0]
    if block[257:263] == b"ustar\x00" and block[345]:
        name = block[345:500].split(b"\x00", 1)[0] + b"/" + name
    return Header(name.decode("utf-8", "surrogateescape"), _number(block[124:136]), block[156:157])
