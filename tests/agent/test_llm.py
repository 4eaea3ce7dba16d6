import importlib.machinery
import sys
import types

import pytest

from scagent.agent import ChatBackend, LLMError, _embedded, backend_name, get_llm


def test_rules_backend_is_no_llm(monkeypatch):
    monkeypatch.setenv("SCAGENT_LLM", "rules")
    assert backend_name() == "rules" and get_llm() is None


def test_unknown_backend_names_the_setting():
    with pytest.raises(LLMError, match="SCAGENT_LLM"):
        get_llm("gpt-17")


def test_openai_needs_its_settings(monkeypatch):
    monkeypatch.delenv("SCAGENT_LLM_BASE_URL", raising=False)
    with pytest.raises(LLMError, match="SCAGENT_LLM_BASE_URL"):
        get_llm("openai")


def test_openai_constructs_offline(monkeypatch):
    monkeypatch.setenv("SCAGENT_LLM_BASE_URL", "http://127.0.0.1:9/v1")
    monkeypatch.setenv("SCAGENT_LLM_MODEL", "deepseek-r1")
    monkeypatch.setenv("SCAGENT_LLM_TIMEOUT", "1")
    monkeypatch.setenv("SCAGENT_LLM_RETRIES", "0")
    llm = get_llm("openai")
    assert "deepseek-r1" in llm.name
    # nothing listens on port 9: a clear error naming the setting, quickly
    with pytest.raises(LLMError, match="SCAGENT_LLM"):
        llm.complete("hi")


def test_chat_model_wrapping_strips_thinking():
    from langchain_core.language_models.fake_chat_models import FakeListChatModel

    llm = get_llm(FakeListChatModel(responses=['<think>hmm</think>{"a": 1}']))
    assert isinstance(llm, ChatBackend)
    assert llm.complete("x", schema={"type": "object"}) == '{"a": 1}'


def test_slow_backend_times_out():
    from langchain_core.language_models.fake_chat_models import FakeListChatModel

    llm = ChatBackend(FakeListChatModel(responses=["{}"], sleep=0.05), timeout=0.001)
    with pytest.raises(LLMError, match="SCAGENT_LLM_TIMEOUT"):
        llm.complete("x")


def _fake_parts(monkeypatch, tmp_path, blobs):
    import hashlib

    for i, blob in enumerate(blobs, 1):
        f = tmp_path / f"part{i}.bin"
        f.write_bytes(blob)
        mod = types.ModuleType(f"fakepart{i}")
        mod.__spec__ = importlib.machinery.ModuleSpec(f"fakepart{i}", None)
        mod.get_part_path = lambda f=f: str(f)
        monkeypatch.setitem(sys.modules, f"fakepart{i}", mod)
    joined = b"".join(blobs)
    monkeypatch.setattr(_embedded, "_PART", "fakepart{}")
    monkeypatch.setattr(_embedded, "N_PARTS", len(blobs))
    monkeypatch.setattr(_embedded, "MODEL_SIZE", len(joined))
    return hashlib.sha256(joined).hexdigest()


def test_embedded_model_is_joined_verified_and_cached(monkeypatch, tmp_path):
    monkeypatch.setenv("SCAGENT_HOME", str(tmp_path / "home"))
    sha = _fake_parts(monkeypatch, tmp_path, [b"GGUF", b"-part-", b"three"])
    monkeypatch.setattr(_embedded, "MODEL_SHA256", sha)
    path = _embedded.model_path()
    assert path.read_bytes() == b"GGUF-part-three"
    assert path.parent == tmp_path / "home" / "llm"
    (tmp_path / "part1.bin").unlink()  # cached: the parts are not read again
    assert _embedded.model_path() == path


def test_embedded_model_with_a_wrong_checksum_is_refused(monkeypatch, tmp_path):
    monkeypatch.setenv("SCAGENT_HOME", str(tmp_path / "home"))
    _fake_parts(monkeypatch, tmp_path, [b"GGUF", b"tampered"])
    monkeypatch.setattr(_embedded, "MODEL_SHA256", "0" * 64)
    with pytest.raises(LLMError, match="SHA-256"):
        _embedded.model_path()
    assert list((tmp_path / "home" / "llm").iterdir()) == []  # nothing half-written kept
