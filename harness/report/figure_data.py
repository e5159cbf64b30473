"""What each figure draws: the typed records `report` computes (`report.*_info`) and
`figures` draws (`figures.plot_*`), after Optuna's visualization modules (an `_info`
function returning a record, a `_plot` function drawing it). Tests check these records,
not the pixels. Their own module so the drawing side (below `report`) can name them without
importing `report`, and `report` can build them without importing matplotlib.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from harness.search.spec import Range

# What an MSE is measured in: a sine's values are the signal's own; a real series' validation
# and test MSE are on the series standardised by its training part (what the model sees), so
# they are no quantity of the series (its errors in its own units are MAE, RMSE, MASE).
MSE_UNITS = "signal units²"
STANDARDISED = "standardised series"


@dataclass(frozen=True, eq=False)
class PredictionsInfo:
    """Figures 1 (predictions) and 6 (free-running error): each cell's best trial on the test region."""

    # cell, t, step, truth, one_step, free_running, free_error; a real series with dates: date
    frame: pd.DataFrame
    missing: tuple[str, ...] = ()  # cells whose best trial kept no weights and was not re-trained
    values: str = "y (signal units)"  # what truth and predictions are, in their units
    time: str = "t (samples)"  # what the x axis is: `date` where the frame has it, else `t`


@dataclass(frozen=True, eq=False)
class ParamScatterInfo:
    """Figure 2: each finished trial's validation MSE against each searched numeric parameter."""

    frame: pd.DataFrame  # number, cell, state (COMPLETE or PRUNED), value, one column per parameter in `ranges`
    ranges: dict[str, Range]  # each parameter's search range, drawn as the axis limits
    units: str = MSE_UNITS  # what the values are measured in


@dataclass(frozen=True, eq=False)
class BestSoFarInfo:
    """Figure 3: per cell, every finished trial's value and the best complete value so far."""

    # cell, number, state, value, best_so_far (NaN before a cell's first complete trial; a last
    # row per cell, state END, at the study's last trial number carries the line to the end)
    frame: pd.DataFrame
    units: str = MSE_UNITS


@dataclass(frozen=True, eq=False)
class LearningCurvesInfo:
    """Figure 4: validation MSE per epoch of the top complete trials of each cell."""

    frame: pd.DataFrame  # cell, number, epoch, val_mse
    units: str = MSE_UNITS


@dataclass(frozen=True, eq=False)
class ParetoInfo:
    """Figure 5: validation MSE against train seconds, the non-dominated trials marked."""

    frame: pd.DataFrame  # number, cell, value, train_seconds, on_front (bool)
    units: str = MSE_UNITS


@dataclass(frozen=True, eq=False)
class HorizonInfo:
    """A real series' error by horizon: each cell's best trial and each baseline, forecasting
    h = 1..H steps ahead from rolling origins over the test part."""

    frame: pd.DataFrame  # name, kind ("cell" or "baseline"), h, mae, rmse, mase, rmsse
    origins: int  # how many origins each error is averaged over
