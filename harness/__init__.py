"""The harness: benchmark and hyperparameter search for recurrent sequence predictors."""

__version__ = "0.1.0"
