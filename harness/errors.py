"""The one exception type for mistakes a user can make.

It carries the key (a config field, spec key or flag) so each front end can name it in
its own words: the CLI as `--hidden-size`, a spec as `search.hidden_size` in its file.
"""

from __future__ import annotations


class ConfigError(ValueError):
    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"{key}: {message}")
        self.key = key
        self.message = message
