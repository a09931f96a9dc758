"""ingest: cleaning rules on real data, and every rejected input with its message and no output."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from reprflow.components.common.errors import DataError
from reprflow.components.ingest.ingest import clean, ingest, write_outputs

HEADER = "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\n"
GOOD_ROWS = [
    "536365,85123A,WHITE HANGING HEART T-LIGHT HOLDER,6,2010-12-01 08:26:00,2.55,17850.0,United Kingdom",
    "536365,71053,WHITE METAL LANTERN,6,2010-12-01 08:26:00,3.39,17850.0,United Kingdom",
    "536366,85123A,WHITE HANGING HEART T-LIGHT HOLDER,2,2010-12-01 09:00:00,2.55,,United Kingdom",
    "536366,71053,WHITE METAL LANTERN,1,2010-12-01 09:00:00,3.39,,United Kingdom",
]


def write_csv(tmp_path: Path, rows: list[str], header: str = HEADER) -> Path:
    path = tmp_path / "input.csv"
    path.write_text(header + "\n".join(rows) + "\n")
    return path


def test_cleaning_rules_on_real_slice(retail_slice: Path) -> None:
    result = ingest(str(retail_slice), min_item_count=3)
    inter = result.interactions
    assert not inter["invoice"].str.startswith("C").any()
    assert inter["item"].str.match(r"^\d{5}[A-Z]*$").all()
    assert (inter["quantity"] > 0).all() and (inter["unit_price"] > 0).all()
    raw = pd.read_csv(retail_slice, dtype=str, keep_default_na=False)
    s = result.stats
    assert s["rows_read"] == len(raw)
    assert s["rows"] == len(inter) == (s["rows_read"] - s["cancellations"] - s["non_product_rows"]
                                       - s["non_positive_rows"] - s["duplicate_rows"])
    assert not inter.duplicated().any()
    assert s["cancellations"] == raw["InvoiceNo"].str.startswith("C").sum()
    # Vocabulary: sorted ids, each in at least min_item_count baskets, counted correctly.
    items = result.items
    assert items["item"].is_monotonic_increasing and items["item"].is_unique
    assert (items["baskets"] >= 3).all()
    sample = items.iloc[len(items) // 2]
    assert sample["baskets"] == inter.loc[inter["item"] == sample["item"], "invoice"].nunique()
    # Customer ids lose the float formatting of the source ("17850.0" -> "17850").
    assert not result.customers["customer"].str.contains(r"\.").any()
    assert s["customers"] == inter["customer"].dropna().nunique()


def test_csv_gz_and_parquet_read_the_same(tmp_path: Path, retail_slice: Path) -> None:
    df = pd.read_csv(retail_slice, dtype=str, keep_default_na=False, nrows=5000)
    df.to_csv(tmp_path / "a.csv.gz", index=False)
    df.to_parquet(tmp_path / "a.parquet", index=False)
    a = ingest(str(tmp_path / "a.csv.gz"), 2)
    b = ingest(str(tmp_path / "a.parquet"), 2)
    pd.testing.assert_frame_equal(a.interactions, b.interactions)
    pd.testing.assert_frame_equal(a.items, b.items)


def test_uci_spreadsheet_date_format_is_accepted(tmp_path: Path) -> None:
    rows = [r.replace("2010-12-01 08:26:00", "12/1/2010 8:26").replace("2010-12-01 09:00:00", "12/1/2010 9:00") for r in GOOD_ROWS]
    result = ingest(str(write_csv(tmp_path, rows)), 1)
    assert str(result.interactions["timestamp"].iloc[0]) == "2010-12-01 08:26:00"


@pytest.mark.parametrize(
    "rows, header, message",
    [
        (GOOD_ROWS, HEADER.replace("UnitPrice,", ""), "missing column 'UnitPrice'"),
        ([GOOD_ROWS[0], GOOD_ROWS[1].replace("2010-12-01 08:26:00", "yesterday")], HEADER,
         "column 'InvoiceDate' line 3: cannot parse 'yesterday'"),
        ([GOOD_ROWS[0], GOOD_ROWS[1].replace("17850.0", "ACME")], HEADER,
         "column 'CustomerID' line 3: cannot parse 'ACME' as a customer id"),
        ([GOOD_ROWS[0].replace(",2.55,", ",abc,")], HEADER, "column 'UnitPrice' line 2: cannot parse 'abc' as a number"),
        ([GOOD_ROWS[0].replace(",6,", ",six,")], HEADER, "column 'Quantity' line 2: cannot parse 'six' as an integer"),
        ([r.replace("536365", "C536365").replace("536366", "C536366") for r in GOOD_ROWS], HEADER,
         "no rows left after cleaning (4 read: 4 cancellations"),
        ([], HEADER, "has no data rows"),
    ],
    ids=["missing-column", "bad-date", "bad-customer", "bad-price", "bad-quantity", "all-cancelled", "empty"],
)
def test_rejected_inputs_name_file_column_value_and_write_nothing(
    tmp_path: Path, rows: list[str], header: str, message: str
) -> None:
    path = write_csv(tmp_path, rows, header)
    out = tmp_path / "out"
    with pytest.raises(DataError) as err:
        result = ingest(str(path), 1)
        write_outputs(result, str(out / "i.parquet"), str(out / "it.parquet"), str(out / "c.parquet"))
    assert str(path) in str(err.value)
    assert message in str(err.value)
    assert not out.exists()


def test_too_small_vocabulary_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="min_item_count"):
        ingest(str(write_csv(tmp_path, GOOD_ROWS)), min_item_count=50)


def test_missing_file_and_unsupported_type(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no such file"):
        ingest(str(tmp_path / "nope.csv"))
    other = tmp_path / "data.xlsx"
    other.write_text("x")
    with pytest.raises(DataError, match="unsupported file type"):
        ingest(str(other))


def test_a_binary_file_is_named_with_its_header_escaped(tmp_path: Path) -> None:
    path = tmp_path / "blob.csv"
    path.write_bytes(b"\x00\x01garbage" + b"x" * 100)
    with pytest.raises(DataError) as err:
        ingest(str(path))
    assert str(err.value) == f"{path}: missing column 'InvoiceNo' (found: \\x00\\x01garbage{'x' * 45}...)"


def test_exact_duplicate_rows_count_once(tmp_path: Path) -> None:
    result = ingest(str(write_csv(tmp_path, GOOD_ROWS + GOOD_ROWS[:1])), 1)
    assert result.stats["duplicate_rows"] == 1 and len(result.interactions) == len(GOOD_ROWS)
    # the same item, time and invoice at another price is not a duplicate
    result = ingest(str(write_csv(tmp_path, GOOD_ROWS + [GOOD_ROWS[0].replace(",2.55,", ",2.56,")])), 1)
    assert result.stats["duplicate_rows"] == 0 and len(result.interactions) == len(GOOD_ROWS) + 1


def test_time_zone_aware_parquet_dates_mix_with_csv_dates(tmp_path: Path) -> None:
    csv = write_csv(tmp_path, GOOD_ROWS[:2])
    frame = pd.DataFrame([r.split(",") for r in GOOD_ROWS[2:]], columns=HEADER.strip().split(","))
    frame["InvoiceDate"] = pd.to_datetime(frame["InvoiceDate"]).dt.tz_localize("Europe/London")
    frame.to_parquet(tmp_path / "later.parquet")
    result = ingest([str(csv), str(tmp_path / "later.parquet")], 1)
    assert result.interactions["timestamp"].dt.tz is None
    assert str(result.interactions["timestamp"].iloc[-1]) == "2010-12-01 09:00:00"  # the local time, kept


def test_a_failed_write_leaves_none_of_the_three_tables(tmp_path: Path) -> None:
    result = ingest(str(write_csv(tmp_path, GOOD_ROWS)), 1)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "blocked").write_text("a file where a folder is needed")
    with pytest.raises(OSError):
        write_outputs(result, str(tmp_path / "out" / "i.parquet"), str(tmp_path / "out" / "it.parquet"),
                      str(tmp_path / "out" / "blocked" / "c.parquet"))
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["blocked"]


def test_clean_is_pure_on_frames() -> None:
    df = pd.DataFrame([r.split(",") for r in GOOD_ROWS], columns=HEADER.strip().split(","))
    before = df.copy()
    result = clean(df, "<frame>", 1)
    pd.testing.assert_frame_equal(df, before)
    assert result.stats["baskets"] == 2 and result.stats["customers"] == 1 and result.stats["items"] == 2
