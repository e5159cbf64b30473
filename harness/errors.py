"""The one exception type for mistakes a user can make.

It carries the key (a config field, spec key or flag) so each front end can name it in
its own words: the CLI as `--hidden-size`, a spec as `search.hidden_size` in its file.
"""

from __future__ import annotations

from typing import Any


class ConfigError(ValueError):
    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"{key}: {message}")
        self.key = key
        self.message = message

    def __reduce__(self) -> tuple[Any, ...]:
        # Pickled without calling __init__ again (its arguments are not `args`): a worker pool
        # re-raises a worker's error in the parent (`confirm`), subclasses included.
        return _restore, (type(self), self.args, self.__dict__)


def _restore(cls: type[ConfigError], args: tuple[Any, ...], state: dict[str, Any]) -> ConfigError:
    error = cls.__new__(cls, *args)
    error.args = args
    error.__dict__.update(state)
    return error
