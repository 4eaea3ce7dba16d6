"""The request text is untrusted: refuse instruction overrides and requests for other tools.

The agent only ever runs its own tools (:data:`~scagent.agent.TOOLS`) on files inside the
allowed directories, whatever the text or the LLM says; these checks add a clear refusal
for requests that try something else, before any LLM sees them.
"""

from __future__ import annotations

import re

__all__ = ["refusals"]

_INJECTION = [
    r"\b(ignore|disregard|forget|skip|bypass)\b[^.\n]{0,40}\b(instructions?|rules|prompts?|"
    r"guidelines|directions|constraints|restrictions)\b",
    r"\byou\s+are\s+now\b|\bfrom\s+now\s+on\s+you\b|\bpretend\s+(to\s+be|you\s+are)\b|"
    r"\bact\s+as\s+(an?\s+)?(admin|root|system|developer|unrestricted|different)\b",
    r"\bsystem\s+prompt\b|\bnew\s+instructions?\b|\bdeveloper\s+mode\b|\bjailbreak|"
    r"\bDAN\s+mode\b",
    r"<\|im_(start|end)\|>|<\|system\|>|\[/?INST\]|<</?SYS>>|^\s*(system|assistant)\s*:",
    r"\boverride\b[^.\n]{0,40}\b(instructions?|rules|safety|settings|schema|requirement)\b",
    r"\b(reveal|print|show|leak|tell\s+me)\b[^.\n]{0,30}\b(prompt|instructions|api[\s_-]?key|"
    r"secret|password|token|credentials|environment\s+variables?)\b",
    r"\"?requirement\"?\s*[:=]\s*\"?\w+|\{\s*\"(requirement|tissue|file_path|cell_type)\"",
]
_OTHER_TOOLS = [
    r"\b(run|execute|exec|eval|evaluate|call|invoke|launch|spawn)\b\s+(a\s+|the\s+|this\s+|"
    r"my\s+|some\s+)?(shell|bash|sh|zsh|command|commands|script|python|code|program|"
    r"terminal|subprocess|sql|query\s+on|function)\b",
    r"\brm\s+-\w+|\b(sudo|chmod|chown|curl|wget|ssh|scp|netcat|mkfs|crontab)\b|\bpip\s+install\b",
    r"os\.system|subprocess|__import__|\beval\s*\(|\bexec\s*\(|\$\(|&&|\|\s*(sh|bash)\b|;\s*rm\b",
    r"\b(delete|remove|erase|wipe|drop|truncate|overwrite|destroy)\b\s+(all\s+|the\s+|my\s+|"
    r"your\s+|every\s+|any\s+)?(files?|folders?|director(y|ies)|database|memory|history|"
    r"plugins?|tables?|models?|data|disk)\b",
    r"\b(send|e-?mail|upload|post|publish|exfiltrate|transmit|copy)\b[^.\n]{0,60}"
    r"\b(to\s+\S+@|to\s+https?|to\s+my\s+server|to\s+a\s+server|to\s+the\s+internet|"
    r"webhook|remote)\b",
    r"\b(https?|ftp|s3|gs)://",
    r"\b(download|fetch|browse|search\s+the\s+web|google)\b",
]
_INJECTION_RE = [re.compile(p, re.IGNORECASE | re.MULTILINE) for p in _INJECTION]
_OTHER_RE = [re.compile(p, re.IGNORECASE) for p in _OTHER_TOOLS]


def refusals(text: str) -> list[str]:
    """Why ``text`` must be refused (empty when it may be parsed and run)."""
    out = []
    if any(p.search(text) for p in _INJECTION_RE):
        out.append(
            "refused: the request tries to change the agent's instructions; ask in plain words "
            "for cell types, the tissue, or adding a cell type"
        )
    if any(p.search(text) for p in _OTHER_RE):
        out.append(
            "refused: the agent only annotates, detects novel cells, adds cell types and "
            "searches its memory on local files; it runs no other commands or tools"
        )
    if len(text) > 4000:
        out.append("refused: the request is longer than 4,000 characters")
    return out
