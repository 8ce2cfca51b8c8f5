"""Bulk text parsing shared by the loaders.

Files are read whole (gzip is detected by its magic bytes) and split into
tokens in one ``bytes.split()`` call; numbers are converted column by column
with numpy's string-to-number casts. The per-line layout (how many tokens each
line holds) is computed with vectorised byte scans, so malformed lines are
found without a Python loop. Only once something is wrong do we spend time
locating it, to name the file, the 1-based line and its content.
"""

from __future__ import annotations

import errno
import gzip
import os
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from gnno.exceptions import DataFormatError

PathLike = str | os.PathLike

# The bytes that ``bytes.split()`` (no argument) treats as separators; the
# vectorised layout scan must agree with it token for token.
_WHITESPACE = np.zeros(256, dtype=bool)
_WHITESPACE[[9, 10, 11, 12, 13, 32]] = True

_SHOWN_CHARS = 120


def resolve(path: PathLike) -> Path:
    """``path`` itself if it is a file, else ``path + ".gz"`` if that is one;
    raises ``FileNotFoundError`` naming ``path`` otherwise."""
    p = Path(path)
    if p.is_file():
        return p
    gz = p.with_name(p.name + ".gz")
    if gz.is_file():
        return gz
    raise FileNotFoundError(errno.ENOENT, "no such data file", str(p))


def read_bytes(path: Path) -> bytes:
    """The file's content, gunzipped when it starts with the gzip magic, with
    every line ending (``\\r\\n``, ``\\n`` or a lone ``\\r``) made ``\\n``."""
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as err:
            raise DataFormatError(f"{path}: corrupt or truncated gzip data ({err})") from None
    return normalise_newlines(raw)


def normalise_newlines(data: bytes) -> bytes:
    """``data`` with ``\\r\\n`` and lone ``\\r`` line endings made ``\\n``
    (classic Mac files end lines with ``\\r`` only)."""
    if b"\r" not in data:
        return data
    return data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")


def line_text(data: bytes, line: int) -> str:
    """Line ``line`` (0-based) of ``data``, decoded leniently, without its
    line terminator."""
    buf = np.frombuffer(data, dtype=np.uint8)
    newlines = np.flatnonzero(buf == 10)
    start = 0 if line == 0 else int(newlines[line - 1]) + 1
    end = int(newlines[line]) if line < newlines.size else len(data)
    return data[start:end].rstrip(b"\r").decode("utf-8", errors="replace")


def format_error(path: Path, data: bytes, line: int, expected: str) -> DataFormatError:
    """A ``DataFormatError`` naming ``path``, the 1-based line number of the
    0-based ``line`` and (a prefix of) its content."""
    text = line_text(data, line)
    if len(text) > _SHOWN_CHARS:
        text = text[:_SHOWN_CHARS] + "..."
    return DataFormatError(f"{path} line {line + 1}: expected {expected}, got {text!r}")


def tokens_per_line(data: bytes) -> np.ndarray:
    """``int64[n_lines]``: how many whitespace-separated tokens each line of
    ``data`` holds. A final line without a newline counts; the empty string
    after a final newline does not."""
    buf = np.frombuffer(data, dtype=np.uint8)
    if buf.size == 0:
        return np.zeros(0, dtype=np.int64)
    space = _WHITESPACE[buf]
    starts = ~space
    starts[1:] &= space[:-1]
    line_starts = np.flatnonzero(buf == 10) + 1
    line_starts = np.concatenate(([0], line_starts[line_starts < buf.size]))
    return np.add.reduceat(starts.view(np.uint8), line_starts, dtype=np.int64)


def first_bad(tokens: np.ndarray, dtype: Any) -> int:
    """Index of the first token of ``tokens`` (a bytes array known to fail the
    cast) that ``astype(dtype)`` rejects, found by halving the failing range
    so that the search costs about one more full cast."""
    lo, hi = 0, tokens.size
    while hi - lo > 1:
        mid = (lo + hi) // 2
        try:
            tokens[lo:mid].astype(dtype)
        except (ValueError, OverflowError):
            hi = mid
        else:
            lo = mid
    return lo


def convert(
    arr: np.ndarray,
    dtype: Any,
    fail: Callable[[int], Exception],
    *,
    non_negative: bool = False,
    max_value: int | None = None,
) -> np.ndarray:
    """Casts a bytes or str array to ``dtype``. ``fail(k)`` builds the error
    for element ``k``: one that does not parse, a negative integer when
    ``non_negative``, an integer above ``max_value``, or a non-finite float."""
    try:
        out = arr.astype(dtype)
    except (ValueError, OverflowError):
        raise fail(first_bad(arr, dtype)) from None
    if out.size:
        if non_negative and out.dtype.kind == "i" and out.min() < 0:
            raise fail(int(np.argmax(out < 0)))
        if max_value is not None and out.dtype.kind == "i" and out.max() > max_value:
            k = int(np.argmax(out > max_value))
            raise DataFormatError(f"{fail(k)} (ids are at most {max_value})")
        if out.dtype.kind == "f":
            finite = np.isfinite(out)
            if not finite.all():
                raise fail(int(np.argmin(finite)))
    return out


class Table:
    """A whitespace-separated text file split into tokens.

    ``counts`` is ``int64[n_lines]`` (tokens per line), ``rows`` the 0-based
    indices of the non-blank lines (blank lines are skipped everywhere) and
    ``tokens`` the list of every token in file order.
    """

    def __init__(self, path: Path, data: bytes, shown: bytes | None = None) -> None:
        self.path = path
        self.data = data
        # What error messages quote: the file as read, when ``data`` is a
        # rewritten copy with the same line breaks (e.g. '::' made tabs).
        self.shown = data if shown is None else shown
        self.counts = tokens_per_line(data)
        self.rows = np.flatnonzero(self.counts)
        self.tokens: list[bytes] = data.split()

    @classmethod
    def read(cls, path: Path) -> Table:
        return cls(path, read_bytes(path))

    def error(self, line: int, expected: str) -> DataFormatError:
        return format_error(self.path, self.shown, int(line), expected)

    def require_fields(self, n_fields: int | None, expected: str) -> int:
        """Checks that every non-blank line has ``n_fields`` tokens (or, when
        ``None``, as many as the first one, at least 2) and returns that
        number."""
        if self.rows.size == 0:
            return 0 if n_fields is None else n_fields
        per_row = self.counts[self.rows]
        if n_fields is None:
            n_fields = int(per_row[0])
            if n_fields < 2:
                raise self.error(self.rows[0], expected)
        bad = np.flatnonzero(per_row != n_fields)
        if bad.size:
            raise self.error(self.rows[bad[0]], expected)
        return n_fields

    def numbers(
        self,
        tokens: list[bytes] | np.ndarray,
        lines: np.ndarray,
        dtype: Any,
        expected: str,
        *,
        non_negative: bool = False,
        max_value: int | None = None,
    ) -> np.ndarray:
        """Converts ``tokens`` (``lines[k]`` is the 0-based line of token
        ``k``) to a ``dtype`` array; integers may be required non-negative
        and at most ``max_value``, floats are required finite."""
        arr = tokens if isinstance(tokens, np.ndarray) else np.array(tokens, dtype=np.bytes_)
        return convert(
            arr,
            dtype,
            lambda k: self.error(lines[k], expected),
            non_negative=non_negative,
            max_value=max_value,
        )

    def column(
        self,
        j: int,
        n_fields: int,
        dtype: Any,
        expected: str,
        *,
        non_negative: bool = False,
        max_value: int | None = None,
    ) -> np.ndarray:
        """Field ``j`` (0-based) of every non-blank line of a file whose
        lines all hold ``n_fields`` tokens, as a ``dtype`` array."""
        if n_fields == 0:  # no non-blank line
            return np.zeros(0, dtype=dtype)
        return self.numbers(
            self.tokens[j::n_fields],
            self.rows,
            dtype,
            expected,
            non_negative=non_negative,
            max_value=max_value,
        )
