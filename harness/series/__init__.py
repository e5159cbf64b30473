"""Series: where values come from and how they are cut (layer 1, just above `constraints`
and `errors`, which are all it may import).

`signals` chooses a series (the sines, a builtin dataset, a user's CSV) and makes the values
the model sees; `sources` loads, checks, identifies, transforms and scales a real series;
`data` turns a series into windows and the chronological train/validation/test splits, on
the device, as one tensor; `baselines` and `metrics` are forecasting's own benchmarks and
error measures (MAE, RMSE, MSE, MASE, RMSSE); `collections` (M3, Tourism, M1: many series,
each with its training part, horizon and season), `benchmarks` (the competitions' Naive2 ...
Theta, ETS), `competition_metrics` (sMAPE, MASE, OWA), `competition` (their scores, kept) and
`published` (the literature's tables). Pure numpy, pandas, torch and statsmodels:
never Optuna, never a model.
"""
