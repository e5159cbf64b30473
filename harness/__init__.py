"""The harness: benchmark and hyperparameter search for recurrent sequence predictors."""

__version__ = "0.1.0"


def __getattr__(name: str) -> object:
    """`harness.load_model(storage, study, trial)`, imported on first use: `import harness`
    stays cheap (no torch, no Optuna) for the CLI's start-up."""
    if name == "load_model":
        from harness.weights import load_model

        return load_model
    raise AttributeError(f"module 'harness' has no attribute {name!r}")
