"""Past covariates: other series (an index, VIX) fed beside each ticker's own inputs.

A covariate is read like any price file (its value column is `Adj Close`,
`Close` or its only numeric column). On each ticker's dates it enters as its
daily log change, log(c_t / c_(t-1)), so a level that drifts out of its
training range (an index) and one that mean-reverts (VIX) both give inputs
on a stable scale. A day the covariate lacks takes its last known value, for
at most MAX_FILL days; longer gaps are refused with their dates. Only past
values are ever used: a window ending on day t sees the covariate up to t.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from forecaster.data.csv import read_price_csv
from forecaster.errors import ForecasterError

MAX_FILL = 3  # days a covariate's last value may stand in for missing ones


def read_covariates(paths) -> dict[str, pd.Series]:
    """{file stem: its values} for each covariate CSV, in order; names unique."""
    covariates: dict[str, pd.Series] = {}
    for path in paths or ():
        name = f"cov_{Path(path).stem}"
        if name in covariates:
            raise ForecasterError(
                f"covariate {Path(path).stem!r} is given twice. Received: "
                f"covariate={list(map(str, paths))}"
            )
        covariates[name] = read_price_csv(path).values.rename(name)
    return covariates


def align_covariates(index: pd.DatetimeIndex, covariates: dict, where: str):
    """The covariates' daily log changes on `index`, (n, k); None without any.

    The first day of `index` has no change and gets 0 (it is dropped with
    the other features' warm-up rows when those need it).
    """
    if not covariates:
        return None
    columns = {}
    for name, values in covariates.items():
        aligned = values.reindex(values.index.union(index)).ffill(limit=MAX_FILL)
        missing = aligned.loc[index].isna()
        if missing.any():
            days = index[missing.to_numpy()]
            shown = ", ".join(f"{d:%Y-%m-%d}" for d in days[:5])
            more = f" and {len(days) - 5} more" if len(days) > 5 else ""
            raise ForecasterError(
                f"covariate {name.removeprefix('cov_')!r} does not cover {where}: no "
                f"value within {MAX_FILL} days before {shown}{more}. Use a "
                "covariate that spans the series' dates."
            )
        level = aligned.loc[index].to_numpy(dtype=np.float64)
        change = np.diff(np.log(level), prepend=np.log(level[0]))
        columns[name] = change
    return pd.DataFrame(columns, index=index)


def covariate_names(covariates: dict | None) -> dict | None:
    """Covariates keyed cov_<name>, the input name they take beside the prices."""
    if not covariates:
        return covariates
    return {
        name if str(name).startswith("cov_") else f"cov_{name}": values
        for name, values in covariates.items()
    }
