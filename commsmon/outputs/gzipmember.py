"""One gzip member (RFC 1952) written from text and from pieces compressed earlier.

The fleet's exposition is ~45 MB of text at 20 000 devices, and most of it is the
same from one snapshot to the next (states, inventories, readiness).  A
:class:`Piece` is a block of text compressed once, on its own: raw DEFLATE
(RFC 1951) from a fresh compressor, ended by a sync flush, so it starts and ends
on a byte boundary and refers to nothing before it.  A :class:`Member` splices
such pieces between text it compresses itself (a full flush first, so its own
later output refers to nothing before a piece either), and keeps the member's
CRC-32 by combining each piece's with the running one (zlib's ``crc32_combine``,
which Python's zlib does not expose; its arithmetic below), so a piece is never
decompressed or compressed again while its text is unchanged.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

__all__ = ["LEVEL", "Chunk", "Member", "Piece", "crc32_combine", "shift"]

LEVEL = 1  # fastest: the exposition repeats itself so much that level 1 gets ~20x

_POLY = 0xEDB88320  # CRC-32 (ISO-HDLC, as gzip and zlib use it), bit-reflected
_ONE = 1 << 31  # the polynomial 1 (x^0), reflected


def _multiply(a: int, b: int) -> int:
    """a(x) * b(x) modulo the CRC-32 polynomial, both reflected (zlib's multmodp)."""
    m, p = _ONE, 0
    while a:
        if a & m:
            p ^= b
            a ^= m
        m >>= 1
        b = (b >> 1) ^ _POLY if b & 1 else b >> 1
    return p


def _squares() -> tuple[int, ...]:
    """x^(2^n) modulo the polynomial, n = 0..31 (zlib's x2n_table)."""
    p, table = 1 << 30, []  # x^1
    for _ in range(32):
        table.append(p)
        p = _multiply(p, p)
    return tuple(table)


_X2N = _squares()


def shift(size: int) -> int:
    """x^(8 * size) modulo the polynomial: what a CRC is multiplied by when ``size``
    bytes follow it (zlib's crc32_combine_gen)."""
    p, k = _ONE, 3
    while size:
        if size & 1:
            p = _multiply(_X2N[k & 31], p)
        size >>= 1
        k += 1
    return p


def crc32_combine(first: int, second: int, second_size: int) -> int:
    """The CRC-32 of two texts one after the other, from each one's CRC-32
    (``zlib.crc32``) and the second's length in bytes."""
    return _multiply(shift(second_size), first) ^ second


@dataclass(frozen=True, slots=True)
class Piece:
    """A block of text compressed on its own, to be spliced into members.

    Attributes:
        data: raw DEFLATE, ended by a sync flush (no final block).
        crc: the text's CRC-32.
        size: the text's length, bytes.
        shift: :func:`shift` of ``size``, kept for combining.
    """

    data: bytes
    crc: int
    size: int
    shift: int

    @classmethod
    def pack(cls, text: bytes | bytearray) -> Piece:
        """``text`` (UTF-8 bytes) compressed at :data:`LEVEL` on its own."""
        packer = zlib.compressobj(LEVEL, zlib.DEFLATED, -zlib.MAX_WBITS)
        data = packer.compress(text) + packer.flush(zlib.Z_SYNC_FLUSH)
        return cls(data, zlib.crc32(text), len(text), shift(len(text)))

    def unpack(self) -> bytes:
        """The text again (for tests and tools; a member never needs it)."""
        return zlib.decompressobj(-zlib.MAX_WBITS).decompress(self.data)


Chunk = bytes | bytearray | tuple[Piece, ...]
"""Text of an exposition, or pieces of it compressed earlier, in the order they are sent."""

_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"  # deflate, no name or time, OS unknown
_LAST = zlib.compressobj(LEVEL, zlib.DEFLATED, -zlib.MAX_WBITS).flush()  # an empty final block


class Member:
    """A gzip member, written in order: :meth:`header`, then any :meth:`text` and
    :meth:`piece`, then :meth:`end`; each returns the bytes to send next.
    :meth:`copy` lets several endings share what was written before them."""

    __slots__ = ("_crc", "_packer", "_size")

    def __init__(self) -> None:
        self._packer = zlib.compressobj(LEVEL, zlib.DEFLATED, -zlib.MAX_WBITS)
        self._crc = 0
        self._size = 0

    @staticmethod
    def header() -> bytes:
        """The member's first 10 bytes: DEFLATE, no name, no time, OS unknown."""
        return _HEADER

    def text(self, text: bytes | bytearray) -> bytes:
        """``text`` compressed, flushed so a reader can unpack all sent so far."""
        self._crc = zlib.crc32(text, self._crc)
        self._size += len(text)
        return self._packer.compress(text) + self._packer.flush(zlib.Z_SYNC_FLUSH)

    def piece(self, piece: Piece) -> bytes:
        """``piece``'s data, after a full flush: what this member compresses later
        must not refer back across it."""
        self._crc = _multiply(piece.shift, self._crc) ^ piece.crc
        self._size += piece.size
        return self._packer.flush(zlib.Z_FULL_FLUSH) + piece.data

    def end(self) -> bytes:
        """The last bytes: the final block and the trailer (CRC-32, length mod 2^32)."""
        return (self._packer.flush(zlib.Z_SYNC_FLUSH) + _LAST
                + struct.pack("<II", self._crc, self._size & 0xFFFFFFFF))

    def copy(self) -> Member:
        """A member that goes on from here independently of this one."""
        other = Member.__new__(Member)
        other._packer, other._crc, other._size = self._packer.copy(), self._crc, self._size
        return other
