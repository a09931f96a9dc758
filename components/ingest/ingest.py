"""ingest: read Online Retail transactions, validate them, and write clean tables.

Input: CSV (.csv, .csv.gz) or Parquet, a local path or gs:// URI, with the UCI columns
InvoiceNo, StockCode, Description, Quantity, InvoiceDate, UnitPrice, CustomerID; or a folder (a
local directory, a gs:// prefix ending in '/') of such files; or several of these, read in order
(a retrain reads the production data and the new batch). Each file is validated on its own, so an
error names the file it is in.
Output (Parquet):
- interactions: invoice, item, customer (nullable), quantity, unit_price, timestamp;
- items: the vocabulary (items in at least `min_item_count` baskets), sorted by id, with
  description, basket count and median price: its row order is the entity order everywhere;
- customers: customer, first and last purchase, number of invoices.
Cleaning drops cancellations (invoice starting with C), non-product stock codes (postage, fees,
manual entries, gift vouchers: anything that is not five digits plus optional letters), and rows
with a non-positive quantity or price. Nothing is written unless every check passes.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from reprflow.components.common.errors import DataError
from reprflow.components.common.storage import expand_sources, local_copy_with_info

log = logging.getLogger(__name__)

REQUIRED_COLUMNS = (
    "InvoiceNo",
    "StockCode",
    "Description",
    "Quantity",
    "InvoiceDate",
    "UnitPrice",
    "CustomerID",
)
PRODUCT_CODE = re.compile(r"^\d{5}[A-Z]*$")
DATE_FORMATS = ("%Y-%m-%d %H:%M:%S", "%m/%d/%Y %H:%M")  # this copy; the UCI spreadsheet's CSV export


@dataclass(frozen=True)
class IngestResult:
    interactions: pd.DataFrame
    items: pd.DataFrame
    customers: pd.DataFrame
    stats: dict[str, int]
    inputs: list[dict] = field(default_factory=list)  # the files read: uri, bytes, crc32c, generation


def read_table(path: Path, source: str, max_rows: int | None = None) -> pd.DataFrame:
    """Read CSV/Parquet with every required column as text (parsing is ours, so errors are too)."""
    name = source.lower()
    try:
        if name.endswith(".parquet"):
            df = pd.read_parquet(path)
            if max_rows is not None:
                df = df.head(max_rows)
        elif name.endswith((".csv", ".csv.gz")):
            df = pd.read_csv(path, dtype=str, keep_default_na=False, nrows=max_rows)
        else:
            raise DataError(f"{source}: unsupported file type (expected .csv, .csv.gz or .parquet)")
    except DataError:
        raise
    except Exception as exc:
        raise DataError(f"{source}: cannot read as a table ({type(exc).__name__}: {exc})") from exc
    missing = [c for c in REQUIRED_COLUMNS if c not in df.columns]
    if missing:
        found = ", ".join(_printable(str(c)) for c in df.columns)
        raise DataError(f"{source}: missing column '{missing[0]}' (found: {found})")
    return df


def _printable(text: str, limit: int = 60) -> str:
    """`text` for an error line: control bytes escaped (a binary file's "header"), long text cut."""
    text = "".join(ch if ch.isprintable() else ascii(ch)[1:-1] for ch in text)
    return text if len(text) <= limit else text[:limit] + "..."


def _bad_value(source: str, df: pd.DataFrame, column: str, bad: pd.Series, what: str) -> DataError:
    first = bad.to_numpy().nonzero()[0][0]
    line = f"row {first + 1}" if source.lower().endswith(".parquet") else f"line {first + 2}"
    return DataError(
        f"{source}: column '{column}' {line}: cannot parse {df[column].iloc[first]!r} as {what} "
        f"({int(bad.sum())} such rows)"
    )


def _numbers(source: str, df: pd.DataFrame, column: str, integer: bool) -> pd.Series:
    raw = df[column]
    values = pd.to_numeric(raw.astype(str).str.strip(), errors="coerce")
    bad = values.isna() | ~np.isfinite(values)
    if integer:
        bad |= values.notna() & (values != values.round())
    if bad.any():
        raise _bad_value(source, df, column, bad, "an integer" if integer else "a number")
    return values.astype("int64" if integer else "float64")


def parse_dates(source: str, df: pd.DataFrame) -> pd.Series:
    """The InvoiceDate column as timestamps (either accepted format); DataError naming a bad value."""
    raw = df["InvoiceDate"]
    if pd.api.types.is_datetime64_any_dtype(raw):
        parsed = raw
        if raw.dt.tz is not None:  # local wall-clock times without a zone, as the CSV files write them
            log.info("%s: column 'InvoiceDate' is in time zone %s; its local times are used", source, raw.dt.tz)
            parsed = raw.dt.tz_localize(None)
    else:
        text = raw.astype(str).str.strip()
        parsed = pd.to_datetime(text, format=DATE_FORMATS[0], errors="coerce")
        for fmt in DATE_FORMATS[1:]:
            if parsed.isna().any():
                parsed = parsed.fillna(pd.to_datetime(text, format=fmt, errors="coerce"))
    bad = parsed.isna()
    if bad.any():
        raise _bad_value(source, df, "InvoiceDate", bad, "a date (YYYY-MM-DD HH:MM:SS)")
    return parsed


def _customers(source: str, df: pd.DataFrame) -> pd.Series:
    text = df["CustomerID"].astype(str).str.strip()
    text = text.mask(text.isin(["", "nan", "None", "<NA>"]))
    # The UCI file writes ids as floats ("17850.0"); keep them as integer strings.
    numeric = pd.to_numeric(text, errors="coerce")
    bad = text.notna() & (numeric.isna() | (numeric != numeric.round()))
    if bad.any():
        raise _bad_value(source, df, "CustomerID", bad, "a customer id")
    return numeric.astype("Int64").astype("string")


def clean_rows(df: pd.DataFrame, source: str) -> tuple[pd.DataFrame, pd.Series, dict[str, int]]:
    """Validate one file's rows and keep the usable ones: (interactions, their descriptions, counts)."""
    if len(df) == 0:
        raise DataError(f"{source}: the file has no data rows")
    invoice = df["InvoiceNo"].astype(str).str.strip()
    item = df["StockCode"].astype(str).str.strip().str.upper()
    quantity = _numbers(source, df, "Quantity", integer=True)
    price = _numbers(source, df, "UnitPrice", integer=False)
    timestamp = parse_dates(source, df)
    customer = _customers(source, df)

    cancelled = invoice.str.upper().str.startswith("C")
    non_product = ~item.str.match(PRODUCT_CODE)
    non_positive = (quantity <= 0) | (price <= 0)
    keep = ~(cancelled | non_product | non_positive)
    stats = {
        "rows_read": len(df),
        "cancellations": int(cancelled.sum()),
        "non_product_rows": int((non_product & ~cancelled).sum()),
        "non_positive_rows": int((non_positive & ~cancelled & ~non_product).sum()),
    }
    interactions = pd.DataFrame(
        {
            "invoice": invoice[keep].astype("string"),
            "item": item[keep].astype("string"),
            "customer": customer[keep],
            "quantity": quantity[keep],
            "unit_price": price[keep],
            "timestamp": timestamp[keep],
        }
    ).reset_index(drop=True)
    description = df["Description"].astype(str).str.strip()[keep].reset_index(drop=True)
    return interactions, description, stats


def build_tables(
    interactions: pd.DataFrame, description: pd.Series, stats: dict[str, int], source: str, min_item_count: int
) -> IngestResult:
    """The item and customer tables of the cleaned interactions of every file (exact duplicate rows,
    a known artefact of the UCI file, counted once)."""
    duplicate = pd.concat([interactions, description.rename("description")], axis=1).duplicated().to_numpy()
    interactions = interactions[~duplicate].reset_index(drop=True)
    description = description[~duplicate].reset_index(drop=True)
    stats = stats | {"duplicate_rows": int(duplicate.sum())}
    if interactions.empty:
        raise DataError(
            f"{source}: no rows left after cleaning ({stats['rows_read']} read: "
            f"{stats['cancellations']} cancellations, {stats['non_product_rows']} non-product codes, "
            f"{stats['non_positive_rows']} non-positive quantities or prices)"
        )
    items = _item_table(interactions, description, min_item_count)
    if len(items) < 2:
        raise DataError(
            f"{source}: only {len(items)} item(s) appear in at least {min_item_count} baskets "
            f"(field data.min_item_count); an embedding needs more"
        )
    customers = (
        interactions.dropna(subset=["customer"])
        .groupby("customer")
        .agg(
            first_purchase=("timestamp", "min"),
            last_purchase=("timestamp", "max"),
            invoices=("invoice", "nunique"),
        )
        .reset_index()
        .sort_values("customer", ignore_index=True)
    )
    stats = stats | {
        "rows": len(interactions),
        "items": len(items),
        "baskets": int(interactions["invoice"].nunique()),
        "customers": len(customers),
    }
    return IngestResult(interactions, items, customers, stats)


def clean(df: pd.DataFrame, source: str, min_item_count: int) -> IngestResult:
    """Validate and clean raw transactions; DataError on anything that cannot be used."""
    interactions, description, stats = clean_rows(df, source)
    return build_tables(interactions, description, stats, source, min_item_count)


def _item_table(interactions: pd.DataFrame, description: pd.Series, min_count: int) -> pd.DataFrame:
    per_item = interactions.groupby("item")
    baskets = per_item["invoice"].nunique()
    frame = pd.DataFrame({"item": interactions["item"], "description": description})
    frame = frame[frame["description"] != ""]
    # The most frequent description, ties by text: stock codes are sometimes relabelled.
    top = (
        frame.value_counts(["item", "description"])
        .reset_index()
        .sort_values(["item", "count", "description"], ascending=[True, False, True])
        .drop_duplicates("item")
        .set_index("item")["description"]
    )
    items = pd.DataFrame(
        {
            "baskets": baskets,
            "median_price": per_item["unit_price"].median(),
            "description": top.reindex(baskets.index).fillna("").astype("string"),
        }
    )
    items = items[items["baskets"] >= min_count].reset_index().rename(columns={"index": "item"})
    items = items.sort_values("item", ignore_index=True)
    return items[["item", "description", "baskets", "median_price"]]


def ingest(uris: str | Sequence[str], min_item_count: int = 5, max_rows: int | None = None) -> IngestResult:
    """Read every data file behind `uris` (paths, folders, gs:// URIs or prefixes), in order, and
    return the cleaned tables; `max_rows` caps the rows read over all files. The result's
    `inputs` say which files were read (URI, bytes, crc32c, gs:// generation) for provenance."""
    # each file once: a retrain names production's files and a folder that may hold them too
    sources = list(dict.fromkeys(f for uri in ([uris] if isinstance(uris, str) else uris) for f in expand_sources(uri)))
    frames, descriptions, inputs, stats = [], [], [], Counter()
    for source in sources:
        left = None if max_rows is None else max_rows - stats["rows_read"]
        if left is not None and left <= 0:
            break
        with local_copy_with_info(source) as (path, info):
            df = read_table(path, source, left)
        rows, description, counts = clean_rows(df, source)
        frames.append(rows)
        descriptions.append(description)
        inputs.append(info)
        stats.update(counts)
    label = sources[0] if len(sources) == 1 else f"{sources[0]} (+{len(sources) - 1} more files)"
    result = build_tables(pd.concat(frames, ignore_index=True), pd.concat(descriptions, ignore_index=True),
                          dict(stats), label, min_item_count)
    result = IngestResult(result.interactions, result.items, result.customers, result.stats, inputs)
    log.info("ingest %s: %s", label, result.stats)
    return result


def write_outputs(result: IngestResult, interactions: str, items: str, customers: str) -> None:
    """Write the three tables as a set: all are written to temporary files first and renamed only
    once every one is complete; on any failure none of them appears."""
    staged: list[tuple[Path, Path]] = []
    try:
        for frame, path in ((result.interactions, interactions), (result.items, items), (result.customers, customers)):
            target = Path(path)
            target.parent.mkdir(parents=True, exist_ok=True)
            staged.append((target.with_name(f".{target.name}.tmp"), target))
            frame.to_parquet(staged[-1][0], index=False)
        for tmp, target in staged:
            tmp.replace(target)
    except BaseException:
        for tmp, _ in staged:
            tmp.unlink(missing_ok=True)
        raise
