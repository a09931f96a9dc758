"""Loading the ingest tables and mapping them onto the entity order."""

from __future__ import annotations

import numpy as np
import pandas as pd


def read_items(path: str) -> pd.DataFrame:
    return pd.read_parquet(path)


def read_interactions(path: str) -> pd.DataFrame:
    return pd.read_parquet(path)


def vocabulary_rows(interactions: pd.DataFrame, items: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray]:
    """The interactions whose item is in the vocabulary, and each one's entity index."""
    index = pd.Series(np.arange(len(items)), index=items["item"].astype(str))
    known = interactions["item"].astype(str).isin(index.index)
    rows = interactions[known.to_numpy()]
    return rows, index.loc[rows["item"].astype(str)].to_numpy()
