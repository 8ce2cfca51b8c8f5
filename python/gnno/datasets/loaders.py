"""Loaders for the common recommender dataset files. Local files only.

Every loader reads gzip transparently (a ``.gz`` sibling is used when the
plain file is absent, and gzip content is recognised by its magic bytes),
skips blank lines, accepts ``\\n`` and ``\\r\\n`` line ends, and raises

- ``FileNotFoundError`` naming the path when a file is missing;
- ``gnno.exceptions.DataFormatError`` naming the file, the 1-based line
  number and the line's content when a line is malformed or truncated, or an
  id is negative.
"""

from __future__ import annotations

import csv
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from gnno._arrays import MAX_ID, finite_float
from gnno.datasets._text import PathLike, Table, convert, format_error, read_bytes, resolve
from gnno.datasets.records import InteractionLog
from gnno.exceptions import DataFormatError, GnnoError
from gnno.interactions import Interactions

__all__ = ["NCFData", "load_ncf", "load_lightgcn", "load_movielens", "load_csv"]


def _size(*ids: np.ndarray) -> int:
    """Largest id + 1 over several id arrays (0 when all are empty)."""
    return max((int(a.max()) + 1 for a in ids if a.size), default=0)


def _read_only(arr: np.ndarray) -> np.ndarray:
    arr.flags.writeable = False
    return arr


# --------------------------------------------------------------------- NCF
@dataclass(frozen=True, eq=False)
class NCFData:
    """A dataset in the NCF layout (He et al. 2017): a training matrix, one
    held-out item per test row and the sampled negatives it is ranked against.

    - ``train``: ``Interactions`` of shape ``(n_users, n_items)``.
    - ``test_users``, ``test_items``: ``int64[n_test]``, row ``k`` of the test
      file.
    - ``negatives``: ``int64[n_test, n_neg]``, row ``k`` of the negative file
      (aligned with ``test_users[k]``) exactly as listed, duplicates and any
      appearance of the test item included.
    """

    train: Interactions
    test_users: np.ndarray
    test_items: np.ndarray
    negatives: np.ndarray

    @property
    def n_users(self) -> int:
        return self.train.n_users

    @property
    def n_items(self) -> int:
        return self.train.n_items

    @property
    def n_test(self) -> int:
        return int(self.test_users.size)

    def __repr__(self) -> str:
        return (
            f"NCFData(n_users={self.n_users}, n_items={self.n_items}, "
            f"train={self.train.nnz}, test={self.n_test}, "
            f"negatives_per_row={self.negatives.shape[1]})"
        )


_NCF_FIELDS = "tab-separated 'user item [rating timestamp]' fields, as many as on the first line"
_NCF_HEAD = re.compile(rb"\((\d+),(\d+)\)")


def _read_ncf_ratings(path: Path) -> tuple[np.ndarray, np.ndarray, Table]:
    table = Table.read(path)
    n_fields = table.require_fields(None, _NCF_FIELDS)
    users = table.column(
        0,
        n_fields,
        np.int64,
        "a non-negative integer user id in field 1",
        non_negative=True,
        max_value=MAX_ID,
    )
    items = table.column(
        1,
        n_fields,
        np.int64,
        "a non-negative integer item id in field 2",
        non_negative=True,
        max_value=MAX_ID,
    )
    return users, items, table


def _read_ncf_negatives(
    path: Path, test_path: Path, test_users: np.ndarray, test_items: np.ndarray
) -> tuple[np.ndarray, Table]:
    table = Table.read(path)
    rows = table.rows
    if rows.size == 0:
        n_fields = 1
    else:
        n_fields = max(int(table.counts[rows[0]]), 2)
    n_neg = n_fields - 1
    expected = f"'(user,item)' then {n_neg} item ids"
    table.require_fields(n_fields, expected)
    n_rows = rows.size

    heads = table.tokens[0::n_fields]
    head_users = np.empty(n_rows, dtype=np.int64)
    head_items = np.empty(n_rows, dtype=np.int64)
    # One regex match per row (not per token): cheap next to the bulk cast.
    for k, token in enumerate(heads):
        match = _NCF_HEAD.fullmatch(token)
        if match is None:
            raise table.error(rows[k], expected)
        head_users[k] = int(match[1])
        head_items[k] = int(match[2])

    n_test = test_users.size
    if n_rows > n_test:
        raise table.error(rows[n_test], f"{n_test} rows, one per line of {test_path}")
    if n_rows < n_test:
        last = int(rows[-1]) + 1 if n_rows else 0
        raise DataFormatError(
            f"{path} line {last + 1}: expected a row for test row {n_rows + 1} of "
            f"{test_path} ({n_test} rows), got end of file after {n_rows} rows"
        )
    mismatch = np.flatnonzero((head_users != test_users) | (head_items != test_items))
    if mismatch.size:
        k = int(mismatch[0])
        raise table.error(
            rows[k],
            f"'({test_users[k]},{test_items[k]})' as on test row {k + 1} of {test_path}, "
            f"then {n_neg} item ids",
        )

    grid = np.array(table.tokens, dtype=np.bytes_).reshape(n_rows, n_fields)
    negatives = table.numbers(
        grid[:, 1:].ravel(),
        np.repeat(rows, n_neg),
        np.int64,
        f"non-negative integer item ids after '(user,item)' ({n_neg} per row)",
        non_negative=True,
        max_value=MAX_ID,
    )
    return negatives.reshape(n_rows, n_neg), table


def load_ncf(prefix: PathLike) -> NCFData:
    """Loads ``{prefix}.train.rating``, ``{prefix}.test.rating`` and
    ``{prefix}.test.negative`` (each optionally ``.gz``).

    Rating files hold ``user\\titem\\trating\\ttimestamp`` lines (only the ids
    are read; every line must have as many fields as the first, at least 2);
    the negative file holds ``(user,item)\\tneg1\\t...\\tnegN`` lines whose
    ``(user,item)`` must equal the same row of the test file. Sizes are the
    largest id + 1 over all three files.
    """
    base = os.fspath(prefix)
    train_path = resolve(base + ".train.rating")
    test_path = resolve(base + ".test.rating")
    negative_path = resolve(base + ".test.negative")

    train_users, train_items, _ = _read_ncf_ratings(train_path)
    test_users, test_items, test_table = _read_ncf_ratings(test_path)
    negatives, negative_table = _read_ncf_negatives(
        negative_path, test_path, test_users, test_items
    )

    n_users = _size(train_users, test_users)
    n_items = _size(train_items, test_items, negatives)
    train = Interactions.from_pairs(train_users, train_items, n_users=n_users, n_items=n_items)
    _require_unseen(train, test_users, test_items, test_table, "test item")
    _require_unseen(
        train,
        np.repeat(test_users, negatives.shape[1]),
        negatives.ravel(),
        negative_table,
        "listed negative",
        per_row=negatives.shape[1],
    )
    return NCFData(
        train=train,
        test_users=_read_only(test_users),
        test_items=_read_only(test_items),
        negatives=_read_only(negatives),
    )


def _require_unseen(
    train: Interactions,
    users: np.ndarray,
    items: np.ndarray,
    table: Table,
    what: str,
    per_row: int = 1,
) -> None:
    """The NCF protocol ranks each test item against items the user never
    interacted with: a test item or a listed negative among the user's
    training items is an error of the file (``table``, ``per_row`` items a
    line), not a negative."""
    seen = train.contains(users, items)
    if seen.any():
        k = int(np.argmax(seen))
        raise table.error(
            table.rows[k // per_row],
            f"a {what} the user never interacted with, but item {int(items[k])} is one of "
            f"user {int(users[k])}'s training items ({int(seen.sum())} such in the file)",
        )


# ---------------------------------------------------------------- LightGCN
def _read_lightgcn(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(users, items, line_users)``: the pairs of the file and the user of
    every non-blank line (a user may list no items)."""
    table = Table.read(path)
    rows = table.rows
    counts = table.counts[rows]
    tokens = np.array(table.tokens, dtype=np.bytes_)
    first = np.zeros(rows.size, dtype=np.int64)
    np.cumsum(counts[:-1], out=first[1:])
    line_users = table.numbers(
        tokens[first],
        rows,
        np.int64,
        "a non-negative integer user id, then item ids",
        non_negative=True,
        max_value=MAX_ID,
    )
    is_item = np.ones(tokens.size, dtype=bool)
    is_item[first] = False
    items = table.numbers(
        tokens[is_item],
        np.repeat(rows, counts - 1),
        np.int64,
        "non-negative integer item ids after the user id",
        non_negative=True,
        max_value=MAX_ID,
    )
    return np.repeat(line_users, counts - 1), items, line_users


def load_lightgcn(directory: PathLike) -> tuple[Interactions, Interactions]:
    """Loads ``train.txt`` and ``test.txt`` (each optionally ``.gz``) of a
    LightGCN-format dataset: one line per user, ``user item item ...``,
    0-based ids. Returns ``(train, test)``, both of shape ``(n_users,
    n_items)`` with sizes the largest id + 1 over both files."""
    folder = Path(directory)
    train_u, train_i, train_lines = _read_lightgcn(resolve(folder / "train.txt"))
    test_u, test_i, test_lines = _read_lightgcn(resolve(folder / "test.txt"))
    n_users = _size(train_lines, test_lines)
    n_items = _size(train_i, test_i)
    return (
        Interactions.from_pairs(train_u, train_i, n_users=n_users, n_items=n_items),
        Interactions.from_pairs(test_u, test_i, n_users=n_users, n_items=n_items),
    )


# ------------------------------------------------------ logs with raw ids
def _dense(raw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(dense, uniques)``: ``uniques[dense] == raw``, ``uniques`` sorted;
    string ids come back as an object array of ``str``."""
    uniques, inverse = np.unique(raw, return_inverse=True)
    if uniques.dtype.kind == "U":
        uniques = uniques.astype(object)
    return inverse.reshape(-1).astype(np.int64, copy=False), uniques


def _make_log(
    users: np.ndarray,
    items: np.ndarray,
    ratings: np.ndarray | None,
    timestamps: np.ndarray | None,
    min_rating: float | None,
) -> InteractionLog:
    """Applies the rating threshold, then maps raw ids to dense ids."""
    if min_rating is not None:
        keep = ratings >= min_rating  # type: ignore[operator]
        users, items = users[keep], items[keep]
        ratings = ratings[keep]  # type: ignore[index]
        timestamps = None if timestamps is None else timestamps[keep]
    dense_users, user_ids = _dense(users)
    dense_items, item_ids = _dense(items)
    return InteractionLog(
        users=dense_users,
        items=dense_items,
        ratings=ratings,
        timestamps=timestamps,
        user_ids=user_ids,
        item_ids=item_ids,
    )


def _check_min_rating(min_rating: float | None, has_ratings: bool) -> float | None:
    if min_rating is None:
        return None
    value = finite_float(min_rating, "min_rating")
    if not has_ratings:
        raise GnnoError(f"min_rating={min_rating!r} needs a rating column")
    return value


def load_movielens(path: PathLike, min_rating: float | None = None) -> InteractionLog:
    """Loads a MovieLens ratings file into an ``InteractionLog`` with dense
    ids (``user_ids`` / ``item_ids`` keep the raw ids, sorted ascending).

    Formats, told apart by content and extension: ``u.data`` (ML-100K;
    whitespace-separated ``user item rating timestamp``), ``ratings.dat``
    (ML-1M/10M; ``user::item::rating::timestamp``), ``ratings.csv``
    (ML-20M/25M/latest; header ``userId,movieId,rating,timestamp``).
    ``min_rating`` keeps only ratings ``>= min_rating``, before remapping.
    Ratings are ``float32`` (stars), timestamps ``int64`` (Unix seconds).
    """
    min_rating = _check_min_rating(min_rating, has_ratings=True)
    file = resolve(path)
    name = file.name.removesuffix(".gz")
    if name.endswith(".csv"):
        return load_csv(file, "userId", "movieId", "rating", "timestamp", min_rating=min_rating)

    raw = read_bytes(file)
    first_line = raw.lstrip().split(b"\n", 1)[0]
    if b"::" in first_line:
        # '::' becomes a tab: same line breaks, so errors still point at the
        # right line and quote the file as written.
        table = Table(file, raw.replace(b"::", b"\t"), shown=raw)
        layout = "'user::item::rating::timestamp'"
    else:
        table = Table(file, raw)
        layout = "'user item rating timestamp' (tab-separated)"
    table.require_fields(4, f"4 fields {layout}")
    users = table.column(
        0, 4, np.int64, f"a non-negative integer user id in {layout}", non_negative=True
    )
    items = table.column(
        1, 4, np.int64, f"a non-negative integer item id in {layout}", non_negative=True
    )
    ratings = table.column(2, 4, np.float32, f"a finite number as rating in {layout}")
    timestamps = table.column(3, 4, np.int64, f"an integer timestamp in {layout}")
    return _make_log(users, items, ratings, timestamps, min_rating)


# --------------------------------------------------------------- CSV / TSV
_ROLES = ("user_col", "item_col", "rating_col", "time_col")


@dataclass
class _Fields:
    """A parsed delimited file: ``cell(j)`` gives column ``j`` as a bytes or
    str array (one value per data row); ``error(k, expected)`` builds the
    error for data row ``k``, ``error(-1, expected)`` for the header."""

    names: list[str] | None
    n_fields: int
    n_rows: int
    cell: Callable[[int], np.ndarray]
    error: Callable[[int, str], DataFormatError]


def _fields_fast(file: Path, data: bytes, sep: str, header: bool) -> _Fields | None:
    """The common case, vectorised: ASCII, no quotes, no spaces inside
    fields. Then ``sep`` can become a space and the whitespace tokenizer
    applies. ``None`` when the file is not that simple, or when any row has
    a different field count (the general path then finds and reports it)."""
    sep_bytes = sep.encode()
    if not data.isascii() or b'"' in data:
        return None
    if any(c in data for c in (b" ", b"\t", b"\x0b", b"\x0c") if c != sep_bytes):
        return None
    table = Table(file, data.replace(sep_bytes, b" "), shown=data)
    if table.rows.size == 0:
        return None
    per_row = table.counts[table.rows]
    n_fields = int(per_row[0])
    if np.any(per_row != n_fields):
        return None
    start = 1 if header else 0
    names = [t.decode() for t in table.tokens[:n_fields]] if header else None
    cells = np.array(table.tokens[start * n_fields :], dtype=np.bytes_).reshape(-1, n_fields)
    return _Fields(
        names=names,
        n_fields=n_fields,
        n_rows=cells.shape[0],
        cell=lambda j: cells[:, j],
        error=lambda k, expected: table.error(table.rows[k + start], expected),
    )


def _fields_general(file: Path, data: bytes, sep: str, header: bool) -> _Fields:
    """Any UTF-8 file, split by the ``csv`` module (quotes, spaces, empty
    fields) when ``sep`` is one character, by ``str.split`` otherwise.
    Every row must have as many fields as the first."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise DataFormatError(f"{file}: not UTF-8 text ({err})") from None
    all_lines = text.replace("\r\n", "\n").split("\n")
    line_of = [k for k, line in enumerate(all_lines) if line.strip()]
    lines = [all_lines[k] for k in line_of]
    if len(sep) == 1:
        rows = list(csv.reader(lines, delimiter=sep))
        if len(rows) != len(lines):  # a quoted field spans lines
            reader = csv.reader(lines, delimiter=sep)
            first_lines, previous = [], 0
            for _ in reader:
                first_lines.append(line_of[previous])
                previous = reader.line_num
            line_of = first_lines
    else:
        rows = [line.split(sep) for line in lines]

    def error(k: int, expected: str) -> DataFormatError:
        return format_error(file, data, line_of[k], expected)

    n_fields = len(rows[0]) if rows else 0
    widths = np.fromiter(map(len, rows), dtype=np.int64, count=len(rows))
    bad = np.flatnonzero(widths != n_fields)
    if bad.size:
        raise error(int(bad[0]), f"{n_fields} {sep!r}-separated fields")
    start = 1 if header and rows else 0
    body = rows[start:]
    return _Fields(
        names=[name.strip() for name in rows[0]] if header and rows else None,
        n_fields=n_fields,
        n_rows=len(body),
        cell=lambda j: np.array([row[j].strip() for row in body], dtype=str),
        error=lambda k, expected: error(k + start, expected),
    )


def _column_index(spec: Any, role: str, fields: _Fields, header: bool) -> int:
    """0-based position of column ``spec`` (a header name or a position)."""
    if isinstance(spec, (int, np.integer)) and not isinstance(spec, bool):
        if spec < 0:
            raise GnnoError(f"{role} must be a column name or a position >= 0, got {spec!r}")
        j = int(spec)
    elif isinstance(spec, str):
        if not header:
            raise GnnoError(f"{role}={spec!r} is a name, but header=False: give a 0-based position")
        if fields.names is None or spec not in fields.names:
            raise fields.error(-1, f"a header naming column {spec!r}")
        j = fields.names.index(spec)
    else:
        raise GnnoError(f"{role} must be a column name or a 0-based position, got {spec!r}")
    if j >= fields.n_fields and fields.n_rows:
        raise fields.error(0, f"a column at position {j} ({role}), but rows have {fields.n_fields}")
    return j


def _raw_ids(fields: _Fields, j: int, what: str, spec: Any) -> np.ndarray:
    """Column ``j`` as int64 ids when every value is an integer (negative
    ones are an error), else as a str array."""
    values = fields.cell(j)
    empty = np.flatnonzero(values == values.dtype.type())
    if empty.size:
        raise fields.error(int(empty[0]), f"a non-empty {what} id in column {spec!r}")
    try:
        ids = values.astype(np.int64)
    except (ValueError, OverflowError):
        return values.astype(str)
    negative = np.flatnonzero(ids < 0)
    if negative.size:
        raise fields.error(int(negative[0]), f"a non-negative {what} id in column {spec!r}")
    return ids


def load_csv(
    path: PathLike,
    user_col: str | int,
    item_col: str | int,
    rating_col: str | int | None = None,
    time_col: str | int | None = None,
    sep: str = ",",
    header: bool = True,
    min_rating: float | None = None,
) -> InteractionLog:
    """Loads a delimited text file (CSV, TSV, ...) into an ``InteractionLog``.

    Columns are named (``header=True``: the first non-blank line names them)
    or given as 0-based positions (allowed with a header too). Every row must
    have as many fields as the first. Raw ids (stripped of surrounding
    spaces) are remapped to dense ids in sorted order; they stay integers
    (``user_ids`` int64) when every id of the column is an integer, and
    become strings (object array) otherwise. Ratings are parsed as
    ``float32``, times as ``int64`` (e.g. Unix seconds). ``min_rating``
    keeps ratings ``>= min_rating``. Quoted fields follow the ``csv``
    module's rules when ``sep`` is one character; a longer ``sep`` splits
    plainly.
    """
    if not isinstance(sep, str) or not sep or any(c in sep for c in "\r\n\"'"):
        raise GnnoError(
            f"sep must be a non-empty string without quotes or line breaks, got {sep!r}"
        )
    min_rating = _check_min_rating(min_rating, has_ratings=rating_col is not None)
    file = resolve(path)
    data = read_bytes(file)
    fields = _fields_fast(file, data, sep, header) or _fields_general(file, data, sep, header)
    if header and fields.names is None:
        raise DataFormatError(f"{file}: expected a header line, got an empty file")

    specs = dict(zip(_ROLES, (user_col, item_col, rating_col, time_col), strict=True))
    columns = {
        role: _column_index(spec, role, fields, header)
        for role, spec in specs.items()
        if spec is not None
    }
    users = _raw_ids(fields, columns["user_col"], "user", user_col)
    items = _raw_ids(fields, columns["item_col"], "item", item_col)

    def numbers(role: str, dtype: Any, expected: str) -> np.ndarray | None:
        if role not in columns:
            return None
        return convert(fields.cell(columns[role]), dtype, lambda k: fields.error(k, expected))

    ratings = numbers("rating_col", np.float32, f"a finite number in column {rating_col!r}")
    timestamps = numbers("time_col", np.int64, f"an integer time in column {time_col!r}")
    return _make_log(users, items, ratings, timestamps, min_rating)
