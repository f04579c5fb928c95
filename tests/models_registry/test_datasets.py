"""Dataset rules (parsing and evaluation on the real price files) and dataset registration."""

from __future__ import annotations

import copy
import datetime as dt
import gzip
import hashlib
import itertools
import random
from pathlib import Path

import pandas as pd
import pytest
from django.core.exceptions import ValidationError
from django.core.files.storage import default_storage

from audit.models import Event
from governance.demo.catalogue import PRICE_RULES
from governance.errors import InvalidDataset, PayloadTooLarge
from models_registry import datasets, services
from models_registry.datasets import Cleansing, DatasetRules, Range
from models_registry.models import Dataset
from tests.factories import PRICE_CSV

MARKET = Path(__file__).resolve().parents[2] / "governance" / "demo" / "data" / "market"
NVDA = MARKET / "nvda-1999-2014.csv"
ORCL = MARKET / "orcl-1995-2014.csv"
COLUMNS = ["Date", "Open", "High", "Low", "Close", "Adj Close", "Volume"]
NVDA_ROWS = 4012
ORCL_ROWS = 5036


@pytest.fixture(scope="module")
def nvda_bytes() -> bytes:
    return NVDA.read_bytes()


@pytest.fixture(scope="module")
def nvda_lines(nvda_bytes) -> list[str]:
    """Header first, then one line per trading day."""
    return nvda_bytes.decode().splitlines()


@pytest.fixture
def price_rules() -> DatasetRules:
    return datasets.parse_rules(copy.deepcopy(PRICE_RULES))


def _csv(lines: list[str]) -> bytes:
    return ("\n".join(lines) + "\n").encode()


def _evaluate(lines: list[str], raw_rules: dict) -> dict:
    return datasets.evaluate(datasets.read_csv(_csv(lines)), datasets.parse_rules(raw_rules), "Date")


def _failing(report: dict) -> list[tuple[str, str | None, int]]:
    return [(c["rule"], c["column"], c["failing_rows"]) for c in report["checks"] if not c["passed"]]


def _check(report: dict, rule: str, column: str) -> dict:
    [check] = [c for c in report["checks"] if c["rule"] == rule and c["column"] == column]
    return check


def _set_field(line: str, column: str, value: str) -> str:
    fields = line.split(",")
    fields[COLUMNS.index(column)] = value
    return ",".join(fields)


def _rules_without_sorting() -> dict:
    rules = copy.deepcopy(PRICE_RULES)
    rules["cleansing"] = {"drop_duplicate_rows": True}
    return rules


def _rules_messages(raw) -> list[str]:
    with pytest.raises(ValidationError) as excinfo:
        datasets.parse_rules(raw)
    assert set(excinfo.value.message_dict) == {"rules"}
    return excinfo.value.message_dict["rules"]


# --------------------------------------------------------------------------- parse_rules


@pytest.mark.parametrize(
    ("raw", "path", "fragment"),
    [
        ({"bogus": True}, "bogus", "unknown rule"),
        ({"cleansing": {"dedupe": True}}, "cleansing.dedupe", "unknown step"),
        ({"cleansing": ["sort_by_time"]}, "cleansing", "must be an object"),
        ({"cleansing": {"sort_by_time": "yes"}}, "cleansing.sort_by_time", "true or false"),
        ({"cleansing": {"drop_duplicate_rows": 1}}, "cleansing.drop_duplicate_rows", "true or false"),
        ({"cleansing": {"forward_fill": "Close"}}, "cleansing.forward_fill", "list of column names"),
        ({"cleansing": {"drop_rows_with_null": [1]}}, "cleansing.drop_rows_with_null", "list of column names"),
        ({"ranges": {"Close": {"min": 10, "max": 1}}}, "ranges.Close", "above max"),
        ({"ranges": {"Close": {"min": "0"}}}, "ranges.Close.min", "finite number"),
        ({"ranges": {"Close": {"max": float("nan")}}}, "ranges.Close.max", "finite number"),
        ({"ranges": {"Close": {"max": float("inf")}}}, "ranges.Close.max", "finite number"),
        ({"ranges": {"Close": {"min": True}}}, "ranges.Close.min", "finite number"),
        ({"ranges": {"Close": {"min": 1, "avg": 2}}}, "ranges.Close", "min and/or max"),
        ({"ranges": {"Close": {}}}, "ranges.Close", "min and/or max"),
        ({"ranges": {"Close": 5}}, "ranges.Close", "min and/or max"),
        ({"ranges": ["Close"]}, "ranges", "must be an object"),
        ({"required_columns": "Date"}, "required_columns", "list of column names"),
        ({"required_columns": ["Date", ""]}, "required_columns", "list of column names"),
        ({"not_null": "Close"}, "not_null", "list of column names"),
        ({"unique": [["Date"]]}, "unique", "list of column names"),
        ({"monotonic_timestamps": "true"}, "monotonic_timestamps", "true or false"),
        ({"monotonic_timestamps": 1}, "monotonic_timestamps", "true or false"),
        ({"max_gap_days": 0}, "max_gap_days", "must be positive"),
        ({"max_gap_days": -3}, "max_gap_days", "must be positive"),
        ({"max_gap_days": "7"}, "max_gap_days", "finite number"),
    ],
)
def test_malformed_rules_name_the_offending_key_path(raw, path, fragment):
    messages = _rules_messages(raw)
    assert any(m.startswith(f"{path}:") and fragment in m for m in messages), messages


@pytest.mark.parametrize("raw", [[], ["required_columns"], "monotonic_timestamps", 7, True])
def test_rules_must_be_an_object(raw):
    assert _rules_messages(raw) == ["must be a JSON object"]


def test_every_problem_is_listed_at_once():
    messages = _rules_messages(
        {"bogus": 1, "max_gap_days": -1, "ranges": {"Low": {"min": 5, "max": 0}}, "cleansing": {"x": True}}
    )
    prefixes = sorted(m.split(":", 1)[0] for m in messages)
    assert prefixes == ["bogus", "cleansing.x", "max_gap_days", "ranges.Low"]


def test_unknown_rule_message_lists_the_known_rules():
    [message] = _rules_messages({"max_gap": 7})
    for known in ("max_gap_days", "monotonic_timestamps", "required_columns", "cleansing"):
        assert known in message


def test_price_rules_parse_into_the_declared_structure():
    rules = datasets.parse_rules(copy.deepcopy(PRICE_RULES))
    assert rules.required_columns == tuple(COLUMNS)
    assert rules.not_null == tuple(COLUMNS)
    assert rules.unique == ("Date",)
    assert rules.ranges["Close"] == Range(0.0001, None)
    assert rules.ranges["Volume"] == Range(0.0, None)
    assert rules.monotonic_timestamps is True
    assert rules.max_gap_days == 7.0
    assert rules.cleansing == Cleansing(drop_duplicate_rows=True, sort_by_time=True)


@pytest.mark.parametrize("raw", [None, {}])
def test_empty_rules_parse_to_no_checks(raw):
    assert datasets.parse_rules(raw) == DatasetRules()


def test_valid_rules_with_every_option_parse():
    rules = datasets.parse_rules(
        {
            "required_columns": ["Date"],
            "not_null": ["Close"],
            "unique": ["Date"],
            "ranges": {"Close": {"min": 0, "max": 1e6}, "Volume": {"max": 10}, "Low": {"min": 1, "max": 1}},
            "monotonic_timestamps": False,
            "max_gap_days": 0.5,
            "cleansing": {
                "drop_duplicate_rows": False,
                "drop_rows_with_null": ["Close"],
                "forward_fill": ["Volume"],
                "sort_by_time": True,
            },
        }
    )
    assert rules.ranges == {"Close": Range(0.0, 1e6), "Volume": Range(None, 10.0), "Low": Range(1.0, 1.0)}
    assert rules.max_gap_days == 0.5
    assert rules.cleansing.drop_rows_with_null == ("Close",)
    assert rules.cleansing.forward_fill == ("Volume",)


# --------------------------------------------------------------------------- the real price files


@pytest.mark.parametrize(
    ("path", "rows", "start", "end"),
    [
        (NVDA, NVDA_ROWS, dt.datetime(1999, 1, 22, tzinfo=dt.UTC), dt.datetime(2014, 12, 31, tzinfo=dt.UTC)),
        (ORCL, ORCL_ROWS, dt.datetime(1995, 1, 3, tzinfo=dt.UTC), dt.datetime(2014, 12, 31, tzinfo=dt.UTC)),
    ],
    ids=["nvda", "orcl"],
)
def test_real_price_files_pass_the_price_rules(path, rows, start, end, price_rules):
    frame = datasets.read_csv(path.read_bytes())
    prof = datasets.profile(frame, "Date")

    assert prof.row_count == rows
    assert [c["name"] for c in prof.schema] == COLUMNS
    assert prof.time_start == start
    assert prof.time_end == end

    report = datasets.evaluate(frame, price_rules, "Date")
    assert report["passed"] is True
    assert report["rows_checked"] == rows
    assert report["cleansing"] == {"duplicate_rows_dropped": 0, "rows_reordered": 0}
    assert all(c["passed"] and c["failing_rows"] == 0 and c["message"] == "ok" for c in report["checks"])
    rules_run = {c["rule"] for c in report["checks"]}
    assert rules_run == {
        "required_columns",
        "not_null",
        "unique",
        "ranges",
        "timestamps_parse",
        "monotonic_timestamps",
        "max_gap_days",
    }
    assert len(report["checks"]) == 7 + 7 + 1 + 6 + 3


@pytest.mark.django_db
def test_register_and_validate_the_real_nvda_file(owner, make_dataset, nvda_bytes):
    dataset = make_dataset(name="nvda-daily", content=nvda_bytes, rules=copy.deepcopy(PRICE_RULES))
    dataset.refresh_from_db()

    assert dataset.content_sha256 == hashlib.sha256(nvda_bytes).hexdigest()
    assert dataset.size_bytes == len(nvda_bytes)
    assert [c["name"] for c in dataset.schema] == COLUMNS
    assert {c["name"]: c["dtype"] for c in dataset.schema}["Close"] == "float64"
    assert {c["name"]: c["dtype"] for c in dataset.schema}["Volume"] == "int64"
    assert dataset.row_count == NVDA_ROWS
    assert dataset.time_start == dt.datetime(1999, 1, 22, tzinfo=dt.UTC)
    assert dataset.time_end == dt.datetime(2014, 12, 31, tzinfo=dt.UTC)
    assert dataset.time_start.utcoffset() == dt.timedelta(0)
    assert dataset.time_end.utcoffset() == dt.timedelta(0)
    assert dataset.validation_status == "not_validated"
    assert dataset.file.name == f"datasets/{dataset.content_sha256}.csv"
    assert Event.objects.filter(action="dataset.registered", object_id=str(dataset.pk)).count() == 1
    assert len(services.read_dataset_frame(dataset)) == NVDA_ROWS

    validated = services.dataset_validate(actor=owner, dataset=dataset)
    validated.refresh_from_db()

    assert validated.validation_status == "passed"
    assert validated.validated_at is not None
    assert validated.validation_result["passed"] is True
    assert validated.validation_result["rows_checked"] == NVDA_ROWS
    [event] = Event.objects.filter(action="dataset.validated", object_id=str(dataset.pk))
    assert event.actor == owner
    assert event.object_type == "models_registry.dataset"
    assert event.before == {"validation_status": "not_validated"}
    assert event.after["validation_status"] == "passed"
    assert event.after["result"]["passed"] is True


@pytest.mark.django_db
def test_validation_of_a_defective_file_stores_failed(owner, make_dataset, nvda_lines):
    lines = list(nvda_lines)
    lines[100] = _set_field(lines[100], "Close", "-1.5")
    dataset = make_dataset(name="nvda-bad", content=_csv(lines), rules=copy.deepcopy(PRICE_RULES))

    dataset = services.dataset_validate(actor=owner, dataset=dataset)
    dataset.refresh_from_db()

    assert dataset.validation_status == "failed"
    assert _failing(dataset.validation_result) == [("ranges", "Close", 1)]
    [event] = Event.objects.filter(action="dataset.validated", object_id=str(dataset.pk))
    assert event.after["validation_status"] == "failed"


@pytest.mark.django_db
def test_validation_cleanses_a_copy_and_never_changes_the_stored_file(owner, make_dataset, nvda_lines):
    lines = [*nvda_lines[:51], nvda_lines[50], *nvda_lines[51:]]  # one exact duplicate row
    content = _csv(lines)
    dataset = make_dataset(name="nvda-dup", content=content, rules=copy.deepcopy(PRICE_RULES))
    assert dataset.row_count == NVDA_ROWS + 1

    dataset = services.dataset_validate(actor=owner, dataset=dataset)

    assert dataset.validation_status == "passed"
    assert dataset.validation_result["cleansing"]["duplicate_rows_dropped"] == 1
    assert dataset.validation_result["rows_checked"] == NVDA_ROWS
    with default_storage.open(dataset.file.name, "rb") as handle:
        assert handle.read() == content


# --------------------------------------------------------------------------- injected defects


def test_duplicated_date_fails_unique_and_monotonic(nvda_lines):
    k = 500
    lines = list(nvda_lines)
    twin = _set_field(lines[k], "Close", "99.0")  # same date, different values: not an exact duplicate
    lines.insert(k + 1, twin)

    report = _evaluate(lines, PRICE_RULES)

    assert report["passed"] is False
    assert report["cleansing"]["duplicate_rows_dropped"] == 0
    assert sorted(_failing(report)) == [("monotonic_timestamps", "Date", 1), ("unique", "Date", 1)]
    assert _check(report, "unique", "Date")["example_rows"] == [k]  # row k in the data (k + 1 in the file)
    assert _check(report, "monotonic_timestamps", "Date")["example_rows"] == [k]


def test_swapped_rows_fail_monotonic_timestamps(nvda_lines):
    k = 1200  # data row k-1 and k swapped
    lines = list(nvda_lines)
    lines[k], lines[k + 1] = lines[k + 1], lines[k]

    report = _evaluate(lines, _rules_without_sorting())

    assert report["passed"] is False
    assert _failing(report) == [("monotonic_timestamps", "Date", 1)]
    check = _check(report, "monotonic_timestamps", "Date")
    assert check["example_rows"] == [k]
    assert "1 timestamps not strictly after the previous one" in check["message"]


def test_swapped_rows_are_repaired_by_sort_by_time(nvda_lines):
    lines = list(nvda_lines)
    lines[1200], lines[1201] = lines[1201], lines[1200]

    report = _evaluate(lines, PRICE_RULES)

    assert report["passed"] is True
    assert report["cleansing"]["rows_reordered"] == 2


def test_removed_three_weeks_fail_max_gap_days(nvda_lines):
    kept = [line for line in nvda_lines if not ("2005-03-01" <= line[:10] <= "2005-03-21")]
    assert len(nvda_lines) - len(kept) == 15

    report = _evaluate(kept, PRICE_RULES)

    assert report["passed"] is False
    assert _failing(report) == [("max_gap_days", "Date", 1)]
    check = _check(report, "max_gap_days", "Date")
    [row] = check["example_rows"]
    assert kept[row + 1].startswith("2005-03-22")  # the first day after the hole
    assert kept[row].startswith("2005-02-28")
    assert "1 gaps longer than 7 days (widest 22 days)" in check["message"]


def test_seven_day_exchange_closure_is_within_the_gap_limit(nvda_lines):
    """September 2001: markets shut from the 11th to the 17th; the real file passes max_gap_days=7."""
    assert any(line.startswith("2001-09-10") for line in nvda_lines)
    assert not any(line.startswith("2001-09-1" + d) for d in "1234" for line in nvda_lines)
    tighter = copy.deepcopy(PRICE_RULES)
    tighter["max_gap_days"] = 6
    report = _evaluate(nvda_lines, tighter)
    assert ("max_gap_days", "Date", 1) in _failing(report)


def test_nan_close_fails_not_null(nvda_lines):
    k = 2000
    lines = list(nvda_lines)
    lines[k + 1] = _set_field(lines[k + 1], "Close", "")

    report = _evaluate(lines, PRICE_RULES)

    assert _failing(report) == [("not_null", "Close", 1)]
    check = _check(report, "not_null", "Close")
    assert check["example_rows"] == [k]
    assert check["message"] == "1 missing values in 'Close'"


def test_negative_price_fails_ranges(nvda_lines):
    k = 42
    lines = list(nvda_lines)
    lines[k + 1] = _set_field(lines[k + 1], "Low", "-0.5")

    report = _evaluate(lines, PRICE_RULES)

    assert _failing(report) == [("ranges", "Low", 1)]
    check = _check(report, "ranges", "Low")
    assert check["example_rows"] == [k]
    assert "outside [0.0001, inf]" in check["message"]


def test_zero_volume_is_within_its_range_but_zero_price_is_not(nvda_lines):
    lines = list(nvda_lines)
    lines[10] = _set_field(lines[10], "Volume", "0")
    lines[20] = _set_field(lines[20], "Open", "0")
    assert _failing(_evaluate(lines, PRICE_RULES)) == [("ranges", "Open", 1)]


def test_non_numeric_value_fails_ranges(nvda_lines):
    lines = list(nvda_lines)
    lines[300] = _set_field(lines[300], "High", "n/a-price")
    report = _evaluate(lines, PRICE_RULES)
    assert ("ranges", "High", 1) in _failing(report)


def test_missing_required_column_is_reported(nvda_lines):
    dropped = COLUMNS.index("Volume")
    lines = [",".join(f for i, f in enumerate(line.split(",")) if i != dropped) for line in nvda_lines]

    report = _evaluate(lines, PRICE_RULES)

    assert report["passed"] is False
    required = _check(report, "required_columns", "Volume")
    assert required["passed"] is False
    assert required["message"] == "required column 'Volume' is missing"
    assert all(_check(report, "required_columns", c)["passed"] for c in COLUMNS if c != "Volume")
    assert {(rule, column) for rule, column, _ in _failing(report)} == {
        ("required_columns", "Volume"),
        ("not_null", "Volume"),
        ("ranges", "Volume"),
    }


def test_unparseable_timestamp_is_reported(nvda_lines):
    k = 777
    lines = list(nvda_lines)
    lines[k + 1] = _set_field(lines[k + 1], "Date", "2003-13-45")

    report = _evaluate(lines, _rules_without_sorting())

    assert _failing(report) == [("timestamps_parse", "Date", 1)]
    check = _check(report, "timestamps_parse", "Date")
    assert check["example_rows"] == [k]
    assert check["message"] == "1 unparseable timestamps"


def test_unparseable_timestamp_survives_sort_by_time(nvda_lines):
    """Sorting must neither drop nor duplicate the row whose time does not parse."""
    lines = list(nvda_lines)
    lines[778] = _set_field(lines[778], "Date", "not-a-date")
    frame = datasets.read_csv(_csv(lines))

    cleansed, _ = datasets.apply_cleansing(frame, datasets.parse_rules(PRICE_RULES), "Date")
    report = datasets.evaluate(frame, datasets.parse_rules(PRICE_RULES), "Date")

    assert len(cleansed) == NVDA_ROWS
    assert (cleansed["Date"] == "not-a-date").sum() == 1
    assert not cleansed.duplicated().any()
    assert sorted(cleansed["Date"].tolist()) == sorted(frame["Date"].tolist())
    assert _failing(report) == [("timestamps_parse", "Date", 1)]


# --------------------------------------------------------------------------- cleansing


def test_drop_duplicate_rows_removes_an_exact_duplicate(nvda_lines):
    k = 321
    lines = [*nvda_lines[: k + 2], nvda_lines[k + 1], *nvda_lines[k + 2 :]]
    frame = datasets.read_csv(_csv(lines))
    assert len(frame) == NVDA_ROWS + 1

    report = datasets.evaluate(frame, datasets.parse_rules(PRICE_RULES), "Date")
    assert report["passed"] is True
    assert report["cleansing"]["duplicate_rows_dropped"] == 1
    assert report["rows_checked"] == NVDA_ROWS

    without = _rules_without_sorting()
    without["cleansing"] = {}
    failing = _failing(_evaluate(lines, without))
    assert sorted(failing) == [("monotonic_timestamps", "Date", 1), ("unique", "Date", 1)]


def test_sort_by_time_reorders_shuffled_rows(nvda_lines, price_rules):
    body = list(nvda_lines[1:])
    random.Random(3).shuffle(body)
    frame = datasets.read_csv(_csv([nvda_lines[0], *body]))

    cleansed, changes = datasets.apply_cleansing(frame, price_rules, "Date")

    original = datasets.read_csv(_csv(nvda_lines))
    pd.testing.assert_frame_equal(cleansed, original)
    assert changes["rows_reordered"] > NVDA_ROWS // 2
    assert list(cleansed.index) == list(range(NVDA_ROWS))
    assert datasets.evaluate(frame, price_rules, "Date")["passed"] is True
    unsorted = _evaluate([nvda_lines[0], *body], {"monotonic_timestamps": True})
    assert _failing(unsorted) == [("monotonic_timestamps", "Date", _count_descents(body))]


def _count_descents(body: list[str]) -> int:
    dates = [line[:10] for line in body]
    return sum(1 for a, b in itertools.pairwise(dates) if b <= a)


def test_forward_fill_fills_missing_cells_and_reports_them(nvda_lines):
    k = 900
    lines = list(nvda_lines)
    lines[k + 1] = _set_field(lines[k + 1], "Close", "")
    lines[k + 2] = _set_field(lines[k + 2], "Close", "")
    lines[k + 2] = _set_field(lines[k + 2], "Volume", "")
    frame = datasets.read_csv(_csv(lines))
    rules = datasets.parse_rules(
        {"not_null": ["Close", "Volume"], "cleansing": {"forward_fill": ["Close", "Volume", "NotAColumn"]}}
    )

    cleansed, changes = datasets.apply_cleansing(frame, rules, "Date")

    assert changes == {"cells_forward_filled": 3}
    assert cleansed.loc[k, "Close"] == frame.loc[k - 1, "Close"]
    assert cleansed.loc[k + 1, "Close"] == frame.loc[k - 1, "Close"]
    assert cleansed.loc[k + 1, "Volume"] == frame.loc[k, "Volume"]
    assert frame["Close"].isna().sum() == 2  # the input frame is not modified
    report = datasets.evaluate(frame, rules, "Date")
    assert report["passed"] is True
    assert report["cleansing"] == {"cells_forward_filled": 3}

    unfilled = datasets.evaluate(frame, datasets.parse_rules({"not_null": ["Close", "Volume"]}), "Date")
    assert sorted(_failing(unfilled)) == [("not_null", "Close", 2), ("not_null", "Volume", 1)]


def test_drop_rows_with_null_removes_them_and_reports(nvda_lines):
    lines = list(nvda_lines)
    lines[5] = _set_field(lines[5], "Close", "")
    rules = datasets.parse_rules({"not_null": ["Close"], "cleansing": {"drop_rows_with_null": ["Close"]}})

    report = datasets.evaluate(datasets.read_csv(_csv(lines)), rules, "Date")

    assert report["passed"] is True
    assert report["cleansing"] == {"rows_with_null_dropped": 1}
    assert report["rows_checked"] == NVDA_ROWS - 1


# --------------------------------------------------------------------------- bad files at registration


def _nothing_written(before: tuple[int, int]) -> bool:
    return (Dataset.objects.count(), Event.objects.count()) == before


BINARY_GARBAGE = {
    "random": random.Random(11).randbytes(4096),
    "gzip": gzip.compress(PRICE_CSV),
    "png": b"\x89PNG\r\n\x1a\n" + random.Random(5).randbytes(512),
    "nul-padded": b"\x00" * 256,
    "elf-header": b"\x7fELF\x02\x01\x01\x00" + b"\x00" * 8 + b"\x02\x00\x3e\x00\x01\x00\x00\x00" * 4,
}


@pytest.mark.django_db
@pytest.mark.parametrize("content", [b"", b"   \n\n  \n"], ids=["empty", "whitespace"])
def test_empty_file_is_refused_and_nothing_written(make_dataset, content):
    before = (Dataset.objects.count(), Event.objects.count())
    with pytest.raises(InvalidDataset, match="empty"):
        make_dataset(content=content)
    assert _nothing_written(before)


@pytest.mark.django_db
@pytest.mark.parametrize("content", BINARY_GARBAGE.values(), ids=BINARY_GARBAGE.keys())
def test_binary_garbage_is_refused_as_invalid_dataset(make_dataset, content):
    before = (Dataset.objects.count(), Event.objects.count())
    with pytest.raises(InvalidDataset):
        make_dataset(content=content, time_column="", rules={})
    assert _nothing_written(before)
    assert not default_storage.exists(f"datasets/{hashlib.sha256(content).hexdigest()}.csv")


@pytest.mark.parametrize("content", BINARY_GARBAGE.values(), ids=BINARY_GARBAGE.keys())
def test_read_csv_refuses_binary_garbage_with_a_reason(content):
    with pytest.raises(InvalidDataset) as excinfo:
        datasets.read_csv(content)
    assert excinfo.value.status == 400
    assert excinfo.value.message.startswith("the dataset")


@pytest.mark.django_db
def test_missing_time_column_is_a_validation_error_and_nothing_written(make_dataset):
    content = PRICE_CSV.replace(b"Date,", b"Day,", 1)
    before = (Dataset.objects.count(), Event.objects.count())

    with pytest.raises(ValidationError) as excinfo:
        make_dataset(content=content, time_column="Date", rules={})

    [message] = excinfo.value.message_dict["time_column"]
    assert "'Date'" in message
    assert "Day" in message  # lists the columns that are there
    assert _nothing_written(before)
    assert not default_storage.exists(f"datasets/{hashlib.sha256(content).hexdigest()}.csv")


@pytest.mark.django_db
def test_dataset_over_the_size_limit_is_refused_with_413(settings, make_dataset, nvda_bytes):
    settings.GOVERNANCE_MAX_DATASET_BYTES = len(nvda_bytes) - 1
    before = (Dataset.objects.count(), Event.objects.count())

    with pytest.raises(PayloadTooLarge) as excinfo:
        make_dataset(content=nvda_bytes)

    assert excinfo.value.status == 413
    assert f"{len(nvda_bytes):,}" in excinfo.value.message
    assert _nothing_written(before)

    settings.GOVERNANCE_MAX_DATASET_BYTES = len(nvda_bytes)
    assert make_dataset(content=nvda_bytes).size_bytes == len(nvda_bytes)


@pytest.mark.django_db
def test_malformed_rules_at_registration_write_nothing(make_dataset):
    before = (Dataset.objects.count(), Event.objects.count())
    with pytest.raises(ValidationError) as excinfo:
        make_dataset(rules={"max_gap_days": -1})
    assert excinfo.value.message_dict["rules"] == ["max_gap_days: must be positive"]
    assert _nothing_written(before)


@pytest.mark.django_db
def test_repeated_column_names_are_refused(make_dataset):
    content = b"Date,Close,Close\n2020-01-02,1,2\n"
    with pytest.raises(InvalidDataset, match="repeats column names: Close"):
        make_dataset(content=content)


# --------------------------------------------------------------------------- dataset_update


@pytest.mark.django_db
def test_changing_rules_resets_validation(owner, make_dataset, nvda_bytes):
    dataset = make_dataset(name="nvda", content=nvda_bytes, rules=copy.deepcopy(PRICE_RULES))
    dataset = services.dataset_validate(actor=owner, dataset=dataset)
    assert dataset.validation_status == "passed"

    stricter = copy.deepcopy(PRICE_RULES)
    stricter["max_gap_days"] = 3
    updated = services.dataset_update(actor=owner, dataset=dataset, changes={"rules": stricter}, reason="tighter")
    updated.refresh_from_db()

    assert updated.validation_status == "not_validated"
    assert updated.validation_result is None
    assert updated.validated_at is None
    assert updated.rules["max_gap_days"] == 3
    [event] = Event.objects.filter(action="dataset.updated", object_id=str(dataset.pk))
    assert event.reason == "tighter"
    assert event.before["validation_status"] == "passed"
    assert event.after["validation_status"] == "not_validated"

    revalidated = services.dataset_validate(actor=owner, dataset=updated)
    assert revalidated.validation_status == "failed"
    assert [rule for rule, _, _ in _failing(revalidated.validation_result)] == ["max_gap_days"]


@pytest.mark.django_db
def test_same_rules_or_metadata_change_keeps_validation(owner, make_dataset, nvda_bytes):
    dataset = make_dataset(name="nvda", content=nvda_bytes, rules=copy.deepcopy(PRICE_RULES))
    dataset = services.dataset_validate(actor=owner, dataset=dataset)

    services.dataset_update(actor=owner, dataset=dataset, changes={"rules": copy.deepcopy(PRICE_RULES)})
    services.dataset_update(actor=owner, dataset=dataset, changes={"description": "Daily NVDA bars."})
    dataset.refresh_from_db()

    assert dataset.validation_status == "passed"
    assert dataset.description == "Daily NVDA bars."


@pytest.mark.django_db
@pytest.mark.parametrize(
    "changes",
    [{"content_sha256": "0" * 64}, {"row_count": 1}, {"validation_status": "passed"}, {"name": "renamed"}],
    ids=["sha", "row_count", "validation_status", "name"],
)
def test_update_refuses_fields_that_cannot_change(owner, make_dataset, changes):
    dataset = make_dataset()
    before = (Dataset.objects.get(pk=dataset.pk).content_sha256, Event.objects.count())

    with pytest.raises(ValidationError) as excinfo:
        services.dataset_update(actor=owner, dataset=dataset, changes=changes)

    [field] = changes
    assert excinfo.value.message_dict == {field: ["cannot be changed on a dataset"]}
    dataset.refresh_from_db()
    assert (dataset.content_sha256, Event.objects.count()) == before
    assert getattr(dataset, field) != changes[field]


@pytest.mark.django_db
def test_update_with_malformed_rules_is_refused(owner, make_dataset):
    dataset = make_dataset()
    with pytest.raises(ValidationError) as excinfo:
        services.dataset_update(actor=owner, dataset=dataset, changes={"rules": {"cleansing": {"shuffle": True}}})
    assert excinfo.value.message_dict["rules"][0].startswith("cleansing.shuffle:")
    dataset.refresh_from_db()
    assert dataset.rules == {"required_columns": ["Date", "Close"], "monotonic_timestamps": True}
