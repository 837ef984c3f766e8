"""One gzip member from text and from pieces compressed earlier: what gzip readers read."""

from __future__ import annotations

import gzip
import subprocess
import zlib

from hypothesis import given
from hypothesis import strategies as st

from commsmon.outputs.gzipmember import Member, Piece, crc32_combine

texts = st.binary(max_size=3000) | st.builds(lambda line, n: line * n,
                                             st.binary(min_size=1, max_size=80),
                                             st.integers(0, 2000))


@given(texts, texts)
def test_crcs_combine_as_zlib_computes_the_whole(first: bytes, second: bytes) -> None:
    assert crc32_combine(zlib.crc32(first), zlib.crc32(second), len(second)) \
        == zlib.crc32(first + second)


@given(st.lists(st.tuples(st.booleans(), texts), max_size=12), texts, texts)
def test_a_member_of_pieces_and_text_reads_as_the_text(
        parts: list[tuple[bool, bytes]], one: bytes, other: bytes) -> None:
    """Pieces (packed once, maybe used twice) between text the member compresses, then
    two different endings from one start: each reads, CRC and length checked, as the
    text in order."""
    member = Member()
    sent, text = [member.header()], b""
    for packed, part in parts:
        sent.append(member.piece(Piece.pack(part)) if packed else member.text(part))
        text += part
    fork = member.copy()
    assert gzip.decompress(b"".join(sent) + member.text(one) + member.end()) == text + one
    assert gzip.decompress(b"".join(sent) + fork.text(other) + fork.end()) == text + other


def test_gzip_itself_checks_and_reads_it() -> None:
    """The gzip program (CRC and length checked) reads what a scraper would get: a piece
    used in two places, text referring back to text before a piece."""
    line = b'commsmon_device_up{site="v01",device="v01-router",kind="router"} 1.0\n'
    kept = Piece.pack(line * 500)
    member = Member()
    body = b"".join([member.header(), member.text(line * 300), member.piece(kept),
                     member.text(line * 300), member.piece(kept), member.end()])
    out = subprocess.run(["gzip", "-dc"], input=body, capture_output=True, check=True)
    assert out.stdout == line * 1600
    assert kept.unpack() == line * 500
