"""The user's configuration file: persistent choices, such as which LLM backend the agent uses.

``<sa.settings.data_dir>/config.toml`` holds flat ``key = "value"`` lines, written by
``scagent config set`` (atomically: a temporary file, then :func:`os.replace`). Every
setting is resolved in one order: a command-line flag, then its environment variable, then
the file, then the default. Nothing is read or written at import time.

Keys
----
``llm``
    The agent's LLM backend: ``auto`` (the embedded model when it is installed, else the
    rules), ``embedded``, ``rules``, ``openai`` or ``openai:MODEL``; ``--llm``,
    ``$SCAGENT_LLM``.
``llm_base_url``
    The OpenAI-compatible endpoint, e.g. ``http://localhost:8000/v1``;
    ``$SCAGENT_LLM_BASE_URL``.
``llm_model``
    The model name at that endpoint; ``$SCAGENT_LLM_MODEL``.
``llm_api_key_env``
    The name of the environment variable holding the endpoint's API key (the key itself is
    never stored); ``$SCAGENT_LLM_API_KEY``, when set, holds the key and wins.
"""

from __future__ import annotations

import json
import os
import re
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ._errors import InputDataError
from ._files import atomic_file

__all__ = [
    "KEYS",
    "LLM_BACKENDS",
    "ConfigError",
    "ConfigKey",
    "Resolved",
    "config_path",
    "read_config",
    "resolve",
    "resolve_all",
    "set_config",
    "unset_config",
]

#: The LLM backends the ``llm`` setting names (``openai`` may carry a model: ``openai:MODEL``).
LLM_BACKENDS = ("auto", "embedded", "openai", "rules")
_FILE = "config.toml"
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class ConfigError(InputDataError):
    """An unknown configuration key, an invalid value or an unreadable configuration file."""


def _check_llm(value: str) -> str:
    kind, sep, model = value.strip().partition(":")
    kind = kind.strip().lower()
    model = model.strip()
    if kind not in LLM_BACKENDS or (sep and (kind != "openai" or not model)):
        msg = (
            f"Unknown LLM backend {value!r}; one of {', '.join(LLM_BACKENDS)} or openai:MODEL "
            "(e.g. openai:deepseek-r1)."
        )
        raise ConfigError(msg)
    return f"{kind}:{model}" if sep else kind


def _check_url(value: str) -> str:
    value = value.strip()
    if not re.match(r"^https?://[^\s/]+", value):
        msg = f"Not an http(s) URL: {value!r} (e.g. http://localhost:8000/v1)."
        raise ConfigError(msg)
    return value


def _check_text(value: str) -> str:
    value = value.strip()
    if not value or any(c.isspace() for c in value):
        msg = f"Expected one word without spaces, got {value!r}."
        raise ConfigError(msg)
    return value


def _check_env_name(value: str) -> str:
    value = value.strip().lstrip("$")
    if not _ENV_NAME.match(value):
        msg = (
            f"Not an environment variable name: {value!r} (e.g. DEEPSEEK_API_KEY; store the "
            "variable's name, never the key itself)."
        )
        raise ConfigError(msg)
    return value


@dataclass(frozen=True)
class ConfigKey:
    """One setting of the configuration file.

    Attributes
    ----------
    name
        The key, as written in the file and on the command line.
    env
        The environment variable that overrides the file (``None``: none does).
    default
        The value when nothing sets it (``None``: no value).
    help
        One line for ``scagent config show`` and errors.
    check
        Validates a value and returns it normalised; raises :class:`ConfigError`.
    flag
        The command-line option that overrides everything (``None``: none does).
    """

    name: str
    env: str | None
    default: str | None
    help: str
    check: Callable[[str], str]
    flag: str | None = None


KEYS: dict[str, ConfigKey] = {
    k.name: k
    for k in (
        ConfigKey(
            "llm",
            "SCAGENT_LLM",
            "auto",
            "LLM backend: auto, embedded, rules, openai or openai:MODEL",
            _check_llm,
            flag="--llm",
        ),
        ConfigKey(
            "llm_base_url",
            "SCAGENT_LLM_BASE_URL",
            None,
            "OpenAI-compatible endpoint of the openai backend (e.g. http://localhost:8000/v1)",
            _check_url,
        ),
        ConfigKey(
            "llm_model",
            "SCAGENT_LLM_MODEL",
            None,
            "model name at that endpoint (openai:MODEL overrides it)",
            _check_text,
        ),
        ConfigKey(
            "llm_api_key_env",
            None,
            "OPENAI_API_KEY",
            "environment variable holding the endpoint's API key ($SCAGENT_LLM_API_KEY wins)",
            _check_env_name,
        ),
    )
}


@dataclass(frozen=True)
class Resolved:
    """A setting's value and where it came from.

    Attributes
    ----------
    key
        The setting.
    value
        Its value (``None``: nothing sets it and it has no default).
    source
        ``"flag"``, ``"environment"``, ``"config file"`` or ``"default"``.
    origin
        The flag, ``$VARIABLE`` or file path that set it (``""`` for the default).
    """

    key: str
    value: str | None
    source: str
    origin: str = ""

    def describe(self) -> str:
        """``"from $SCAGENT_LLM"``, ``"from the config file /path"``, ``"default"``..."""
        if self.source == "default":
            return "default"
        if self.source == "config file":
            return f"from the config file {self.origin}"
        return f"from {self.origin}"


def config_path() -> Path:
    """``<sa.settings.data_dir>/config.toml`` (it may not exist)."""
    from ._settings import settings

    return settings.data_dir / _FILE


def _key(name: str) -> ConfigKey:
    key = KEYS.get(name.strip().lower())
    if key is None:
        msg = f"Unknown configuration key {name!r}; one of {', '.join(KEYS)}."
        raise ConfigError(msg)
    return key


def read_config(path: str | os.PathLike | None = None) -> dict[str, str]:
    """The values stored in the configuration file (``{}`` when there is none).

    Parameters
    ----------
    path
        The file (default :func:`config_path`).

    Returns
    -------
    ``{key: value}`` as stored, unknown keys included.

    Raises
    ------
    ConfigError
        The file is not valid TOML or a value is not a string or number.
    """
    path = Path(path) if path is not None else config_path()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        msg = f"The config file {path} is not valid TOML ({err}); fix or delete it."
        raise ConfigError(msg) from None
    out = {}
    for name, value in data.items():
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            msg = f"The config file {path} has a non-text value for {name!r}; fix or delete it."
            raise ConfigError(msg)
        out[str(name)] = str(value)
    return out


def _write(values: dict[str, str], path: Path) -> None:
    lines = [
        "# scagent configuration, written by `scagent config set`.",
        "# Precedence: command-line flag > environment variable > this file > default.",
        *(f"{name} = {json.dumps(value, ensure_ascii=False)}" for name, value in values.items()),
    ]
    with atomic_file(path) as tmp:
        tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")


def set_config(name: str, value: str, *, path: str | os.PathLike | None = None) -> str:
    """Store ``name = value`` in the configuration file (atomically).

    Parameters
    ----------
    name
        One of :data:`KEYS`.
    value
        Its new value (validated and normalised, e.g. ``"Embedded"`` -> ``"embedded"``).
    path
        The file (default :func:`config_path`).

    Returns
    -------
    The value as stored.

    Raises
    ------
    ConfigError
        An unknown key or an invalid value (nothing is written then).
    """
    key = _key(name)
    stored = key.check(str(value))
    path = Path(path) if path is not None else config_path()
    values = read_config(path)
    values[key.name] = stored
    _write(values, path)
    return stored


def unset_config(name: str, *, path: str | os.PathLike | None = None) -> bool:
    """Remove ``name`` from the configuration file; whether it was there."""
    key = _key(name)
    path = Path(path) if path is not None else config_path()
    values = read_config(path)
    if key.name not in values:
        return False
    del values[key.name]
    _write(values, path)
    return True


def resolve(name: str, flag: str | None = None) -> Resolved:
    """A setting's value and its source: ``flag``, then the environment, then the file, then
    the default.

    Parameters
    ----------
    name
        One of :data:`KEYS`.
    flag
        The value given on the command line (or in Python), if any.

    Raises
    ------
    ConfigError
        An unknown key, or an invalid value from any source (the message names the source).
    """
    key = _key(name)
    candidates = []
    if flag is not None and str(flag).strip():
        candidates.append(("flag", key.flag or "the caller", str(flag)))
    if key.env and os.environ.get(key.env, "").strip():
        candidates.append(("environment", f"${key.env}", os.environ[key.env]))
    if not candidates:
        path = config_path()
        stored = read_config(path).get(key.name)
        if stored is not None:
            candidates.append(("config file", str(path), stored))
    if not candidates:
        return Resolved(key.name, key.default, "default")
    source, origin, value = candidates[0]
    try:
        value = key.check(value)
    except ConfigError as err:
        where = f"the config file {origin}" if source == "config file" else origin
        msg = f"{key.name} from {where}: {err}"
        raise ConfigError(msg) from None
    return Resolved(key.name, value, source, origin)


def resolve_all(flags: dict[str, str | None] | None = None) -> list[Resolved]:
    """Every setting resolved (see :func:`resolve`), in :data:`KEYS` order."""
    flags = flags or {}
    return [resolve(name, flags.get(name)) for name in KEYS]
