"""Published accuracy figures for the competitions' benchmarks, as data, each with its source.

Two kinds, kept apart because they check different things:

- `published`: the competition paper's own figure (Makridakis & Hibon 2000 for M3,
  Athanasopoulos et al. 2011 for Tourism), here as quoted by a named secondary source where
  the paper itself could not be read. These come from the organisers' implementations and
  their way of averaging, and recalculations from the released forecasts are known to come
  out slightly lower for M3's sMAPE (12.76 against 13.01 for Theta, source `mcomp`).
- `recomputed`: the same benchmarks rerun since on the same data with R's forecast package by
  its author and scored with the definitions of `harness.series.competition_metrics` (mean
  over series of each series' mean over its horizon; MASE scaled by the in-sample seasonal
  naive). They check our implementations method by method.

Only figures found in the cited sources are here; none is derived or remembered. Methods are
named as `harness.series.benchmarks.METHODS` names them, the competition's own method under
the name of ours that implements it (M3's "Theta" as `theta`, "Naive2" as `naive2`, "Single"
as `ses`, "Dampen" as `damped`); `forecastpro` and `theta-m3` (the Theta forecasts submitted
to M3, rescored) are not ours and stand for context.
Categories are the collections' (`harness.series.collections`), and `all` is every series
of the collection, each weighing the same.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd


@dataclass(frozen=True)
class Source:
    citation: str
    where: str  # the page or file the figures were read from
    note: str = ""


SOURCES: dict[str, Source] = {
    "mcomp": Source(
        "R. J. Hyndman, Forecast comparisons using the Mcomp package (Mcomp vignette 'Comparisons'), "
        "quoting Makridakis & Hibon, The M3-Competition: results, conclusions and implications, "
        "IJF 16(4), 451-476, 2000",
        "https://pkg.robjhyndman.com/Mcomp/articles/Comparisons.html",
        "published: the paper's average sMAPE over all 3,003 series; recomputed: the original M3 "
        "submissions and forecast::ets rescored by Hyndman (sMAPE as ours, MASE scaled by seasonal naive)",
    ),
    "autobox": Source(
        "Automatic Forecasting Systems (Autobox) blog, The M3 Forecasting Competition Calculations were off "
        "for Monthly Data, quoting Makridakis & Hibon 2000",
        "https://autobox.com/cms/index.php/blog/tags/tag/m3-competition",
        "the published Theta sMAPE over horizons 1-18 of the monthly series (13.85; their recalculation 13.94)",
    ),
    "hyndsight-benchmarks": Source(
        "R. J. Hyndman, A forecast ensemble benchmark, Hyndsight blog, 2018",
        "https://robjhyndman.com/hyndsight/benchmark-combination/",
        "M3 by category with R's forecast package: snaive(), ets(), thetaf() (SES with drift, "
        "Hyndman & Billah 2003, on classically adjusted data where seasonal); sMAPE and MASE as ours",
    ),
    "tcomp": Source(
        "P. Ellis, Tcomp R package (data of Athanasopoulos, Hyndman, Song & Wu, The tourism forecasting "
        "competition, IJF 27(3), 822-844, 2011), tests/testthat/test-naive-mape.R and vignette 'tourism-comp'",
        "https://github.com/ellisp/Tcomp-r-package",
        "the paper's MAPE of the naive (yearly) and seasonal naive (quarterly, monthly) forecasts over the "
        "whole horizon, which the package reproduces exactly (its vignette: an exact match with the paper's "
        "Tables 4-6; its MASE does not match the paper's and is not used here)",
    ),
}


@dataclass(frozen=True)
class Figure:
    collection: str
    category: str  # a category of the collection, or "all"
    method: str
    metric: str  # "smape" (percent), "mase" or "mape" (percent)
    value: float
    kind: str  # "published" or "recomputed"
    source: str  # a key of SOURCES


def _figures() -> list[Figure]:
    out = [
        # M3, over all 3,003 series (Makridakis & Hibon 2000, via the Mcomp vignette)
        Figure("m3", "all", "theta", "smape", 13.01, "published", "mcomp"),
        Figure("m3", "all", "forecastpro", "smape", 13.19, "published", "mcomp"),
        Figure("m3", "all", "theta-m3", "smape", 12.76, "recomputed", "mcomp"),
        Figure("m3", "all", "theta-m3", "mase", 1.39, "recomputed", "mcomp"),
        Figure("m3", "all", "forecastpro", "smape", 13.06, "recomputed", "mcomp"),
        Figure("m3", "all", "forecastpro", "mase", 1.47, "recomputed", "mcomp"),
        Figure("m3", "all", "ets", "smape", 13.07, "recomputed", "mcomp"),
        Figure("m3", "all", "ets", "mase", 1.43, "recomputed", "mcomp"),
        # M3 monthly, Theta (the paper's figure, quoted by Autobox)
        Figure("m3", "monthly", "theta", "smape", 13.85, "published", "autobox"),
        # Tourism, MAPE of the naive forecasts (Athanasopoulos et al. 2011, Tables 4-6, via Tcomp)
        Figure("tourism", "yearly", "naive", "mape", 23.61, "published", "tcomp"),
        Figure("tourism", "quarterly", "snaive", "mape", 16.46, "published", "tcomp"),
        Figure("tourism", "monthly", "snaive", "mape", 22.56, "published", "tcomp"),
    ]
    # M3 by category with R's forecast package (Hyndman 2018): (sMAPE, MASE)
    by_category = {
        "yearly": {"snaive": (17.88, 3.172), "ets": (17.00, 2.860), "theta": (16.76, 2.774)},
        "quarterly": {"snaive": (11.06, 1.425), "ets": (9.68, 1.170), "theta": (9.20, 1.117)},
        "monthly": {"snaive": (17.23, 1.146), "ets": (14.14, 0.865), "theta": (13.86, 0.864)},
        "other": {"snaive": (6.30, 3.089), "ets": (4.37, 1.814), "theta": (4.92, 2.271)},
    }
    for category, methods in by_category.items():
        for method, (s, m) in methods.items():
            out.append(Figure("m3", category, method, "smape", s, "recomputed", "hyndsight-benchmarks"))
            out.append(Figure("m3", category, method, "mase", m, "recomputed", "hyndsight-benchmarks"))
    return out


FIGURES: tuple[Figure, ...] = tuple(_figures())


def figures(collection: str | None = None, kind: str | None = None) -> pd.DataFrame:
    """The figures as a table (collection, category, method, metric, value, kind, source)."""
    rows = [f for f in FIGURES if collection in (None, f.collection) and kind in (None, f.kind)]
    return pd.DataFrame([f.__dict__ for f in rows], columns=list(Figure.__dataclass_fields__))
