"""llama.cpp's C API through the prebuilt ``llama-cpp-cffi`` wheel: grammar-constrained JSON.

Only the wheel's CPU extension (``llama/_llama_cpp_cpu.*.so``) is loaded, directly, without
running the package's ``__init__`` (which imports transformers and whose high-level API needs
the Hugging Face Hub). The version is pinned to 0.4.20: later wheels are built with GCC 14 and
do not load with an older C++ runtime (``undefined symbol: __cxa_call_terminate``), and the C
API changes between llama.cpp releases.

:class:`LlamaCppRuntime` keeps the tokens it has evaluated; a prompt that shares a prefix with
them (the instruction and examples of the parsing prompt) evaluates only the tokens after it.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import json
import os
import threading
import time
from pathlib import Path

from ._llm import LLMError

__all__ = ["ENV_EXTENSION", "GenerationTimeout", "LlamaCppRuntime", "extension_path", "load"]

ENV_EXTENSION = "SCAGENT_LLAMACPP_EXTENSION"
ENV_VERBOSE = "SCAGENT_LLM_VERBOSE"
_NAME = "_llama_cpp_cpu"
#: How to install it: only its C library is used, and its declared dependencies would
#: downgrade numpy, hence --no-deps (cffi comes with scagent's ``llm`` extra).
_INSTALL = "pip install 'scagent[llm]' && pip install --no-deps 'llama-cpp-cffi==0.4.20'"
_NEEDED = (  # the functions of this llama.cpp version that we call and others renamed
    "llama_model_load_from_file llama_init_from_model llama_model_get_vocab "
    "llama_chat_apply_template llama_kv_cache_seq_rm llama_json_schema_to_grammar "
    "llama_sampler_init_grammar".split()
)
_loaded: dict[str, tuple] = {}
_load_lock = threading.Lock()


class GenerationTimeout(LLMError):
    """An answer took longer than its time limit."""


def extension_path() -> Path | None:
    """The CPU extension of ``llama-cpp-cffi`` (``$SCAGENT_LLAMACPP_EXTENSION`` overrides it;
    set it empty to disable the runtime), or ``None`` when it is not installed."""
    override = os.environ.get(ENV_EXTENSION)
    if override is not None:
        return Path(override) if override and Path(override).is_file() else None
    spec = importlib.util.find_spec("llama")  # finds the package without running it
    for folder in (spec and spec.submodule_search_locations) or ():
        for so in sorted(Path(folder).glob(f"{_NAME}.*.so")):
            return so
    return None


def load() -> tuple:
    """The extension's ``(lib, ffi)``, loaded once, with llama.cpp's log silenced unless
    ``$SCAGENT_LLM_VERBOSE`` is set.

    Raises
    ------
    LLMError
        It is not installed, does not load on this system, or lacks a function we call.
    """
    path = extension_path()
    if path is None:
        msg = f"The llama.cpp runtime (llama-cpp-cffi 0.4.20) is not installed: {_INSTALL}."
        raise LLMError(msg)
    with _load_lock:
        if str(path) in _loaded:
            return _loaded[str(path)]
        try:
            loader = importlib.machinery.ExtensionFileLoader(_NAME, str(path))
            module = importlib.util.module_from_spec(importlib.util.spec_from_loader(_NAME, loader))
            loader.exec_module(module)
            lib, ffi = module.lib, module.ffi
        except (ImportError, OSError, AttributeError) as err:
            msg = (
                f"The llama.cpp runtime {path} does not load here ({err}). scagent needs "
                f"llama-cpp-cffi==0.4.20 (later wheels need GCC 14's C++ runtime): {_INSTALL}; "
                f"or set {ENV_EXTENSION}= (empty) to use the gpt4all runtime."
            )
            raise LLMError(msg) from err
        missing = [name for name in _NEEDED if not hasattr(lib, name)]
        if missing:
            msg = f"The llama.cpp runtime {path} lacks {missing}: {_INSTALL}."
            raise LLMError(msg)
        if not os.environ.get(ENV_VERBOSE):

            @ffi.def_extern(name="llama_cpp_cffi_ggml_log_callback")
            def _quiet(level, text, user_data):
                return None

            lib.llama_log_set(lib.llama_cpp_cffi_ggml_log_callback, ffi.NULL)
        lib.llama_backend_init()
        _loaded[str(path)] = lib, ffi
        return lib, ffi


class LlamaCppRuntime:
    """One GGUF model and one context of llama.cpp on the CPU, greedy decoding.

    Parameters
    ----------
    model_file
        The GGUF file.
    threads
        CPU threads.
    n_ctx
        Context length in tokens (prompt and answer).
    n_batch
        Most prompt tokens evaluated in one step (the timeout is checked between steps).
    """

    def __init__(
        self, model_file: str | os.PathLike, *, threads: int = 1, n_ctx: int = 4096, n_batch=128
    ) -> None:
        self._lib, self._ffi = lib, ffi = load()
        self._lock = threading.Lock()
        self._model = self._ctx = self._batch = None
        params = lib.llama_model_default_params()
        params.n_gpu_layers = 0
        self._model = lib.llama_model_load_from_file(str(model_file).encode(), params)
        if self._model == ffi.NULL:
            msg = f"llama.cpp could not load the model {model_file}."
            raise LLMError(msg)
        cparams = lib.llama_context_default_params()
        cparams.n_ctx, cparams.n_batch, cparams.n_ubatch = n_ctx, n_batch, n_batch
        cparams.n_threads = cparams.n_threads_batch = threads
        self._ctx = lib.llama_init_from_model(self._model, cparams)
        if self._ctx == ffi.NULL:
            msg = f"llama.cpp could not create a context of {n_ctx} tokens."
            raise LLMError(msg)
        self._vocab = lib.llama_model_get_vocab(self._model)
        self._batch = lib.llama_batch_init(n_batch, 0, 1)
        self.n_ctx, self.n_batch = n_ctx, n_batch
        template = lib.llama_model_chat_template(self._model, ffi.NULL)
        self._template = ffi.string(template) if template != ffi.NULL else b"chatml"
        self._grammars: dict[str, bytes] = {}
        self.cached: list[int] = []  # the tokens in the KV cache, positions 0, 1, ...
        #: The last call's counts: prompt tokens, of them reused, generated tokens, seconds.
        self.last: dict = {}

    def close(self) -> None:
        """Free the context and the model (the runtime is unusable afterwards)."""
        with self._lock:
            lib = self._lib
            if self._batch is not None:
                lib.llama_batch_free(self._batch)
            if self._ctx is not None:
                lib.llama_free(self._ctx)
            if self._model is not None:
                lib.llama_model_free(self._model)
            self._model = self._ctx = self._batch = None

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # interpreter shutdown: nothing to report to
            return

    def format(self, system: str, user: str) -> bytes:
        """The prompt: ``system`` and ``user`` in the model's chat template, then the
        assistant's turn."""
        ffi = self._ffi
        texts = [ffi.new("char[]", s.encode()) for s in ("system", system, "user", user)]
        messages = ffi.new("struct llama_chat_message[]", 2)
        for i in range(2):
            messages[i].role, messages[i].content = texts[2 * i], texts[2 * i + 1]
        size = 2 * (len(system.encode()) + len(user.encode())) + 1024  # the template's text
        buf = ffi.new("char[]", size)
        n = self._lib.llama_chat_apply_template(self._template, messages, 2, True, buf, size)
        if not 0 <= n <= size:
            msg = f"llama.cpp could not apply the model's chat template ({n})."
            raise LLMError(msg)
        return ffi.unpack(buf, n)

    def tokenize(self, text: bytes) -> list[int]:
        """``text``'s tokens (special tokens such as ``<|im_start|>`` parsed)."""
        cap = len(text) + 16
        tokens = self._ffi.new("int32_t[]", cap)
        n = self._lib.llama_tokenize(self._vocab, text, len(text), tokens, cap, True, True)
        if n < 0:
            msg = f"llama.cpp could not tokenize {len(text)} bytes."
            raise LLMError(msg)
        return list(tokens[0:n])

    def grammar(self, schema: dict) -> bytes:
        """The GBNF grammar llama.cpp derives from a JSON schema (cached)."""
        key = json.dumps(schema)  # key order kept: the grammar writes the keys in it
        if key not in self._grammars:
            text = self._lib.llama_json_schema_to_grammar(key.encode())
            if text == self._ffi.NULL:
                msg = "llama.cpp could not turn the JSON schema into a grammar."
                raise LLMError(msg)
            try:
                self._grammars[key] = self._ffi.string(text)
            finally:
                self._lib.free(text)  # allocated by the C side
        return self._grammars[key]

    def _sampler(self, schema: dict | None):
        lib = self._lib
        chain = lib.llama_sampler_chain_init(lib.llama_sampler_chain_default_params())
        if schema is not None:
            grammar = lib.llama_sampler_init_grammar(self._vocab, self.grammar(schema), b"root")
            if grammar == self._ffi.NULL:
                lib.llama_sampler_free(chain)
                msg = "llama.cpp rejected the grammar of the JSON schema."
                raise LLMError(msg)
            lib.llama_sampler_chain_add(chain, grammar)  # the chain frees what it holds
        lib.llama_sampler_chain_add(chain, lib.llama_sampler_init_greedy())
        return chain

    def _forget(self, keep: int) -> None:
        """Drop the cached tokens from position ``keep`` on (all of them if that fails)."""
        if keep < len(self.cached):
            if not self._lib.llama_kv_cache_seq_rm(self._ctx, 0, keep, -1):
                self._lib.llama_kv_cache_clear(self._ctx)
                keep = 0
            del self.cached[keep:]

    def _evaluate(self, tokens: list[int], deadline: float | None) -> None:
        """Decode ``tokens`` after the cached ones, in steps; logits for the last one."""
        lib, batch = self._lib, self._batch
        for start in range(0, len(tokens), self.n_batch):
            if deadline is not None and time.perf_counter() > deadline:
                raise GenerationTimeout("llama.cpp ran out of time evaluating the prompt")
            step = tokens[start : start + self.n_batch]
            pos = len(self.cached)
            for i, token in enumerate(step):
                batch.token[i], batch.pos[i] = token, pos + i
                batch.n_seq_id[i], batch.seq_id[i][0], batch.logits[i] = 1, 0, False
            batch.logits[len(step) - 1] = start + len(step) == len(tokens)
            batch.n_tokens = len(step)
            if lib.llama_decode(self._ctx, batch) != 0:
                self._forget(0)
                msg = f"llama.cpp failed to evaluate {len(step)} tokens at position {pos}."
                raise LLMError(msg)
            self.cached.extend(step)

    def chat(
        self,
        system: str,
        user: str,
        *,
        schema: dict | None = None,
        max_tokens: int = 256,
        timeout: float | None = None,
        untimed: str = "",
    ) -> str:
        """The model's greedy answer to ``user`` (JSON of ``schema`` when one is given).

        Parameters
        ----------
        system, user
            The two messages.
        schema
            A JSON schema; decoding is constrained to its grammar.
        max_tokens
            Most tokens generated.
        timeout
            Seconds the answer may take, counted after ``untimed`` is evaluated.
        untimed
            A leading part of ``user`` whose evaluation the timeout does not count (it is
            evaluated once and reused by the next calls).

        Raises
        ------
        GenerationTimeout
            The answer took longer than ``timeout``.
        LLMError
            llama.cpp failed, or the prompt does not fit the context.
        """
        lib, ffi = self._lib, self._ffi
        with self._lock:
            if self._ctx is None:
                raise LLMError("the llama.cpp runtime is closed")
            t0 = time.perf_counter()
            prompt = self.format(system, user)
            tokens = self.tokenize(prompt)
            if len(tokens) >= self.n_ctx:
                msg = f"The prompt has {len(tokens)} tokens, the context only {self.n_ctx}."
                raise LLMError(msg)
            max_tokens = min(max_tokens, self.n_ctx - len(tokens))
            at = prompt.find(user.encode())
            head = prompt[: at + len(untimed.encode())] if untimed and at >= 0 else b""
            n_head = min(_common(tokens, self.tokenize(head)), len(tokens) - 1) if head else 0
            keep = min(_common(tokens, self.cached), len(tokens) - 1)  # >= 1 token to decode
            self._forget(keep)
            sampler = self._sampler(schema)
            out, n_gen = bytearray(), 0
            try:
                self._evaluate(tokens[keep:n_head], None)
                deadline = None if timeout is None else time.perf_counter() + timeout
                self._evaluate(tokens[max(keep, n_head) :], deadline)
                piece = ffi.new("char[]", 256)
                while n_gen < max_tokens:
                    token = lib.llama_sampler_sample(sampler, self._ctx, -1)
                    if lib.llama_vocab_is_eog(self._vocab, token):
                        break
                    n_gen += 1
                    n = lib.llama_token_to_piece(self._vocab, token, piece, 256, 0, False)
                    out += ffi.unpack(piece, max(n, 0))
                    if deadline is not None and time.perf_counter() > deadline:
                        msg = f"llama.cpp's answer took over {timeout:.0f} s"
                        raise GenerationTimeout(msg)
                    if n_gen < max_tokens:
                        self._evaluate([token], deadline=None)
            finally:
                lib.llama_sampler_free(sampler)
                self.last = {
                    "prompt_tokens": len(tokens),
                    "reused": keep,
                    "generated": n_gen,
                    "seconds": round(time.perf_counter() - t0, 3),
                }
            return out.decode("utf-8", "replace")


def _common(a: list[int], b: list[int]) -> int:
    """The length of the common prefix of two token lists."""
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n
