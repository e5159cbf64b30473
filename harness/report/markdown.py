"""Markdown for the report: escaped text, tables, file names from study names."""

from __future__ import annotations

import html
import re
from typing import Any

import numpy as np
import pandas as pd

_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+!|~])")


def md_escape(value: Any) -> str:
    """Text from a storage (study names, attrs) shown as text, never as markup or HTML."""
    return _MD_SPECIAL.sub(r"\\\1", html.escape(str(value), quote=False)).replace("\n", " ")


def markdown_table(frame: pd.DataFrame) -> str:
    if frame.empty:
        return "_(no data)_\n"

    def fmt(value: Any) -> str:
        if value is None or value is pd.NA:  # a missing count in a nullable integer column
            return ""
        if isinstance(value, float):
            return "" if np.isnan(value) else f"{value:.4g}"
        return md_escape(value)

    header = "| " + " | ".join(md_escape(column) for column in frame.columns) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    body = ["| " + " | ".join(fmt(value) for value in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([header, rule, *body]) + "\n"


def slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_") or "study"
