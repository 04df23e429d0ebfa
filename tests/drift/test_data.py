"""Reading a table: CSV, TSV and Parquet, several files, the kinds of columns, nulls over every row, a seeded
sample of bounded size, and each bad input as a BotError that says what and where."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mlops_bot.drift import readers
from mlops_bot.drift.data import LoadOptions, load_table
from mlops_bot.errors import BotError, DataError, UsageError

ALL = LoadOptions(sample_rows=None, seed=0, max_mb=100.0, numeric=(), categorical=())


def write_csv(path: Path, header: str, rows: list[str], sep: str = ",") -> Path:
    path.write_text("\n".join([header.replace(",", sep), *(r.replace(",", sep) for r in rows)]) + "\n")
    return path


def test_csv_tsv_and_parquet_give_the_same_table(tmp_path: Path) -> None:
    rows = ["1,a,0.5", "2,b,", "3,,1.5", "4,a,2.5"]
    csv = write_csv(tmp_path / "t.csv", "n,c,x", rows)
    tsv = write_csv(tmp_path / "t.tsv", "n,c,x", rows, sep="\t")
    parquet = tmp_path / "t.parquet"
    pq.write_table(pa.table({"n": [1, 2, 3, 4], "c": ["a", "b", None, "a"], "x": [0.5, None, 1.5, 2.5]}), parquet)
    for path in (csv, tsv, parquet):
        table = load_table([path], ALL, "current")
        assert table.kinds == {"n": "numeric", "c": "categorical", "x": "numeric"}
        assert table.columns["n"].dtype == np.float64 and list(table.columns["n"]) == [1, 2, 3, 4]
        assert list(table.columns["c"]) == ["a", "b", None, "a"]
        assert np.isnan(table.columns["x"][1])
        assert table.nulls == {"n": 0, "c": 1, "x": 1} and table.counts["c"] == {"a": 2, "b": 1}
        assert (table.rows_read, table.rows_kept, table.sampled) == (4, 4, False)


def test_several_files_are_concatenated_and_text_in_any_makes_a_column_categorical(tmp_path: Path) -> None:
    first = write_csv(tmp_path / "a.csv", "k,v", ["1,1", "2,2"])
    second = write_csv(tmp_path / "b.csv", "k,v", ["x,3"])
    table = load_table([first, second], ALL, "current")
    assert table.kinds == {"k": "categorical", "v": "numeric"} and table.rows_read == 3
    assert list(table.columns["k"]) == ["1", "2", "x"]


def test_listed_kinds_override_the_data(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "a.csv", "zip,score", ["12345,1", "54321,2"])
    table = load_table([path], LoadOptions(None, 0, 100.0, numeric=(), categorical=("zip",)), "current")
    assert table.kinds == {"zip": "categorical", "score": "numeric"}
    assert table.counts["zip"] == {"12345": 1, "54321": 1}


def test_a_late_text_value_turns_an_inferred_numeric_column_to_text(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(readers, "CSV_BLOCK", 1 << 10)  # pyarrow infers from the first block only
    path = write_csv(tmp_path / "a.csv", "v,w", [f"{i},{i}" for i in range(2000)] + ["oops,1"])
    table = load_table([path], ALL, "current")
    assert table.kinds == {"v": "categorical", "w": "numeric"} and table.columns["v"][-1] == "oops"


def test_a_non_number_in_a_listed_numeric_column_names_file_column_row_and_value(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(readers, "CSV_BLOCK", 1 << 10)
    path = write_csv(tmp_path / "a.csv", "v,w", [f"{i},{i}" for i in range(2000)] + ["1\x1b[31m<b>,1"])
    options = LoadOptions(None, 0, 100.0, numeric=("v",), categorical=())
    with pytest.raises(DataError) as caught:
        load_table([path], options, "current")
    message = str(caught.value)
    assert f"{path}:2002: column 'v', row 2001: " in message and "'1\\x1b[31m<b>' is not a number" in message
    assert "\x1b" not in message  # shown safely
    parquet = tmp_path / "a.parquet"
    pq.write_table(pa.table({"v": ["1", "2", "three"]}), parquet)
    with pytest.raises(DataError, match=r"a.parquet: column 'v', row 3: 'three' is not a number"):
        load_table([parquet], options, "current")


def test_an_empty_table_is_an_error(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "empty.csv", "a,b", [])
    with pytest.raises(DataError, match=r"current data: no rows in .*empty.csv"):
        load_table([path], ALL, "current")


def test_missing_unreadable_and_unknown_files_are_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"reference data: no such file: .*nope.csv"):
        load_table([tmp_path / "nope.csv"], ALL, "reference")
    with pytest.raises(DataError, match="no file to read"):
        load_table([], ALL, "current")
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(b"not parquet at all")
    with pytest.raises(DataError, match=r"bad.parquet: cannot be read as PARQUET: .*"):
        load_table([bad], ALL, "current")
    ragged = write_csv(tmp_path / "ragged.csv", "a,b", ["1,2", "1,2,3"])
    with pytest.raises(DataError, match=r"ragged.csv: cannot be read as CSV: .*columns"):
        load_table([ragged], ALL, "current")
    with pytest.raises(UsageError, match=r"unknown data format '.xlsx'"):
        load_table([write_csv(tmp_path / "t.xlsx", "a", ["1"])], ALL, "current")
    other = write_csv(tmp_path / "other.csv", "a", ["1"])
    with pytest.raises(DataError, match=r"other.csv lacks the column\(s\) 'b'"):
        load_table([write_csv(tmp_path / "ab.csv", "a,b", ["1,2"]), other], ALL, "current")


def test_an_input_above_max_mb_without_a_sample_is_refused_before_reading(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "big.csv", "a,b", [f"{i},{i}" for i in range(60_000)])
    small = LoadOptions(sample_rows=None, seed=0, max_mb=0.5, numeric=(), categorical=())
    with pytest.raises(UsageError) as caught:
        load_table([path], small, "current")
    assert isinstance(caught.value, BotError)
    message = str(caught.value)
    assert "current data is 0.7 MB, above monitor.max_mb (0.5 MB)" in message and "big.csv (0.7 MB)" in message
    assert "set monitor.sample.rows" in message
    sampled = LoadOptions(sample_rows=1000, seed=0, max_mb=0.5, numeric=(), categorical=())
    assert load_table([path], sampled, "current").rows_kept == 1000


def test_a_sample_is_seeded_uniform_and_bounded_while_nulls_count_every_row(tmp_path: Path) -> None:
    n = 200_000
    values = np.arange(n, dtype=np.float64)
    values[::10] = np.nan  # 10% empty, everywhere
    path = tmp_path / "t.parquet"
    pq.write_table(pa.table({"v": pa.array(values, from_pandas=True), "c": [f"k{i % 3}" for i in range(n)]}), path)
    options = LoadOptions(sample_rows=5000, seed=3, max_mb=0.001, numeric=(), categorical=())
    first, again = load_table([path], options, "current"), load_table([path], options, "current")
    other = load_table([path], LoadOptions(5000, 4, 0.001, (), ()), "current")
    assert first.rows_kept == 5000 and first.rows_read == n and first.sampled
    assert first.nulls == {"v": n // 10, "c": 0}  # over all rows, not the sample
    assert np.array_equal(first.columns["v"], again.columns["v"], equal_nan=True)
    assert not np.array_equal(first.columns["v"], other.columns["v"], equal_nan=True)
    kept = first.columns["v"][~np.isnan(first.columns["v"])]
    assert np.all(np.diff(kept) > 0)  # in file order, without repeats
    assert abs(np.nanmean(first.columns["v"]) - n / 2) < 0.03 * n  # spread over the whole file
    assert sum(first.counts["c"].values()) == 5000


def test_a_sample_larger_than_the_table_keeps_every_row(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "a.csv", "a", ["1", "2", "3"])
    table = load_table([path], LoadOptions(100, 0, 100.0, (), ()), "current")
    assert (table.rows_kept, table.sampled) == (3, False) and list(table.columns["a"]) == [1, 2, 3]


def test_without_pyarrow_the_error_says_how_to_install_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_csv(tmp_path / "a.csv", "a", ["1"])
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    with pytest.raises(UsageError, match=r"pip install 'mlops-bot\[drift\]'"):
        load_table([path], ALL, "current")


def test_the_sampler_holds_at_most_twice_the_sample_and_one_batch() -> None:
    from mlops_bot.drift.data import _Sampler

    sampler, size, batch = _Sampler(1000, 0), 1000, 4096
    most = 0
    for start in range(0, 400_000, batch):
        sampler.add(pa.record_batch({"v": pa.array(np.arange(start, start + batch, dtype=np.float64))}))
        most = max(most, sampler.pending_rows)
    assert most < 2 * size + batch
    assert sampler.result().num_rows == size
