"""The prompt-injection scanner's decoders: the payloads hidden in a text that can be read without a key
(garak's ``encoding`` probes: base64, base32, hex, binary, URL, HTML entities, backslash-u escapes, ROT13
and Caesar shifts, Atbash, Morse, Braille, leetspeak, reversed and spelled-out text). The scanner runs its
patterns on each decoded text (``clearlm.govern.injection``).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import html
import re
import urllib.parse

_I = re.IGNORECASE
BASE64 = re.compile(r"[A-Za-z0-9+/]{16,}={0,2}")
HEX = re.compile(r"\b(?:[0-9a-fA-F]{2}\s?){16,}\b")
LEET = str.maketrans("013457@$", "oieastas")
BASE32 = re.compile(r"\b[A-Z2-7]{16,}={0,6}")
BINARY = re.compile(r"\b(?:[01]{8}\s?){4,}")
MORSE = re.compile(r"(?:[.\-•·_]{1,7}[ /|]+){6,}[.\-•·_]{1,7}")
UNI_ESCAPE = re.compile(r"\\u([0-9a-fA-F]{4})|\\x([0-9a-fA-F]{2})")
ATBASH = str.maketrans(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ",
    "zyxwvutsrqponmlkjihgfedcbaZYXWVUTSRQPONMLKJIHGFEDCBA",
)
# International Morse code (ITU-R M.1677-1) and English Braille grade 1 letters (U+2800 block).
_MORSE = (
    ".- -... -.-. -.. . ..-. --. .... .. .--- -.- .-.. -- -. --- .--. --.- .-. ... - ..- ...- .-- -..- -.-- --.."
    " ----- .---- ..--- ...-- ....- ..... -.... --... ---.. ----."
)
MORSE_CODE = dict(zip(_MORSE.split(), "abcdefghijklmnopqrstuvwxyz0123456789", strict=True))
BRAILLE = dict(zip("⠁⠃⠉⠙⠑⠋⠛⠓⠊⠚⠅⠇⠍⠝⠕⠏⠟⠗⠎⠞⠥⠧⠺⠭⠽⠵⠀", "abcdefghijklmnopqrstuvwxyz ", strict=True))


def decoded_payloads(text: str) -> list[str]:
    """Plausible hidden payloads: base64, hex and URL-encoded blobs decoded; the text read backwards, in
    leetspeak, with letters spelled out one by one, and under every Caesar shift when it speaks of one."""
    out = [text[::-1], text.translate(LEET), re.sub(r"(?<=\b\w)[-. ](?=\w\b)", "", text)]
    if "%" in text:
        out.append(urllib.parse.unquote(text))
    if "&" in text:
        out.append(html.unescape(text))
    if UNI_ESCAPE.search(text):
        out.append(UNI_ESCAPE.sub(lambda m: chr(int(m.group(1) or m.group(2), 16)), text))
    if re.search(r"\batbash\b|\bmirror(ed)? alphabet\b", text, _I):
        out.append(text.translate(ATBASH))
    if any(c in BRAILLE for c in text):
        out.append("".join(BRAILLE.get(c, c) for c in text))
    for m in MORSE.finditer(text):
        words = re.split(
            r"\s*[/|]\s*|\s{2,}", m.group(0).replace("•", ".").replace("·", ".").replace("_", "-")
        )
        out.append(" ".join("".join(MORSE_CODE.get(c, "") for c in w.split()) for w in words))
    for m in BINARY.finditer(text):
        with contextlib.suppress(ValueError):
            out.append("".join(chr(int(b, 2)) for b in m.group(0).split()))
    for m in BASE32.finditer(text):
        with contextlib.suppress(binascii.Error, UnicodeDecodeError, ValueError):
            out.append(base64.b32decode(m.group(0) + "=" * (-len(m.group(0)) % 8)).decode("utf-8"))
    for m in BASE64.finditer(text):
        with contextlib.suppress(binascii.Error, UnicodeDecodeError, ValueError):
            out.append(base64.b64decode(m.group(0) + "=" * (-len(m.group(0)) % 4)).decode("utf-8"))
    for m in HEX.finditer(text):
        with contextlib.suppress(ValueError, UnicodeDecodeError):
            out.append(bytes.fromhex(m.group(0).replace(" ", "")).decode("utf-8"))
    if re.search(r"\b(rot-?\d+|caesar|cipher|shift(ed)? (by )?\d+)\b", text, _I):
        out += [_shift(text, k) for k in range(1, 26)]
    return out


def _shift(text: str, k: int) -> str:
    lower = "abcdefghijklmnopqrstuvwxyz"
    table = str.maketrans(lower + lower.upper(), lower[k:] + lower[:k] + (lower[k:] + lower[:k]).upper())
    return text.translate(table)
