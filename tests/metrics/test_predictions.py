"""Predictions files: read and checked one by one, then paired (same rows, same y_true, one task), every refusal
naming the file, the line and the column."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlops_bot.errors import DataError
from mlops_bot.metrics.predictions import ModelRows, PairedRows, pair_predictions, read_predictions


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def paired(tmp_path: Path, ours: str, theirs: str, metrics: tuple[str, ...] = ()) -> PairedRows:
    a, b = write(tmp_path, "a.csv", ours), write(tmp_path, "b.csv", theirs)
    return pair_predictions(read_predictions(a), read_predictions(b), metrics=metrics)


def refusal(tmp_path: Path, ours: str, theirs: str | None = None, metrics: tuple[str, ...] = ()) -> str:
    """The message of the DataError (exit 3) for these files, `{a}` and `{b}` standing for their paths."""
    with pytest.raises(DataError) as caught:
        if theirs is None:
            read_predictions(write(tmp_path, "a.csv", ours))
        else:
            paired(tmp_path, ours, theirs, metrics)
    assert caught.value.exit_code == 3
    return str(caught.value).replace(str(tmp_path / "a.csv"), "{a}").replace(str(tmp_path / "b.csv"), "{b}")


def test_pairing_puts_the_champions_rows_in_the_challengers_order(tmp_path: Path) -> None:
    ours = ("row_id,y_true,y_pred,proba_cat,proba_dog,loss,note\n"
            "r1,cat,cat,0.9,0.1,0.1,first\nr2,dog,cat,0.6,0.4,0.9,\nr3,cat,dog,0.2,0.8,1.6,x\n")
    theirs = ("row_id,y_true,y_pred,proba_cat,proba_dog,loss\n"
              "r3,cat,cat,0.7,0.3,0.3\nr1,cat,cat,1,0,0.0\nr2,dog,dog,0.25,0.75,0.2\n")
    rows = paired(tmp_path, ours, theirs)
    assert (rows.ids, rows.y_true, rows.task) == (("r1", "r2", "r3"), ("cat", "dog", "cat"), "classification")
    assert rows.challenger == ModelRows(tmp_path / "a.csv", ("cat", "cat", "dog"), {
        "proba_cat": (0.9, 0.6, 0.2), "proba_dog": (0.1, 0.4, 0.8), "loss": (0.1, 0.9, 1.6)})  # `note` is text
    assert rows.champion == ModelRows(tmp_path / "b.csv", ("cat", "dog", "cat"), {
        "proba_cat": (1.0, 0.25, 0.7), "proba_dog": (0.0, 0.75, 0.3), "loss": (0.0, 0.2, 0.3)})


def test_labels_and_classes_have_one_spelling(tmp_path: Path) -> None:
    rows = paired(tmp_path, "id,y_true,y_pred,proba_0,proba_1.0,y_score\n1,1,1.0,0.2,0.8,0.8\n2,0,01,0.6,0.4,0.4\n",
                  "id,y_true,y_pred,score\n2,0.0,0,1\n1,1.0,+0,0\n")
    assert (rows.y_true, rows.challenger.y_pred, rows.champion.y_pred) == (("1", "0"), ("1", "1"), ("0", "0"))
    assert rows.challenger.columns == {"proba_0": (0.2, 0.6), "proba_1": (0.8, 0.4), "y_score": (0.8, 0.4)}
    assert rows.champion.columns == {"score": (0.0, 1.0)}


def test_a_shuffled_y_true_is_refused_naming_the_first_differing_rows(tmp_path: Path) -> None:
    ours = "row_id,y_true,y_pred\n" + "".join(f"{i},{i % 2},{i % 2}\n" for i in range(10))
    shuffled = "row_id,y_true,y_pred\n" + "".join(f"{i},{(i // 2) % 2},{i % 2}\n" for i in reversed(range(10)))
    assert refusal(tmp_path, ours, shuffled) == (
        "{a} and {b} give another y_true for 5 of 10 rows (row id '1' is '1' at {a}:3 but '0' at {b}:10; row id '2' "
        "is '0' at {a}:4 but '1' at {b}:9; row id '5' is '1' at {a}:7 but '0' at {b}:6 ...); both files must hold "
        "the same rows with the same true values: is one of them shuffled, or written from another split?")


def test_y_true_compares_as_numbers_and_must_be_in_both_files(tmp_path: Path) -> None:
    assert paired(tmp_path, "id,y_true\n1,1\n2,2.5\n", "id,y_true\n2,2.50\n1,1.0\n").y_true == ("1.0", "2.5")
    assert refusal(tmp_path, "id,y_true,y_pred\n1,0,0\n", "id,y_pred\n1,1\n") == (
        "{b}:1: no y_true column, but {a} has one; write y_true in both files, so that the pairing can check that "
        "they hold the same rows.")


@pytest.mark.parametrize(("ours", "theirs", "message"), [
    ("id,y\n1,1\n2,1\n", "id,y\n1,1\n",
     "{a} and {b} do not hold the same rows: 1 row only in {a} ('2' at line 3); both models must be scored on the "
     "same rows."),
    ("id,y\n1,1\n3,1\n", "id,y\n1,1\n2,1\n",
     "{a} and {b} do not hold the same rows: 1 row only in {a} ('3' at line 3); 1 row only in {b} ('2' at line 3); "
     "both models must be scored on the same rows."),
    ("id,y\n1,1\n", "id,y\n" + "".join(f"{i},1\n" for i in range(1, 7)),
     "{a} and {b} do not hold the same rows: 5 rows only in {b} ('2' at line 3, '3' at line 4, '4' at line 5 and 2 "
     "more); both models must be scored on the same rows."),
])
def test_different_rows_are_refused_naming_them_on_both_sides(tmp_path: Path, ours: str, theirs: str,
                                                              message: str) -> None:
    assert refusal(tmp_path, ours, theirs) == message


@pytest.mark.parametrize(("ours", "theirs", "message"), [
    ("id,y_true,y_pred\n1,0,0\n2,1,0.83\n", "id,y_true,y_pred\n1,0,0\n2,1,1\n",
     "{a}:3: column 'y_pred': 0.83 is a probability, not a label (y_true holds labels: 0, 1); write the predicted "
     "label in y_pred, and the probabilities in y_score (binary) or proba_<class> columns."),
    ("id,y_true,y_pred\n1,cat,0.2\n2,dog,0.9\n", "id,y_true,y_pred\n1,cat,cat\n2,dog,dog\n",
     "{a}:2: column 'y_pred': 0.2 is a probability, not a label (y_true holds labels: cat, dog); write the predicted "
     "label in y_pred, and the probabilities in y_score (binary) or proba_<class> columns."),
    ("id,y_true,y_pred\n1,cat,cat\n2,dog,3.7\n", "id,y_true,y_pred\n1,cat,cat\n2,dog,dog\n",
     "{a}:3: column 'y_pred': 3.7 is not a class label (y_true holds labels: cat, dog); write the predicted class."),
    ("id,y_true,y_pred\n1,0.5,0.4\n2,1.5,cat\n", "id,y_true,y_pred\n1,0.5,0.4\n2,1.5,2\n",
     "{a}:3: column 'y_pred': 'cat' is not a number; y_true holds numeric targets (regression), so y_pred must hold "
     "the predicted numbers."),
])
def test_a_y_pred_that_does_not_fit_the_task_is_refused(tmp_path: Path, ours: str, theirs: str, message: str) -> None:
    assert refusal(tmp_path, ours, theirs) == message


def test_probabilities_in_either_y_pred_are_refused(tmp_path: Path) -> None:
    labels = "id,y_true,y_pred\n1,0,0\n2,1,1\n"
    assert refusal(tmp_path, labels, labels.replace("2,1,1", "2,1,0.7")).startswith(
        "{b}:3: column 'y_pred': 0.7 is a probability, not a label")


def test_regression_is_told_from_y_true(tmp_path: Path) -> None:
    rows = paired(tmp_path, "id,y_true,y_pred\n1,2.5,2\n2,1,1.25\n", "id,y_true,y_pred\n2,1,0\n1,2.5,3\n")
    assert (rows.task, rows.y_true, rows.challenger.y_pred, rows.champion.y_pred) == (
        "regression", ("2.5", "1.0"), ("2.0", "1.25"), ("3.0", "0.0"))
    counts = paired(tmp_path, "id,y_true,y_pred\n1,3,2.6\n2,0,0.4\n", "id,y_true,y_pred\n1,3,3\n2,0,1\n")
    assert (counts.task, counts.challenger.y_pred) == ("regression", ("2.6", "0.4"))  # whole targets, 2.6 predicted
    assert paired(tmp_path, "id,y_true,y_pred\n1,3,3\n", "id,y_true,y_pred\n1,3,2\n").task == "classification"
    assert paired(tmp_path, "id,score\n1,0.5\n", "id,score\n1,0.25\n").task is None


@pytest.mark.parametrize(("text", "message"), [
    ("id,y_true,y_pred\n1,0,0\n2,,1\n",
     "{a}:3: column 'y_true' is empty; write the true label or target in every row."),
    ("id,y_true,y_pred\n1,0,\n", "{a}:2: column 'y_pred' is empty; write the model's prediction in every row."),
    ("id,y_true,y_pred\n1,nan,0\n",
     "{a}:2: column 'y_true' holds 'nan', not a label or a finite number; write the true label or target in every "
     "row."),
    ("id,y_true,y_pred\n1,0.5,inf\n",
     "{a}:2: column 'y_pred' holds 'inf', not a label or a finite number; write the model's prediction in every row."),
    ("id,y_true,y_score\n1,0,0.2\n2,1,\n", "{a}:3: column 'y_score' is empty; write a number in every row."),
    ("id,y_true,y_score\n1,0,-inf\n", "{a}:2: column 'y_score' holds '-inf', not a finite number; write a number in "
                                      "every row."),
    ("id,score\n1,high\n", "{a}:2: column 'score' holds 'high', not a finite number; write a number in every row."),
    ("id,y_true,proba_a,proba_b\n1,a,0.5,\n", "{a}:2: column 'proba_b' is empty; write a number in every row."),
    ("id,y_true,proba_a,proba_b\n1,a,NaN,0.5\n",
     "{a}:2: column 'proba_a' holds 'NaN', not a finite number; write a number in every row."),
    ("id,y\n1,1\n,2\n", "{a}:3: the row id is empty; every row needs its own."),
    ("id,y\n1,0\n2,1\n1,1\n", "{a}:4: row id '1' appears twice (first at line 2); row ids must be unique."),
    ("id,y,y\n1,0,1\n", "{a}:1: columns 2 and 3 are both named 'y'; name each column once."),
    ("id,y\n1,0,5\n", "{a}:2: 2 columns expected; the row has 3."),
    ("y_true,y_pred\n1,1\n", "{a}:1: no row id column; add a `row_id` column so both models' rows can be paired."),
    ("", "{a}: predictions file is empty."),
    ("row_id,y\n", "{a}: predictions file has a header but no rows."),
])
def test_a_file_is_checked_on_its_own(tmp_path: Path, text: str, message: str) -> None:
    assert refusal(tmp_path, text) == message


@pytest.mark.parametrize(("text", "message"), [
    ("id,y_true,proba_cat,proba_dog\n1,cat,0.7,0.3\n2,dog,0.6,0.5\n",
     "{a}:3: the proba_<class> columns sum to 1.1, not 1; each row's probabilities must sum to 1 within 1e-6."),
    ("id,y_true,proba_1\n1,1,0.7\n",
     "{a}:2: the proba_<class> columns sum to 0.7, not 1; each row's probabilities must sum to 1 within 1e-6 (a "
     "binary task's positive-class probability alone goes in a y_score column)."),
    ("id,y_true,proba_a,proba_b\n1,a,1.5,-0.5\n", "{a}:2: column 'proba_a': 1.5 is not a probability (0 to 1)."),
    ("id,y_true,proba_0,proba_1\n1,0,0.5,0.5\n2,2,0.5,0.5\n",
     "{a}:3: y_true holds the label '2' but there is no proba_2 column (found: proba_0, proba_1); name one "
     "proba_<class> column after each of y_true's labels."),
    ("id,y_true,proba_1,proba_1.0\n1,1,0.5,0.5\n",
     "{a}:1: column 'proba_1.0' is the class '1' of column 'proba_1' again; name one proba_<class> column after each "
     "of y_true's labels."),
    ("id,y_true,proba_\n1,1,1\n",
     "{a}:1: column 'proba_' names no class; name one proba_<class> column after each of y_true's labels."),
    ("id,y_true,y_score\n1,a,0.1\n2,b,0.2\n3,c,0.3\n",
     "{a}:1: y_score is the positive class's score of a binary task, but y_true holds 3 labels (a, b, c); write one "
     "proba_<class> column per class instead."),
])
def test_probabilities_are_checked(tmp_path: Path, text: str, message: str) -> None:
    assert refusal(tmp_path, text) == message


def test_probabilities_sum_to_one_within_the_tolerance_and_may_name_more_classes(tmp_path: Path) -> None:
    text = "id,y_true,proba_a,proba_b,proba_c\n1,a,0.3333333,0.3333333,0.3333334\n2,b,0.1,0.9000005,0\n"
    assert read_predictions(write(tmp_path, "p.csv", text)).classes == {"a": "proba_a", "b": "proba_b",
                                                                         "c": "proba_c"}


def test_a_metric_column_the_test_reads_must_be_numbers_other_columns_need_not(tmp_path: Path) -> None:
    text = "id,y_true,y_pred,loss,feature\n1,0,0,0.5,\n2,1,1,,3\n"
    rows = paired(tmp_path, text, text)
    assert set(rows.challenger.columns) == set()  # neither column is numbers all through: left out
    assert refusal(tmp_path, text, text, metrics=("loss",)) == (
        "{a}:3: column 'loss' is empty; write a number in every row.")

