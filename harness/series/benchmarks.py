"""The forecasting competitions' benchmarks: h-step forecasts from the end of a training part.

Following M4's evaluation code (github.com/Mcompetitions/M4-methods, `Benchmarks and
Evaluation.R`), which made the M3 benchmarks a standard:

    naive     the last value, repeated
    snaive    the last season repeated (naive where there is no season)
    naive2    naive on the seasonally adjusted series, reseasonalised
    ses       simple exponential smoothing          \\
    holt      Holt's linear trend                     } on the seasonally adjusted series,
    damped    Holt's damped trend                    /  reseasonalised
    comb      the mean of ses, holt and damped (M4's "Comb", M3's "Comb S-H-D")
    theta     M4's `Theta.classic`: half the least-squares line, half SES on the theta = 2
              line (2y minus that line), on the seasonally adjusted series; negatives set to 0
    ets       automatic ETS (statsmodels' `ETSModel`): the 15 models R's `forecast::ets`
              considers by default, chosen by AICc (`ets_auto`)

Seasonal adjustment (M4's `SeasonalityTest` and R's `decompose`): a series with season m > 1
and at least 3m values is seasonal where its lag-m autocorrelation r_m exceeds
1.645 / sqrt(n) * sqrt(1 + 2 * sum_{k<m} r_k^2), the 90% limit; a seasonal series is divided
by classical multiplicative seasonal indices (a centred 2 x m moving average, the mean
detrended ratio per position of the cycle, normalised to mean 1) and the forecasts are
multiplied by the last m indices, repeated.

SES, Holt and damped are M4's `ses` / `holt` of R's forecast package: additive-error
exponential smoothing whose smoothing parameters and initial states minimise the in-sample
one-step MSE, with forecast's usual bounds (1e-4 <= beta <= alpha <= 0.9999, phi in
[0.8, 0.98]). For fixed smoothing parameters the one-step errors are linear in the initial
states, so those come out of a 2 x 2 least-squares solve; the parameters are found on a grid
refined around its best point three times, every grid point filtered at once (numpy, one pass
over time per grid). That is the same minimum forecast's Nelder-Mead looks for, found in a
few milliseconds a series.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from itertools import product
from typing import Any

import numpy as np

METHODS = ("naive", "snaive", "naive2", "ses", "holt", "damped", "comb", "theta", "ets")
SEASONALITY_Z = 1.645  # M4's tcrit: a one-sided 90% limit on the lag-m autocorrelation
ALPHA = (1e-4, 0.9999)  # forecast's usual bounds on the smoothing parameters
PHI = (0.8, 0.98)  # ... and on the damping
GRID = {"ses": (60, 1, 1), "holt": (30, 30, 1), "damped": (20, 16, 8)}  # points per parameter, each pass
REFINEMENTS = 3
MAX_ETS_SEASON = 24  # forecast::ets fits no seasonal model above this period


# ---------------------------------------------------------------- seasonal adjustment
def acf(y: np.ndarray, nlags: int) -> np.ndarray:
    """Sample autocorrelations r_0..r_nlags as R's `acf` computes them (mean removed, one
    denominator n)."""
    d = np.asarray(y, dtype=np.float64) - np.mean(y)
    denominator = float(d @ d)
    if denominator == 0:
        return np.concatenate([[1.0], np.zeros(nlags)])
    return np.array([1.0] + [float(d[k:] @ d[:-k]) / denominator for k in range(1, nlags + 1)])


def is_seasonal(y: np.ndarray, period: int) -> bool:
    """M4's `SeasonalityTest`: too short (fewer than 3 seasons) or no season is not seasonal."""
    n, m = len(y), int(period)
    if m <= 1 or n < 3 * m:
        return False
    r = acf(y, m)
    limit = SEASONALITY_Z / np.sqrt(n) * np.sqrt(1 + 2 * np.sum(r[1:m] ** 2))
    return bool(abs(r[m]) > limit)


def seasonal_indices(y: np.ndarray, period: int) -> np.ndarray:
    """R's `decompose(type = "multiplicative")` seasonal figure, one index per position of the
    cycle counted from the first value, normalised to mean 1."""
    y = np.asarray(y, dtype=np.float64)
    m = int(period)
    weights = np.r_[0.5, np.ones(m - 1), 0.5] / m if m % 2 == 0 else np.ones(m) / m
    half = len(weights) // 2
    trend = np.full(len(y), np.nan)
    trend[half : len(y) - half] = np.convolve(y, weights, mode="valid")
    ratio = y / trend
    figure = np.array([np.nanmean(ratio[i::m]) for i in range(m)])
    return figure / figure.mean()


def deseasonalise(y: np.ndarray, period: int, h: int) -> tuple[np.ndarray, np.ndarray]:
    """(adjusted y, the h indices its forecasts are multiplied by): ones where not seasonal."""
    y = np.asarray(y, dtype=np.float64)
    if not is_seasonal(y, period):
        return y, np.ones(h)
    m = int(period)
    figure = seasonal_indices(y, m)
    seasonal = np.resize(figure, len(y))  # the index of each value's position in the cycle
    return y / seasonal, np.resize(seasonal[-m:], h)


# ---------------------------------------------------------------- exponential smoothing by MSE
def exponential_smoothing(y: np.ndarray, h: int, trend: bool = False, damped: bool = False) -> np.ndarray:
    """h forecasts of additive-error SES (trend False), Holt (trend) or damped Holt, fitted by
    in-sample one-step MSE as R's `forecast::ses` / `holt` (`opt.crit = "mse"`) fit them."""
    fit = fit_smoothing(y, trend, damped)
    steps = np.cumsum(fit.phi ** np.arange(1, h + 1)) if trend else np.zeros(h)
    return fit.level + steps * fit.slope


@dataclass(frozen=True)
class SmoothingFit:
    alpha: float
    beta: float  # 0 without a trend
    phi: float  # 1 without damping
    sse: float  # in-sample one-step sum of squared errors at the best initial states
    level: float  # the final state, from which the forecasts run
    slope: float


def fit_smoothing(y: np.ndarray, trend: bool = False, damped: bool = False) -> SmoothingFit:
    """The parameters (on a grid refined three times around its best point) and initial states
    (least squares, exactly) of least in-sample one-step SSE."""
    y = np.asarray(y, dtype=np.float64)
    kind = "damped" if damped else "holt" if trend else "ses"
    bounds = [ALPHA, (0.0, 1.0), PHI if damped else (1.0, 1.0)]  # alpha, beta as a fraction of alpha, phi
    ranges = list(bounds)
    best: SmoothingFit | None = None
    best_point = np.zeros(3)
    for _ in range(REFINEMENTS + 1):
        axes = [np.linspace(lo, hi, k) for (lo, hi), k in zip(ranges, GRID[kind], strict=True)]
        a, fraction, phi = (g.ravel() for g in np.meshgrid(*axes, indexing="ij"))
        beta = ALPHA[0] + fraction * (a - ALPHA[0]) if trend else np.zeros_like(a)
        sse, level, slope = _smooth(y, a, beta, phi, trend)
        i = int(np.nanargmin(sse))
        if best is None or sse[i] <= best.sse:
            best = SmoothingFit(float(a[i]), float(beta[i]), float(phi[i]), float(sse[i]), float(level[i]),
                                float(slope[i]))  # fmt: skip
            best_point = np.array([a[i], fraction[i], phi[i]])
        ranges = [_around(best_point[j], axes[j], bounds[j]) for j in range(3)]
    assert best is not None
    return best


def _around(value: float, axis: np.ndarray, bounds: tuple[float, float]) -> tuple[float, float]:
    step = float(axis[1] - axis[0]) if len(axis) > 1 else 0.0
    return max(bounds[0], value - step), min(bounds[1], value + step)


def _smooth(
    y: np.ndarray, alpha: np.ndarray, beta: np.ndarray, phi: np.ndarray, trend: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For P parameter sets at once: the least in-sample SSE over the initial states, and the
    final level and slope from those states.

    The state s_t = (level, slope) follows s_t = F s_{t-1} + g e_t with e_t = y_t - w's_{t-1},
    F = [[1, phi], [0, phi]], w = (1, phi), g = (alpha, beta). It is linear in the initial
    state, s_t = p_t + Q_t s_0: `p` is the run from s_0 = 0 and the columns of `Q` the runs
    from (1, 0) and (0, 1) with no data. Then e_t = (y_t - w'p_{t-1}) - w'Q_{t-1} s_0 and the
    SSE is a quadratic in s_0, minimised by its normal equations."""
    size = len(alpha)
    lp, bp = np.zeros(size), np.zeros(size)  # p
    l1, b1 = np.ones(size), np.zeros(size)  # Q's first column
    l2, b2 = np.zeros(size), np.ones(size)  # Q's second column (trend only)
    spp, s1p, s2p, s11, s12, s22 = (np.zeros(size) for _ in range(6))
    for value in y:
        e = value - (lp + phi * bp)
        h1, h2 = l1 + phi * b1, l2 + phi * b2
        spp += e * e
        s1p += h1 * e
        s11 += h1 * h1
        if trend:
            s2p += h2 * e
            s12 += h1 * h2
            s22 += h2 * h2
        lp, bp = lp + phi * bp + alpha * e, phi * bp + beta * e
        l1, b1 = l1 + phi * b1 - alpha * h1, phi * b1 - beta * h1
        if trend:
            l2, b2 = l2 + phi * b2 - alpha * h2, phi * b2 - beta * h2
    if trend:
        det = s11 * s22 - s12 * s12
        ok = det > 1e-12 * np.maximum(s11 * s22, 1e-300)  # a singular system: no unique initial state, skipped
        det = np.where(ok, det, 1.0)
        x1 = np.where(ok, (s22 * s1p - s12 * s2p) / det, 0.0)
        x2 = np.where(ok, (s11 * s2p - s12 * s1p) / det, 0.0)
        sse = np.where(ok, spp - x1 * s1p - x2 * s2p, np.nan)
    else:
        x1 = np.where(s11 > 0, s1p / np.where(s11 > 0, s11, 1.0), 0.0)
        x2 = np.zeros(size)
        sse = spp - x1 * s1p
    return sse, lp + x1 * l1 + x2 * l2, bp + x1 * b1 + x2 * b2


# ---------------------------------------------------------------- Theta, ETS
def theta_classic(y: np.ndarray, h: int) -> np.ndarray:
    """M4's `Theta.classic` on an (adjusted) series: the mean of the least-squares line
    extrapolated and SES of the theta = 2 line; negative forecasts become 0."""
    y = np.asarray(y, dtype=np.float64)
    t = np.arange(1, len(y) + 1, dtype=np.float64)
    slope, intercept = np.polyfit(t, y, 1)
    line_in = intercept + slope * t
    line_out = intercept + slope * np.arange(len(y) + 1, len(y) + h + 1)
    ses = exponential_smoothing(2 * y - line_in, h)
    return np.maximum(0.5 * ses + 0.5 * line_out, 0.0)


def ets_candidates(n: int, period: int, positive: bool) -> list[tuple[str, str, bool, str]]:
    """(error, trend, damped, season) of every model forecast::ets tries by default: no
    multiplicative trend, no additive error with a multiplicative season, multiplicative parts
    only for positive data, a season only for 2 <= m <= 24 with two seasons of data, and only
    models with fewer parameters than n - 4 (forecast counts alpha, l0, beta, b0, phi, gamma
    and m seasonal states)."""
    m = int(period)
    seasons = ["N"] + (["A", "M"] if 2 <= m <= MAX_ETS_SEASON and n >= 2 * m else [])
    out = []
    for error, (trend, damped), season in product("AM", [("N", False), ("A", False), ("A", True)], seasons):
        if (error == "A" and season == "M") or (not positive and "M" in (error, season)):
            continue
        npars = 2 + 2 * (trend == "A") + int(damped) + m * (season != "N")
        if n > npars + 4:
            out.append((error, trend, damped, season))
    return out


def ets_auto(y: np.ndarray, h: int, period: int) -> tuple[np.ndarray, str]:
    """The forecasts of the candidate with the least AICc, and its name (`ETS(M,Ad,M)`).

    Each candidate is statsmodels' `ETSModel` fitted by maximum likelihood with the
    initial states of Hyndman et al.'s heuristic (estimated jointly only for series under 10
    values, where the heuristic has too little data): two to ten times faster than estimating
    them, at some likelihood. The AICc counts parameters as forecast::ets does
    (smoothing parameters, initial states with m - 1 free seasonal ones, and the variance),
    so the penalty between models is forecast's."""
    from statsmodels.tsa.exponential_smoothing.ets import ETSModel

    y = np.asarray(y, dtype=np.float64)
    n = len(y)
    init = "heuristic" if n >= 10 else "estimated"
    best: tuple[float, np.ndarray, str] | None = None
    for error, trend, damped, season in ets_candidates(n, period, bool((y > 0).all())):
        kw: dict[str, Any] = {"error": "add" if error == "A" else "mul", "initialization_method": init}
        if trend == "A":
            kw.update(trend="add", damped_trend=damped)
        if season != "N":
            kw.update(seasonal="add" if season == "A" else "mul", seasonal_periods=int(period))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # convergence chatter; a failed fit is skipped below
            try:
                fitted = ETSModel(y, **kw).fit(disp=False)
                forecast = np.asarray(fitted.forecast(h), dtype=np.float64)
            except (ValueError, np.linalg.LinAlgError, FloatingPointError):
                continue
        smoothing = 1 + (trend == "A") + int(damped) + (season != "N")  # alpha, beta, phi, gamma
        states = 1 + (trend == "A") + (int(period) - 1) * (season != "N")  # l0, b0, the m - 1 free seasonal states
        k = smoothing + states + 1  # and the variance
        if not (np.isfinite(fitted.llf) and np.isfinite(forecast).all()) or n - k - 1 <= 0:
            continue
        aicc = -2 * fitted.llf + 2 * k + 2 * k * (k + 1) / (n - k - 1)
        if best is None or aicc < best[0]:
            best = (aicc, forecast, f"ETS({error},{trend}{'d' if damped else ''},{season})")
    if best is None:  # nothing fits (a very short series): SES, which always does
        return exponential_smoothing(y, h), "ETS(A,N,N) by MSE (no candidate fitted)"
    return best[1], best[2]


# ---------------------------------------------------------------- all of them
def forecast_all(y: np.ndarray, h: int, period: int, methods: tuple[str, ...] = METHODS) -> dict[str, np.ndarray]:
    """Each method's h forecasts from the end of `y` (the training part)."""
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise ValueError(f"unknown benchmark {unknown[0]!r}; allowed: {', '.join(METHODS)}")
    y = np.asarray(y, dtype=np.float64)
    m = int(period)
    adjusted, indices = deseasonalise(y, m, h)
    out: dict[str, np.ndarray] = {}
    makers: dict[str, Callable[[], np.ndarray]] = {
        "naive": lambda: np.full(h, y[-1]),
        "snaive": lambda: np.resize(y[-m:], h) if m > 1 and len(y) >= m else np.full(h, y[-1]),
        "naive2": lambda: np.full(h, adjusted[-1]) * indices,
        "ses": lambda: exponential_smoothing(adjusted, h) * indices,
        "holt": lambda: exponential_smoothing(adjusted, h, trend=True) * indices,
        "damped": lambda: exponential_smoothing(adjusted, h, trend=True, damped=True) * indices,
        "theta": lambda: theta_classic(adjusted, h) * indices,
        "ets": lambda: ets_auto(y, h, m)[0],
    }
    for name in methods:
        if name == "comb":
            parts = [out[p] if p in out else makers[p]() for p in ("ses", "holt", "damped")]
            out[name] = (parts[0] + parts[1] + parts[2]) / 3
        else:
            out[name] = makers[name]()
    return {name: out[name] for name in methods}
