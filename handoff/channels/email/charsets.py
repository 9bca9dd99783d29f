"""Text of a declared charset, decoded as the mail clients that wrote it do.

Mail clients on Windows and the web write a charset's Windows superset under the plain label:
Outlook labels cp932 text `Shift_JIS` and NEC/IBM extensions inside `ISO-2022-JP` (① ②, 髙),
labels windows-1252 text `iso-8859-1` (curly quotes, €), and so on. The WHATWG Encoding Standard
(https://encoding.spec.whatwg.org/#names-and-labels) codifies which decoder browsers use for each
label; `SUPERSETS` follows it, naming Python's own codecs (the mapping tables are the standard
library's; only the label → codec choice is ours). ISO-2022-JP is decoded like Microsoft's
CP50220: each JIS X 0208 pair is turned into its Shift_JIS bytes and decoded as cp932, so the NEC
row 13 and the NEC-selected IBM extensions survive.

`decode(payload, label)` tries the declared label's supersets first, then the label itself;
it returns None when none of them decodes the bytes without error, so the caller can fall back
to detection (charset-normalizer) instead of producing U+FFFD.
"""

from __future__ import annotations

import codecs

# WHATWG label -> the codecs to try, superset first (Python codec names)
_LATIN1 = ("cp1252",)
SUPERSETS: dict[str, tuple[str, ...]] = {
    **{label: _LATIN1 for label in (
        "us-ascii", "ascii", "ansi_x3.4-1968", "iso-8859-1", "iso8859-1", "iso_8859-1", "latin1", "l1",
        "cp819", "ibm819", "iso-ir-100", "windows-1252", "cp1252", "x-cp1252")},
    **{label: ("cp1254",) for label in ("iso-8859-9", "iso8859-9", "latin5", "l5", "iso-ir-148", "windows-1254")},
    **{label: ("cp874",) for label in ("tis-620", "iso-8859-11", "iso8859-11", "dos-874", "windows-874")},
    **{label: ("gb18030",) for label in ("gb2312", "gbk", "x-gbk", "chinese", "csgb2312", "iso-ir-58",
                                         "euc-cn", "cp936", "gb_2312-80")},
    **{label: ("cp949",) for label in ("euc-kr", "ks_c_5601-1987", "ks_c_5601-1989", "ksc5601", "ksc_5601",
                                       "korean", "csksc56011987", "iso-ir-149", "windows-949", "cp949")},
    **{label: ("cp932",) for label in ("shift_jis", "shift-jis", "sjis", "x-sjis", "ms_kanji", "csshiftjis",
                                       "windows-31j", "ms932", "cp932")},
    **{label: ("cp50220",) for label in ("iso-2022-jp", "csiso2022jp")},
    **{label: ("euc_jp", "euc_jis_2004") for label in ("euc-jp", "x-euc-jp", "cseucpkdfmtjapanese")},
    **{label: ("big5hkscs", "cp950") for label in ("big5", "big5-hkscs", "cn-big5", "csbig5", "x-x-big5")},
    **{label: ("iso-8859-8",) for label in ("iso-8859-8-i", "csiso88598i", "logical")},
}

_ESC = 0x1B


def decode(payload: bytes, label: str | None) -> str | None:
    """`payload` as text in the declared charset `label` (or its superset), None when the bytes
    are not valid in any of them (or the label is unknown)."""
    name = (label or "").strip().strip('"').lower()
    candidates = [*SUPERSETS.get(name, ()), name] if name else []
    for codec in dict.fromkeys(candidates):
        try:
            if codec == "cp50220":
                return iso2022jp_as_cp932(payload)
            return payload.decode(codec)
        except (LookupError, UnicodeDecodeError, ValueError):
            continue
    return None


def _sjis_pair(j1: int, j2: int) -> bytes:
    """The Shift_JIS bytes of one JIS X 0208 row/cell pair (both 0x21-0x7E)."""
    s1 = ((j1 + 1) >> 1) + (0x70 if j1 <= 0x5E else 0xB0)
    if j1 % 2:
        s2 = j2 + (0x1F if j2 < 0x60 else 0x20)
    else:
        s2 = j2 + 0x7E
    return bytes((s1, s2))


def iso2022jp_as_cp932(payload: bytes) -> str:
    """ISO-2022-JP (RFC 1468) read like CP50220: JIS X 0208 pairs mapped to Shift_JIS and decoded
    as cp932. ValueError for an escape sequence or byte outside the encoding."""
    out = bytearray()
    mode = "ascii"  # ascii | jis | kana
    i, n = 0, len(payload)
    while i < n:
        byte = payload[i]
        if byte == _ESC:
            seq = payload[i + 1:i + 3]
            if seq in (b"(B", b"(J"):
                mode = "ascii"
            elif seq in (b"$@", b"$B"):
                mode = "jis"
            elif seq == b"(I":
                mode = "kana"
            else:
                raise ValueError(f"unsupported escape sequence {seq!r}")
            i += 3
            continue
        if byte in (0x0A, 0x0D):  # a line end returns to ASCII in lenient readers
            mode = "ascii" if mode != "ascii" else mode
            out.append(byte)
            i += 1
            continue
        if mode == "jis":
            if i + 1 >= n or not (0x21 <= byte <= 0x7E and 0x21 <= payload[i + 1] <= 0x7E):
                raise ValueError(f"broken JIS pair at byte {i}")
            out += _sjis_pair(byte, payload[i + 1])
            i += 2
            continue
        if mode == "kana":
            if not 0x21 <= byte <= 0x5F:
                raise ValueError(f"broken half-width katakana at byte {i}")
            out.append(byte + 0x80)
        elif byte >= 0x80:
            raise ValueError(f"8-bit byte {byte:#x} in ISO-2022-JP")
        else:
            out.append(byte)
        i += 1
    return codecs.decode(bytes(out), "cp932")
