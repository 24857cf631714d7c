"""Text columns of the simulated CRM, built as Arrow strings (pandas' ``str`` dtype).

The 10x demo has millions of ids, names and channel labels; building them one
Python string per row (or from NumPy's fixed-width unicode arrays, which pandas
converts element by element) cost most of the simulation's time. These helpers
give the same values and dtype with Arrow's compute kernels.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["ids", "join", "numbers", "sort_rows", "take"]


def take(values, idx) -> pd.api.extensions.ExtensionArray:
    """``values[idx]`` (a few labels, or a pandas text array) as a pandas ``str`` array."""
    idx = np.asarray(idx, dtype=np.int64)
    if isinstance(values, pd.api.extensions.ExtensionArray):
        return values.take(idx)
    labels = pa.array(np.asarray(values, dtype=object), pa.large_string())
    return pd.array(labels.take(pa.array(idx)), dtype="str")


def numbers(x, width: int = 0) -> pa.Array:
    """Integers as decimal text, zero-padded to ``width`` digits."""
    text = pc.cast(pa.array(np.asarray(x, dtype=np.int64)), pa.large_string())
    return pc.utf8_lpad(text, width=width, padding="0") if width else text


def join(*parts) -> pd.api.extensions.ExtensionArray:
    """Concatenate text arrays (and constant strings) row by row, as a pandas ``str`` array."""
    text = pa.large_string()
    arrays = [pa.scalar(p, text) if isinstance(p, str) else p if isinstance(p, pa.Array)
              else pa.array(p, text) for p in parts]
    return pd.array(pc.binary_join_element_wise(*arrays, pa.scalar("", text)), dtype="str")


def ids(prefix: str, n: int, width: int) -> pd.api.extensions.ExtensionArray:
    """``prefix`` + 1..n zero-padded to ``width`` digits ("C000001", ...)."""
    return join(prefix, numbers(np.arange(1, n + 1), width))


def sort_rows(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """``frame.sort_values(keys, kind="mergesort").reset_index(drop=True)``, sorted by Arrow.

    Arrow's sort is stable too and compares text without factorizing it first.
    """
    table = pa.table({k: pa.array(frame[k]) for k in keys})
    order = pc.sort_indices(table, sort_keys=[(k, "ascending") for k in keys])
    return frame.take(np.asarray(order)).reset_index(drop=True)
