"""Loaders and ``InteractionLog``: small files written to ``tmp_path`` (plain,
gzip, CRLF, blank lines, every malformed case) and the real datasets."""

from __future__ import annotations

import gzip
import re
from pathlib import Path

import numpy as np
import pytest

from gnno import Interactions
from gnno.datasets import (
    InteractionLog,
    NCFData,
    load_csv,
    load_lightgcn,
    load_movielens,
    load_ncf,
)
from gnno.exceptions import DataFormatError, GnnoError, IdOutOfRangeError, ShapeError


def write(path: Path, text: str, *, gz: bool = False, crlf: bool = False) -> Path:
    data = text.replace("\n", "\r\n") if crlf else text
    if gz:
        path = path.with_name(path.name + ".gz")
        path.write_bytes(gzip.compress(data.encode()))
    else:
        path.write_bytes(data.encode())
    return path


def pairs_of(m: Interactions) -> set[tuple[int, int]]:
    users, items = m.to_pairs()
    return set(zip(users.tolist(), items.tolist(), strict=True))


def as_quoted(text: str) -> str:
    """``text`` as messages quote a line (``repr`` escapes, e.g. tabs)."""
    return repr(text)[1:-1]


def line_error(path: Path | str, line: int) -> str:
    """The start of the message a malformed line must produce."""
    return re.escape(f"{path} line {line}: expected")


# ------------------------------------------------------------------ NCF
TRAIN = "0\t1\t5\t100\n0\t2\t3\t101\n1\t1\t4\t102\n2\t0\t1\t103\n"
TEST = "0\t3\t5\t978824351\n1\t0\t3\t978300174\n2\t4\t2\t978300000\n"
NEGATIVE = "(0,3)\t4\t5\t4\n(1,0)\t2\t9\t3\n(2,4)\t1\t6\t2\n"


def ncf_files(tmp_path: Path, train=TRAIN, test=TEST, negative=NEGATIVE, **kw) -> str:
    write(tmp_path / "d.train.rating", train, **kw)
    write(tmp_path / "d.test.rating", test, **kw)
    write(tmp_path / "d.test.negative", negative, **kw)
    return str(tmp_path / "d")


@pytest.mark.parametrize("kw", [{}, {"gz": True}, {"crlf": True}, {"gz": True, "crlf": True}])
def test_ncf_loads_plain_gzip_and_crlf(tmp_path: Path, kw: dict) -> None:
    data = load_ncf(ncf_files(tmp_path, **kw))
    assert isinstance(data, NCFData)
    # item 9 only appears among the negatives and still sizes the matrix
    assert (data.n_users, data.n_items) == (3, 10)
    assert pairs_of(data.train) == {(0, 1), (0, 2), (1, 1), (2, 0)}
    assert data.test_users.tolist() == [0, 1, 2]
    assert data.test_items.tolist() == [3, 0, 4]
    assert data.test_users.dtype == data.negatives.dtype == np.int64
    # rows as listed, duplicates and order kept
    assert data.negatives.tolist() == [[4, 5, 4], [2, 9, 3], [1, 6, 2]]
    assert data.n_test == 3


def test_ncf_only_train_gzipped_and_trailing_blank_lines(tmp_path: Path) -> None:
    write(tmp_path / "d.train.rating", TRAIN + "\n\n", gz=True)
    write(tmp_path / "d.test.rating", TEST + "\n")
    write(tmp_path / "d.test.negative", NEGATIVE + "\n \n")
    data = load_ncf(tmp_path / "d")
    assert data.train.nnz == 4 and data.negatives.shape == (3, 3)


def test_ncf_arrays_are_read_only(tmp_path: Path) -> None:
    data = load_ncf(ncf_files(tmp_path))
    with pytest.raises(ValueError):
        data.negatives[0, 0] = 1


@pytest.mark.parametrize(
    ("which", "text", "line", "shown"),
    [
        ("train", TRAIN + "3\t1\t5\n", 5, "3\t1\t5"),  # truncated line
        ("train", "0\t1\t5\t1\n0\tx\t5\t1\n", 2, "0\tx\t5\t1"),
        ("train", "0\t1\t5\t1\n0\t1.5\t5\t1\n", 2, "1.5"),
        ("train", "0\t1\t5\t1\n\n-1\t2\t5\t1\n", 3, "-1\t2"),  # negative id
        ("train", "7\n", 1, "7"),  # single field
        ("test", "0\t3\t5\t1\n1\t0\n2\t4\t2\t1\n", 2, "1\t0"),
        ("negative", "(0,3)\t4\t5\t4\n(1,0)\t2\t9\n(2,4)\t1\t0\t2\n", 2, "(1,0)\t2\t9"),
        ("negative", "(0,3)\t4\t5\t4\n(1;0)\t2\t9\t3\n(2,4)\t1\t0\t2\n", 2, "(1;0)"),
        ("negative", "(0,3)\t4\t5\t4\n1,0\t2\t9\t3\n(2,4)\t1\t0\t2\n", 2, "1,0"),
        ("negative", "(0,3)\t4\t5\t4\n(1,0)\t2\t9\t3\n(2,4)\t1\t-2\t2\n", 3, "-2"),
        ("negative", "(0,3)\t4\t5\t4\n(1,0)\t2\t9\t3\n(2,4)\t1\tz\t2\n", 3, "z"),
        # (user,item) must match the same row of the test file
        ("negative", "(0,3)\t4\t5\t4\n(1,1)\t2\t9\t3\n(2,4)\t1\t0\t2\n", 2, "(1,1)"),
        ("negative", "(0,3)\t4\t5\t4\n(2,4)\t1\t0\t2\n(1,0)\t2\t9\t3\n", 2, "(2,4)"),
        # one row too many
        ("negative", NEGATIVE + "(3,1)\t1\t2\t3\n", 4, "(3,1)"),
    ],
)
def test_ncf_malformed_lines_name_file_line_and_content(
    tmp_path: Path, which: str, text: str, line: int, shown: str
) -> None:
    files = {"train": TRAIN, "test": TEST, "negative": NEGATIVE}
    files[which] = text
    prefix = ncf_files(tmp_path, **files)
    path = f"{prefix}.{'test.negative' if which == 'negative' else which + '.rating'}"
    with pytest.raises(DataFormatError, match=line_error(path, line)) as info:
        load_ncf(prefix)
    assert as_quoted(shown) in str(info.value)


@pytest.mark.parametrize(
    ("which", "text", "line", "needle"),
    [
        # user 1's test item 1 is one of its training items
        (
            "test",
            "0\t3\t5\t1\n1\t1\t3\t1\n2\t4\t2\t1\n",
            2,
            "item 1 is one of user 1's training items (1 such in the file)",
        ),
        # user 2 lists its training item 0 among its negatives (line 3)
        (
            "negative",
            "(0,3)\t4\t5\t4\n(1,0)\t2\t9\t3\n(2,4)\t1\t0\t0\n",
            3,
            "item 0 is one of user 2's training items (2 such in the file)",
        ),
    ],
)
def test_ncf_test_and_negative_items_must_be_unseen(
    tmp_path: Path, which: str, text: str, line: int, needle: str
) -> None:
    files = {"test": TEST, "negative": NEGATIVE, which: text}
    if which == "test":  # the negative file repeats the test pairs
        files["negative"] = NEGATIVE.replace("(1,0)", "(1,1)")
    prefix = ncf_files(tmp_path, **files)
    path = f"{prefix}.{'test.negative' if which == 'negative' else 'test.rating'}"
    with pytest.raises(DataFormatError, match=line_error(path, line)) as info:
        load_ncf(prefix)
    assert needle in str(info.value)


def test_ncf_negative_file_with_missing_rows(tmp_path: Path) -> None:
    prefix = ncf_files(tmp_path, negative="(0,3)\t4\t5\t4\n(1,0)\t2\t9\t3\n")
    with pytest.raises(DataFormatError, match=r"test\.negative line 3: .*end of file after 2 rows"):
        load_ncf(prefix)


def test_ncf_truncated_gzip(tmp_path: Path) -> None:
    prefix = ncf_files(tmp_path)
    blob = gzip.compress((TRAIN * 200).encode())
    (tmp_path / "d.train.rating").unlink()
    (tmp_path / "d.train.rating.gz").write_bytes(blob[: len(blob) // 2])
    with pytest.raises(DataFormatError, match=r"d\.train\.rating\.gz.*(truncated|corrupt)"):
        load_ncf(prefix)


def test_ncf_missing_file_names_path(tmp_path: Path) -> None:
    prefix = ncf_files(tmp_path)
    (tmp_path / "d.test.negative").unlink()
    with pytest.raises(FileNotFoundError, match=re.escape(f"{prefix}.test.negative")):
        load_ncf(prefix)


def test_ncf_empty_test_files(tmp_path: Path) -> None:
    data = load_ncf(ncf_files(tmp_path, test="", negative=""))
    assert data.n_test == 0 and data.train.nnz == 4 and data.negatives.shape[0] == 0


# ------------------------------------------------------------- LightGCN
def test_lightgcn_loads_with_empty_users_and_consistent_sizes(tmp_path: Path) -> None:
    write(tmp_path / "train.txt", "0 1 2 3\n1 0\n2\n3 2 2\n", crlf=True)
    write(tmp_path / "test.txt", "0 4\n1\n2 7\n4 1\n\n", gz=True)
    train, test = load_lightgcn(tmp_path)
    # user 4 only appears in test, item 7 only in test: both size both matrices
    assert train.shape == test.shape == (5, 8)
    assert pairs_of(train) == {(0, 1), (0, 2), (0, 3), (1, 0), (3, 2)}
    assert pairs_of(test) == {(0, 4), (2, 7), (4, 1)}
    assert train.user_counts.tolist() == [3, 1, 0, 1, 0]


def test_lightgcn_user_lines_without_items_still_count(tmp_path: Path) -> None:
    write(tmp_path / "train.txt", "0 1\n5\n")
    write(tmp_path / "test.txt", "0 2\n")
    train, test = load_lightgcn(tmp_path)
    assert train.n_users == test.n_users == 6


@pytest.mark.parametrize(
    ("text", "line", "shown"),
    [
        ("0 1 2\n1 2 x 3\n", 2, "1 2 x 3"),
        ("0 1 2\n1 2 -3\n", 2, "1 2 -3"),
        ("0 1 2\n\n\nu 2 3\n", 4, "u 2 3"),
        ("0 1 2\n-1 2\n", 2, "-1 2"),
        ("0 1 2\n1 2 3.0\n", 2, "3.0"),
    ],
)
def test_lightgcn_malformed(tmp_path: Path, text: str, line: int, shown: str) -> None:
    write(tmp_path / "train.txt", text)
    write(tmp_path / "test.txt", "0 1\n")
    with pytest.raises(DataFormatError, match=line_error(tmp_path / "train.txt", line)) as info:
        load_lightgcn(tmp_path)
    assert as_quoted(shown) in str(info.value)


def test_lightgcn_missing_files(tmp_path: Path) -> None:
    write(tmp_path / "train.txt", "0 1\n")
    with pytest.raises(FileNotFoundError, match=re.escape(str(tmp_path / "test.txt"))):
        load_lightgcn(tmp_path)
    with pytest.raises(FileNotFoundError):
        load_lightgcn(tmp_path / "nowhere")


def test_long_lines_are_shortened_in_messages(tmp_path: Path) -> None:
    write(tmp_path / "train.txt", "0 " + " ".join(["1"] * 500) + " bad\n")
    write(tmp_path / "test.txt", "0 1\n")
    with pytest.raises(DataFormatError, match=r"line 1: .*\.\.\.'$"):
        load_lightgcn(tmp_path)


# ------------------------------------------------------------ MovieLens
U_DATA = "196\t242\t3\t881250949\n186\t302\t3\t891717742\n22\t377\t1\t878887116\n196\t377\t5\t1\n"


@pytest.mark.parametrize("kw", [{}, {"gz": True}, {"crlf": True}])
def test_movielens_u_data(tmp_path: Path, kw: dict) -> None:
    path = write(tmp_path / "u.data", U_DATA + "\n", **kw)
    log = load_movielens(path)
    assert len(log) == 4
    assert log.user_ids.tolist() == [22, 186, 196]
    assert log.item_ids.tolist() == [242, 302, 377]
    assert log.user_ids.dtype == np.int64
    # dense ids map back to the raw ids record by record
    assert log.user_ids[log.users].tolist() == [196, 186, 22, 196]
    assert log.item_ids[log.items].tolist() == [242, 302, 377, 377]
    assert log.ratings.dtype == np.float32 and log.ratings.tolist() == [3, 3, 1, 5]
    assert log.timestamps.tolist() == [881250949, 891717742, 878887116, 1]
    assert log.to_interactions().shape == (3, 3)


def test_movielens_ratings_dat_and_min_rating(tmp_path: Path) -> None:
    path = write(
        tmp_path / "ratings.dat", "1::1193::5::978300760\n1::661::3::978302109\n2::661::4::9\n"
    )
    log = load_movielens(path)
    assert log.user_ids.tolist() == [1, 2] and log.item_ids.tolist() == [661, 1193]
    kept = load_movielens(path, min_rating=4)
    assert len(kept) == 2 and kept.ratings.tolist() == [5, 4]
    # ids are dense over the kept records only
    assert kept.item_ids.tolist() == [661, 1193] and kept.user_ids.tolist() == [1, 2]
    assert load_movielens(path, min_rating=5).item_ids.tolist() == [1193]


def test_movielens_ratings_csv(tmp_path: Path) -> None:
    path = write(
        tmp_path / "ratings.csv",
        "userId,movieId,rating,timestamp\n1,31,2.5,1260759144\n7,31,4.5,5\n",
    )
    log = load_movielens(path, min_rating=3.0)
    assert log.user_ids.tolist() == [7] and log.ratings.tolist() == [4.5]


@pytest.mark.parametrize(
    ("name", "text", "line", "shown"),
    [
        ("ratings.dat", "1::10::5::100\n2::10::3::9\n2::20\n", 3, "2::20"),
        ("ratings.dat", "1::10::5::100\n2::1x::3::9\n", 2, "2::1x::3::9"),
        ("ratings.dat", "1::10::5::100\n2::10::great::9\n", 2, "great"),
        ("u.data", "1\t10\t5\t100\n2\t10\tnan\t9\n", 2, "nan"),
        ("u.data", "1\t10\t5\t100\n2\t10\t3\t9.5\n", 2, "9.5"),
        ("u.data", "1\t10\t5\t100\n-2\t10\t3\t9\n", 2, "-2"),
        ("u.data", "1\t10\t5\n", 1, "1\t10\t5"),
    ],
)
def test_movielens_malformed(tmp_path: Path, name: str, text: str, line: int, shown: str) -> None:
    path = write(tmp_path / name, text)
    with pytest.raises(DataFormatError, match=line_error(path, line)) as info:
        load_movielens(path)
    assert as_quoted(shown) in str(info.value)


def test_movielens_parameters(tmp_path: Path) -> None:
    path = write(tmp_path / "u.data", U_DATA)
    with pytest.raises(GnnoError, match="min_rating"):
        load_movielens(path, min_rating="high")  # type: ignore[arg-type]
    with pytest.raises(FileNotFoundError, match="nope"):
        load_movielens(tmp_path / "nope.dat")


# ------------------------------------------------------------------ CSV
def test_csv_by_names_with_string_ids(tmp_path: Path) -> None:
    path = write(
        tmp_path / "x.csv",
        'user,item,stars,when\n alice ,i10,4.5,7\nbob,i10,3,8\n\ncarol,"i,2",5,9\n\n',
        crlf=True,
    )
    log = load_csv(path, "user", "item", "stars", "when")
    assert log.user_ids.dtype == object and log.user_ids.tolist() == ["alice", "bob", "carol"]
    assert log.item_ids.tolist() == ["i,2", "i10"]  # quoted separator kept in the id
    assert log.users.tolist() == [0, 1, 2] and log.items.tolist() == [1, 1, 0]
    assert log.ratings.tolist() == [4.5, 3.0, 5.0] and log.timestamps.tolist() == [7, 8, 9]


def test_csv_by_positions_without_header_tsv_gzip(tmp_path: Path) -> None:
    path = write(tmp_path / "x.tsv", "5\t50\t1\n3\t50\t0\n5\t70\t1\n", gz=True)
    log = load_csv(path, 0, 1, rating_col=2, sep="\t", header=False, min_rating=1)
    assert log.user_ids.dtype == np.int64 and log.user_ids.tolist() == [5]
    assert log.item_ids.tolist() == [50, 70] and log.timestamps is None
    assert log.to_interactions().shape == (1, 2)


def test_csv_multi_character_separator(tmp_path: Path) -> None:
    path = write(tmp_path / "x.txt", "1::2\n3::4\n")
    log = load_csv(path, 0, 1, sep="::", header=False)
    assert log.user_ids.tolist() == [1, 3] and log.ratings is None


def test_csv_simple_and_general_parsing_agree(tmp_path: Path) -> None:
    rows = ["u,i,r,t", "u7,i1,4.5,10", "u2,i1,3,11", "u7,i9,1,12"]
    simple = load_csv(write(tmp_path / "a.csv", "\n".join(rows)), "u", "i", "r", "t")
    # a space and a quoted field send the same content down the csv-module path
    rows[1] = ' u7 ,"i1",4.5,10'
    general = load_csv(write(tmp_path / "b.csv", "\n".join(rows)), "u", "i", "r", "t")
    for log in (simple, general):
        assert log.user_ids.dtype == object and log.user_ids.tolist() == ["u2", "u7"]
        assert log.item_ids.tolist() == ["i1", "i9"]
    for name in ("users", "items", "ratings", "timestamps"):
        assert np.array_equal(getattr(simple, name), getattr(general, name))


@pytest.mark.parametrize(
    ("text", "kwargs", "line", "shown"),
    [
        ("u,i,r\n1,2,3\n1,2\n", {}, 3, "1,2"),
        ("u,i,r\n1,2,3\n1,2,3,4\n", {}, 3, "1,2,3,4"),
        ("u,i,r\n1,2,3\n1,2,x\n", {"rating_col": "r"}, 3, "1,2,x"),
        ("u,i,r\n1,2,3\n\n,2,3\n", {}, 4, ",2,3"),
        ("u,i,r\n1,2,3\n-1,2,3\n", {}, 3, "-1,2,3"),
        ("u,i,r\n1,2,3\n", {"time_col": "t"}, 1, "u,i,r"),
        ("u,i,r\n1,2,3\n1,2,3.5\n", {"time_col": "r"}, 3, "3.5"),
    ],
)
def test_csv_malformed(tmp_path: Path, text: str, kwargs: dict, line: int, shown: str) -> None:
    path = write(tmp_path / "x.csv", text)
    with pytest.raises(DataFormatError, match=line_error(path, line)) as info:
        load_csv(path, "u", "i", **kwargs)
    assert as_quoted(shown) in str(info.value)


def test_csv_parameter_errors(tmp_path: Path) -> None:
    path = write(tmp_path / "x.csv", "1,2\n")
    with pytest.raises(GnnoError, match="user_col='u'"):
        load_csv(path, "u", 1, header=False)
    with pytest.raises(GnnoError, match="item_col"):
        load_csv(path, 0, -1, header=False)
    with pytest.raises(GnnoError, match="sep"):
        load_csv(path, 0, 1, sep="", header=False)
    with pytest.raises(GnnoError, match="min_rating"):
        load_csv(path, 0, 1, header=False, min_rating=3)
    with pytest.raises(DataFormatError, match="line 1: expected a column at position 5"):
        load_csv(path, 0, 5, header=False)


# ------------------------------------------------------- InteractionLog
def test_interaction_log_validates_and_copies_nothing_it_changes() -> None:
    users = np.array([2, 0, 2], dtype=np.int32)
    items = np.array([1, 1, 0])
    log = InteractionLog(users=users, items=items, ratings=[1, 2, 3])
    assert log.users.dtype == np.int64 and log.ratings.dtype == np.float32
    assert (log.n_users, log.n_items, len(log)) == (3, 2, 3)
    assert users.flags.writeable and items.flags.writeable  # caller's arrays untouched
    with pytest.raises(ValueError):
        log.items[0] = 5
    with pytest.raises(ShapeError):
        InteractionLog(users=[0, 1], items=[0])
    with pytest.raises(ShapeError):
        InteractionLog(users=[0, 1], items=[0, 1], timestamps=[1])
    with pytest.raises(ShapeError):
        InteractionLog(users=[0.5], items=[0])
    with pytest.raises(IdOutOfRangeError):
        InteractionLog(users=[0, -1], items=[0, 1])
    with pytest.raises(IdOutOfRangeError):
        InteractionLog(users=[0, 3], items=[0, 1], user_ids=np.array([10, 11]))


def test_interaction_log_filter_and_to_interactions() -> None:
    log = InteractionLog(
        users=[0, 1, 1, 2],
        items=[0, 0, 1, 1],
        timestamps=[4, 3, 2, 1],
        user_ids=np.array(["a", "b", "c"], dtype=object),
        item_ids=np.array([7, 9]),
    )
    kept = log.filter(np.array([True, False, True, False]))
    assert kept.users.tolist() == [0, 1] and kept.timestamps.tolist() == [4, 2]
    # maps are kept, so the matrix keeps every known user and item
    assert kept.to_interactions().shape == (3, 2)
    assert kept.to_interactions(n_users=5).shape == (5, 2)
    with pytest.raises(ShapeError):
        log.filter([1, 0, 1, 0])
    with pytest.raises(ShapeError):
        log.filter(np.ones(3, dtype=bool))


# ------------------------------------------------------------ real data
@pytest.mark.dataset
def test_real_ml1m_ncf(data_dir: Path) -> None:
    data = load_ncf(data_dir / "ml-1m-ncf" / "ml-1m")
    assert (data.n_users, data.n_items) == (6040, 3706)
    assert data.train.nnz == 994_169
    assert data.n_test == 6040 and data.negatives.shape == (6040, 99)
    # leave-one-out: one test row per user, never a training pair
    assert np.array_equal(np.sort(data.test_users), np.arange(6040))
    assert not data.train.contains(data.test_users, data.test_items).any()
    # the README: 156 rows list the test item among their negatives
    assert int((data.negatives == data.test_items[:, None]).any(axis=1).sum()) == 156


@pytest.mark.dataset
def test_real_gowalla(data_dir: Path) -> None:
    train, test = load_lightgcn(data_dir / "gowalla")
    assert train.shape == test.shape == (29_858, 40_981)
    assert (train.nnz, test.nnz) == (810_128, 217_242)


@pytest.mark.dataset
def test_real_lastfm(data_dir: Path) -> None:
    train, test = load_lightgcn(data_dir / "lastfm-2k")
    assert train.shape == test.shape == (1892, 17_632)
    assert train.nnz + test.nnz == 92_834


@pytest.mark.dataset
def test_real_ml100k(data_dir: Path) -> None:
    log = load_movielens(data_dir / "ml-100k" / "u.data")
    assert (log.n_users, log.n_items, len(log)) == (943, 1682, 100_000)
    assert log.user_ids.tolist() == list(range(1, 944))  # 1-based raw ids, remapped
    assert set(np.unique(log.ratings).tolist()) == {1, 2, 3, 4, 5}
    assert log.to_interactions().nnz == 100_000
