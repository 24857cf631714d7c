"""Customer journeys as path counts: built in-database, read from ChannelAttribution's format.

Every attribution model in :mod:`crmstats.attribution` takes *path counts*: one
row per distinct journey (the ordered tuple of channels a contact touched),
with the conversions, conversion value and non-converting journeys ("nulls")
that followed it. :func:`build_paths` computes them from the canonical
``touchpoints`` and ``conversions`` tables with Ibis, so millions of touches
stay in the database and only the distinct paths come back.

The models also accept the path format of the ChannelAttribution package [1]_
(``path`` as ``"a > b > c"``, ``total_conversions``, ``total_conversion_value``,
``total_null``); :func:`from_channelattribution` and
:func:`to_channelattribution` convert between the two.

References
----------
.. [1] Altomare, D. and Loris, D. ChannelAttribution: Markov model for online
   multi-channel attribution. https://channelattribution.io

Over 500 lines: building path counts in-database, the ChannelAttribution
converters and the one reader every model uses on its input (``_as_path_data``:
encoding the paths, merging duplicate rows; ``_path_data_once`` reads a frame
once for many models) define one frame and stay together.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from crmstats.exceptions import DataError, DataWarning

# Ibis is imported where the database work is (build_paths), not at module level: fitting a
# model on path counts (MarkovAttribution, ShapleyAttribution) never needs it.

__all__ = ["build_paths", "from_channelattribution", "to_channelattribution"]

#: Column names of ChannelAttribution's path format.
CA_COLUMNS = {
    "path": "path",
    "conversions": "total_conversions",
    "value": "total_conversion_value",
    "nulls": "total_null",
}


def _seconds(col):
    return col.epoch_seconds().cast("float64")


def build_paths(
    touchpoints: Any,
    conversions: Any,
    *,
    lookback: float | pd.Timedelta | None = None,
    max_touches: int | None = None,
    half_life: float | pd.Timedelta | None = None,
    contacts: Any = None,
    by: list[str] | tuple[str, ...] | None = None,
    journey_id_col: str | None = None,
    timestamp_col: str | None = None,
    channel_col: str | None = None,
    value_col: str | None = None,
) -> pd.DataFrame:
    """Count the distinct customer journeys, with their conversions, value and nulls.

    A journey is every touch of one ``journey_id`` in time order. The rules:

    * **A converting journey ends at its conversion.** Touches after the
      conversion timestamp do not count (a touch at the same instant does).
    * **A non-converting journey ends at the end of the window**: all its touches
      count, and it adds one to ``nulls`` of its path.
    * ``lookback`` keeps only touches at most ``lookback`` before the journey's
      end — the conversion for converting journeys, the last touch for the others
      (measuring it from the end of the data window would drop every early
      non-converting journey and inflate conversion rates).
    * ``max_touches`` then keeps the last ``max_touches`` touches (the ones
      nearest the conversion).
    * Touches with equal timestamps are ordered by channel name, so the result
      is deterministic.
    * A conversion with no touch before it (or whose journey has no touchpoints)
      cannot be credited to a channel: it is left out with a
      :class:`~crmstats.DataWarning` giving the count.

    Parameters
    ----------
    touchpoints : DataFrame, path or ibis.Table
        Canonical touchpoints table (``journey_id``, ``timestamp``, ``channel``).
    conversions : DataFrame, path or ibis.Table
        Canonical conversions table (``journey_id``, ``timestamp``, ``value``),
        one row per converting journey.
    lookback : float or Timedelta, optional
        Lookback window; a number means days.
    max_touches : int, optional
        Keep at most this many touches per journey (the last ones).
    half_life : float or Timedelta, optional
        Half-life of the time-decay weights (a number means days). When given,
        the result also carries the per-position time-decay credit that
        :func:`~crmstats.attribution.heuristic` needs for ``model="time_decay"``:
        a touch ``d`` days before its conversion weighs ``0.5 ** (d / half_life)``,
        weights are normalised within each converting journey, and the
        columns ``decay_conversions`` and ``decay_value`` hold, per path, the
        tuple of these normalised weights summed over its converting journeys
        (and weighted by their values).
    contacts : DataFrame, path or ibis.Table, optional
        Canonical contacts table, whose ``by`` columns describe each journey
        (a journey's id is its contact's id).
    by : list of str, optional
        Contacts columns to count the paths by as well: one row per path and
        combination of their values (for models of conversion that adjust for
        who the contact is, :class:`~crmstats.attribution.IncrementalityModel`
        with ``covariates``). Other models sum such rows back per path.
    journey_id_col, timestamp_col, channel_col, value_col : str, optional
        The caller's names of the canonical columns (``journey_id`` and
        ``timestamp`` are used for both tables).

    Returns
    -------
    pandas.DataFrame
        One row per distinct path, most frequent first: ``path`` (tuple of
        channel names in time order), ``conversions`` (int), ``value`` (sum of
        conversion values), ``nulls`` (non-converting journeys, int), the ``by``
        columns, and with ``half_life`` the two ``decay_*`` columns.
    """
    import ibis

    from crmstats.backend import execute, execute_arrow
    from crmstats.validation import as_table

    if max_touches is not None and int(max_touches) < 1:
        raise ValueError(f"max_touches must be at least 1, got {max_touches}")
    lookback_s = _to_seconds(lookback, "lookback")
    half_life_s = _to_seconds(half_life, "half_life")
    if half_life_s is not None and half_life_s <= 0:
        raise ValueError(f"half_life must be positive, got {half_life}")
    tp = as_table(touchpoints, "touchpoints", columns={
        "journey_id": journey_id_col, "timestamp": timestamp_col, "channel": channel_col})
    cv = as_table(conversions, "conversions", columns={
        "journey_id": journey_id_col, "timestamp": timestamp_col, "value": value_col})
    tp = tp.select(jid=tp.journey_id.cast("string"), ts=tp.timestamp,
                   channel=tp.channel.cast("string"))
    cv = cv.select(cid=cv.journey_id.cast("string"), conv_at=cv.timestamp, value=cv.value)

    t = tp.left_join(cv, tp.jid == cv.cid)
    t = t.filter(t.conv_at.isnull() | (t.ts <= t.conv_at))
    if lookback_s is not None:
        end = ibis.coalesce(t.conv_at, t.ts.max().over(group_by=t.jid))
        t = t.filter(_seconds(end) - _seconds(t.ts) <= lookback_s)
    if max_touches is not None:
        back = ibis.row_number().over(group_by=t.jid, order_by=[ibis.desc(t.ts),
                                                              ibis.desc(t.channel)])
        t = t.filter(back < int(max_touches))
    t = t.mutate(converted=ibis.ifelse(t.conv_at.notnull(), 1, 0))  # portable (no bool cast)

    journeys = t.group_by("jid").aggregate(
        path=_ordered_channels(t),
        converted=t.converted.max(),
        value=t.value.max(),
    )
    keys = ["path"]
    if by:
        keys += _journey_covariates(contacts, list(by))
        ct = as_table(contacts, "contacts")
        ct = ct.select(ct.contact_id.cast("string").name("__contact"), *[ct[c] for c in by])
        cells = journeys.left_join(ct, journeys.jid == ct["__contact"])
    else:
        cells = journeys
    counts = cells.group_by(keys).aggregate(
        conversions=cells.converted.sum(),
        value=cells.value.sum(),
        nulls=(1 - cells.converted).sum(),
    )
    # the paths read as Arrow lists, each distinct one made a tuple once (Ibis's pandas
    # conversion makes a Python list of Python strings per row, then converts each: 3-4 s
    # on the 10x demo's 367,305 rows); the other columns converted by Ibis as before
    table = execute_arrow(counts)
    out = execute(ibis.memtable(table.drop_columns(["path"])))
    out.insert(0, "path", _path_tuples(table.column("path")))
    n_conv_in = int(execute(cv.count()))
    n_conv_out = int(out["conversions"].sum()) if len(out) else 0
    if n_conv_out < n_conv_in:
        warnings.warn(
            f"{n_conv_in - n_conv_out} of {n_conv_in} conversions have no touchpoint at or before "
            "the conversion (within the lookback window) and are left out of the paths",
            DataWarning, stacklevel=2)
    out["conversions"] = out["conversions"].astype("int64")
    out["nulls"] = out["nulls"].astype("int64")
    out["value"] = out["value"].fillna(0.0).astype("float64")

    if half_life_s is not None:
        out = _attach_decay(t, out, half_life_s)
    out["_n"] = out["conversions"] + out["nulls"]
    # paths sort by their rank among the distinct paths (tuple order): the same order as
    # sorting the tuples themselves, one comparison per pair of distinct paths, not per row
    rank = {p: i for i, p in enumerate(sorted(set(out["path"])))}
    out["_p"] = out["path"].map(rank).astype("int64")
    order = ["_n", "conversions", "_p", *keys[1:]]
    out = out.sort_values(order, ascending=[False, False] + [True] * (len(order) - 2),
                          kind="mergesort", na_position="last").drop(columns=["_n", "_p"])
    return out.reset_index(drop=True)


def _path_tuples(column) -> list:
    """Return the tuples of channel names of an Arrow column of lists (each distinct one once)."""
    lists = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    flat = lists.flatten()
    if lists.null_count or flat.null_count:  # never from build_paths' query
        return [None if p is None else tuple(p) for p in lists.to_pylist()]
    enc = pc.dictionary_encode(flat)
    names = enc.dictionary.to_pylist()
    codes = enc.indices.to_numpy(zero_copy_only=False).astype(np.int32)
    raw = codes.tobytes()
    offsets = lists.offsets.to_numpy(zero_copy_only=False).astype(np.int64)
    ends = ((offsets - offsets[0]) * 4).tolist()  # byte offsets into raw (4 bytes a code)
    made: dict[bytes, tuple] = {}
    out = []
    for a, b in zip(ends[:-1], ends[1:], strict=True):
        key = raw[a:b]
        path = made.get(key)
        if path is None:
            path = made[key] = tuple(names[c] for c in codes[a // 4:b // 4].tolist())
        out.append(path)
    return out


def _journey_covariates(contacts, by: list[str]) -> list[str]:
    """Check the ``by`` columns of :func:`build_paths` and return them."""
    if contacts is None:
        raise DataError("build_paths: by= needs the contacts table (contacts=...) that holds "
                        "those columns", table="contacts")
    clash = [c for c in by if c in ("path", "conversions", "value", "nulls", "jid", "converted")]
    if clash:
        raise DataError(f"build_paths: by= column(s) {clash} clash with the path counts' own "
                        "columns; rename them", table="contacts", column=clash[0])
    from crmstats.validation import as_table

    cols = as_table(contacts, "contacts").columns
    missing = [c for c in by if c not in cols]
    if missing:
        raise DataError(f"contacts table: no column(s) {', '.join(map(repr, missing))} for "
                        f"by=; columns present: {', '.join(cols)}", table="contacts",
                        column=missing[0])
    return list(by)


def _ordered_channels(t):
    """Return the journey's channels in time order, as an array aggregate.

    Backends with ordered aggregates (DuckDB, PostgreSQL, ...) collect in
    order; Spark cannot order ``collect_list``, so there the touches are
    collected as (time, channel) structs, sorted, and mapped to channels —
    the same result, still computed where the data lives.
    """
    if t.get_backend().name != "pyspark":
        return t.channel.collect(order_by=[t.ts, t.channel])
    import ibis

    touches = ibis.struct({"ts": t.ts, "channel": t.channel}).collect()
    return touches.sort().map(lambda touch: touch.channel)


def _attach_decay(t, out: pd.DataFrame, half_life_s: float) -> pd.DataFrame:
    """Per path and position: normalised time-decay weights summed over converting journeys."""
    import ibis

    from crmstats.backend import execute

    conv = t.filter(t.converted == 1)
    # the converting journeys' paths from their own touches (every touch of a converting
    # journey is here), not from the paths of all journeys: a tenth of the rows
    paths = conv.group_by("jid").aggregate(path=_ordered_channels(conv))
    age = _seconds(conv.conv_at) - _seconds(conv.ts)
    conv = conv.mutate(
        w=(ibis.literal(0.5) ** (age / half_life_s)),
        pos=ibis.row_number().over(group_by=conv.jid, order_by=[conv.ts, conv.channel]),
    )
    conv = conv.mutate(wn=conv.w / conv.w.sum().over(group_by=conv.jid))
    j = conv.join(paths, "jid")
    per = j.group_by(["path", "pos"]).aggregate(dc=j.wn.sum(), dv=(j.wn * j.value).sum())
    long = execute(per)
    decay_c = {p: np.zeros(len(p)) for p in out["path"]}
    decay_v = {p: np.zeros(len(p)) for p in out["path"]}
    for path, pos, dc, dv in zip(long["path"], long["pos"], long["dc"], long["dv"], strict=True):
        key = tuple(path)
        decay_c[key][int(pos)] = dc
        decay_v[key][int(pos)] = dv
    out["decay_conversions"] = [tuple(decay_c[p]) for p in out["path"]]
    out["decay_value"] = [tuple(decay_v[p]) for p in out["path"]]
    return out


def _to_seconds(x, name: str) -> float | None:
    if x is None:
        return None
    if isinstance(x, (pd.Timedelta, np.timedelta64)) or hasattr(x, "total_seconds"):
        s = pd.Timedelta(x).total_seconds()
    else:
        s = float(x) * 86400.0
    if not np.isfinite(s) or s < 0:
        raise ValueError(f"{name} must be a non-negative duration, got {x!r}")
    return s


# ----------------------------------------------------------------------------- formats


def from_channelattribution(frame: pd.DataFrame, *, sep: str = ">") -> pd.DataFrame:
    """Convert ChannelAttribution's path format to crmstats path counts.

    Parameters
    ----------
    frame : pandas.DataFrame
        Columns ``path`` (channel names joined by ``sep``, spaces around them
        ignored), ``total_conversions``, and optionally
        ``total_conversion_value`` and ``total_null``.
    sep : str
        Separator between channels.

    Returns
    -------
    pandas.DataFrame
        ``path`` (tuple), ``conversions``, ``value``, ``nulls``; duplicated
        paths are summed.
    """
    data = _as_path_data(frame, sep=sep)
    return data.to_frame()


def to_channelattribution(paths: pd.DataFrame, *, sep: str = " > ") -> pd.DataFrame:
    """Convert crmstats path counts to ChannelAttribution's path format.

    Parameters
    ----------
    paths : pandas.DataFrame
        Output of :func:`build_paths` (or any accepted path-count frame).
    sep : str
        Separator between channels.

    Returns
    -------
    pandas.DataFrame
        ``path`` (str), ``total_conversions``, ``total_conversion_value``,
        ``total_null``.
    """
    data = _as_path_data(paths)
    f = data.to_frame()
    return pd.DataFrame({
        "path": [sep.join(p) for p in f["path"]],
        "total_conversions": f["conversions"].to_numpy(),
        "total_conversion_value": f["value"].to_numpy(),
        "total_null": f["nulls"].to_numpy(),
    })


# ----------------------------------------------------------------------------- internal form


@dataclass
class PathData:
    """Path counts as flat arrays: what every model works on.

    Attributes
    ----------
    channels : list of str
        Channel names, sorted; ``codes`` index into it.
    codes : ndarray of int64
        Channel code of every touch, paths concatenated.
    lengths : ndarray of int64
        Touches per path.
    conversions, value, nulls : ndarray of float64
        Per path.
    decay_conversions, decay_value : ndarray of float64 or None
        Per touch (aligned with ``codes``), when the paths carry them.
    """

    channels: list
    codes: np.ndarray
    lengths: np.ndarray
    conversions: np.ndarray
    value: np.ndarray
    nulls: np.ndarray
    decay_conversions: np.ndarray | None = None
    decay_value: np.ndarray | None = None

    @cached_property
    def starts(self) -> np.ndarray:
        """Index of each path's first touch in ``codes``."""
        return np.cumsum(self.lengths) - self.lengths

    @cached_property
    def ends(self) -> np.ndarray:
        """Index of each path's last touch in ``codes``."""
        return np.cumsum(self.lengths) - 1

    @cached_property
    def owner(self) -> np.ndarray:
        """Path index of every touch."""
        return np.repeat(np.arange(len(self.lengths)), self.lengths)

    @cached_property
    def position(self) -> np.ndarray:
        """Position of every touch within its path (0 = first)."""
        return np.arange(len(self.codes)) - np.repeat(self.starts, self.lengths)

    def to_frame(self) -> pd.DataFrame:
        """Path counts as a DataFrame with tuple paths."""
        names = np.asarray(self.channels, dtype=object)[self.codes]
        bounds = np.cumsum(self.lengths)[:-1]
        paths = [tuple(p) for p in np.split(names, bounds)] if len(names) else []
        return pd.DataFrame({
            "path": paths,
            "conversions": self.conversions,
            "value": self.value,
            "nulls": self.nulls,
        })


def _numeric(frame, col, name, *, default=None) -> np.ndarray:
    if col not in frame.columns:
        if default is None:
            raise DataError(f"paths table: missing column {col!r}; path counts need "
                            f"{name} per path", table="paths", column=col)
        return np.full(len(frame), float(default))
    s = pd.to_numeric(frame[col], errors="coerce").astype("float64")
    bad = ~np.isfinite(s.to_numpy()) | (s.to_numpy() < 0)
    if bad.any():
        rows = list(frame.index[bad][:5])
        raise DataError(f"paths table, column {col!r}: {int(bad.sum())} missing, non-finite or "
                        f"negative value(s), e.g. rows {rows}", table="paths", column=col,
                        rows=rows)
    return s.to_numpy()


def _as_path_data(paths: Any, *, sep: str = ">") -> PathData:
    """Read path counts in crmstats' or ChannelAttribution's format; validate; merge duplicates."""
    if isinstance(paths, PathData):
        return paths
    if not isinstance(paths, pd.DataFrame):
        raise DataError(f"paths table: expected a pandas DataFrame of path counts (see "
                        f"build_paths), got {type(paths).__name__}", table="paths")
    if "path" not in paths.columns:
        raise DataError("paths table: missing column 'path'", table="paths", column="path")
    if len(paths) == 0:
        raise DataError("paths table is empty (no rows)", table="paths")
    ca = "total_conversions" in paths.columns and "conversions" not in paths.columns
    conv_col = CA_COLUMNS["conversions"] if ca else "conversions"
    value_col = CA_COLUMNS["value"] if ca else "value"
    null_col = CA_COLUMNS["nulls"] if ca else "nulls"
    conversions = _numeric(paths, conv_col, "conversions")
    value = _numeric(paths, value_col, "value", default=0.0)
    nulls = _numeric(paths, null_col, "nulls", default=0.0)

    codes, channels, lengths, empty = _encode_paths(paths["path"], sep)
    if empty.any():
        rows = list(paths.index[empty][:5])
        raise DataError(f"paths table, column 'path': {int(empty.sum())} empty path(s) or empty "
                        f"channel name(s), e.g. rows {rows}", table="paths", column="path",
                        rows=rows)
    data = PathData(channels=channels, codes=codes,
                    lengths=lengths, conversions=conversions, value=value, nulls=nulls)
    if "decay_conversions" in paths.columns and "decay_value" in paths.columns:
        dc = np.fromiter((w for p in paths["decay_conversions"] for w in p), dtype=np.float64)
        dv = np.fromiter((w for p in paths["decay_value"] for w in p), dtype=np.float64)
        if len(dc) != len(codes) or len(dv) != len(codes):
            raise DataError("paths table: decay_conversions/decay_value do not have one weight "
                            "per touch of each path", table="paths", column="decay_conversions")
        data.decay_conversions, data.decay_value = dc, dv
    return _merge_duplicates(data)


def _path_data_once(paths: Any) -> PathData:
    """:func:`_as_path_data`, read once per unchanged DataFrame of path counts.

    The attribution study fits ten models on one frame of paths; each read
    encodes every path again. A frame edited since (pandas' copy-on-write gives
    it new arrays) is read anew; models never change a :class:`PathData`.
    """
    if not isinstance(paths, pd.DataFrame):
        return _as_path_data(paths)
    from crmstats._frames import frame_once

    return frame_once(paths, "attribution.path_data", lambda: _as_path_data(paths))


def _encode_paths(raw: pd.Series, sep: str):
    """Channel codes (sorted channel names), lengths and a per-row "empty" flag, with Arrow.

    Paths as tuples (:func:`build_paths`' rows, many with equal paths when
    counted by contact covariates) are encoded once per distinct path.
    """
    first = raw.iloc[0]
    if isinstance(first, tuple) and len(raw) > 1:
        try:
            rows, distinct = pd.factorize(raw.to_numpy(dtype=object))
        except TypeError:  # an unhashable path (a list inside)
            rows = None
        if rows is not None and (rows >= 0).all() and len(distinct) < len(raw):
            codes, channels, lengths, empty = _encode_paths(
                pd.Series(list(distinct), dtype=object), sep)
            starts = np.cumsum(lengths) - lengths
            row_lengths = lengths[rows]
            begin = np.repeat(starts[rows] - (np.cumsum(row_lengths) - row_lengths),
                              row_lengths)
            return (codes[begin + np.arange(int(row_lengths.sum()))], channels, row_lengths,
                    empty[rows])
    if isinstance(first, str):
        try:
            arr = pa.array(raw, from_pandas=True)
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            arr = pa.array(raw.astype(object).to_numpy(), type=pa.large_string(),
                           from_pandas=True)
        lists = pc.split_pattern(arr, sep)
    else:
        seqs = [list(p) if isinstance(p, (tuple, list, np.ndarray)) else None for p in raw]
        try:
            lists = pa.array(seqs, type=pa.list_(pa.large_string()), from_pandas=True)
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            lists = pa.array([None if p is None else [str(c) for c in p] for p in seqs],
                             type=pa.list_(pa.large_string()))
    lengths = pc.fill_null(pc.list_value_length(lists), 0).to_numpy(zero_copy_only=False)
    lengths = lengths.astype(np.int64)
    # encode the raw tokens, then clean the (few) distinct ones: strip spaces, merge equals
    enc = pc.dictionary_encode(pc.list_flatten(lists))
    raw_names = enc.dictionary.to_pylist()
    clean = [None if t is None else t.strip() for t in raw_names]
    channels = sorted({t for t in clean if t})
    rank = {t: i for i, t in enumerate(channels)}
    lookup = np.array([rank.get(t, -1) for t in clean] or [-1], dtype=np.int64)
    idx = enc.indices.to_numpy(zero_copy_only=False)
    if enc.indices.null_count:
        idx = np.where(np.isnan(idx), len(clean), idx)
        lookup = np.append(lookup, -1)
    codes = lookup[idx.astype(np.int64)] if len(idx) else np.zeros(0, dtype=np.int64)
    empty = lengths == 0
    blank = codes < 0
    if blank.any():
        owner = np.repeat(np.arange(len(lengths)), lengths)
        empty[owner[blank]] = True
    return codes, channels, lengths, empty


def _merge_duplicates(data: PathData) -> PathData:
    """Sum rows whose paths are equal (e.g. after stripping spaces around separators)."""
    n = len(data.lengths)
    owner = data.owner
    pos = data.position
    base = len(data.channels) + 1
    if int(data.lengths.max()) * np.log2(base) < 62:
        # a path's key is its codes as base-(k+1) digits; no digit is 0, so lengths differ too
        key = np.zeros(n, dtype=np.int64)
        np.add.at(key, owner, (data.codes + 1) * base ** pos)
    else:
        bounds = np.cumsum(data.lengths)[:-1]
        key = pd.Series([tuple(c) for c in np.split(data.codes, bounds)], dtype=object)
    target, _ = pd.factorize(key)  # groups numbered in order of first appearance
    m = int(target.max()) + 1
    if m == n:
        return data
    is_first = np.zeros(n, bool)
    is_first[np.unique(target, return_index=True)[1]] = True
    lengths = data.lengths[is_first]
    merged = PathData(
        channels=data.channels,
        codes=data.codes[is_first[owner]],
        lengths=lengths,
        conversions=np.bincount(target, weights=data.conversions, minlength=m),
        value=np.bincount(target, weights=data.value, minlength=m),
        nulls=np.bincount(target, weights=data.nulls, minlength=m),
    )
    if data.decay_conversions is not None:
        slot = (np.cumsum(lengths) - lengths)[target[owner]] + pos
        merged.decay_conversions = np.bincount(slot, weights=data.decay_conversions,
                                               minlength=int(lengths.sum()))
        merged.decay_value = np.bincount(slot, weights=data.decay_value,
                                         minlength=int(lengths.sum()))
    return merged
