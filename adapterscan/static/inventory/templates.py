"""What a chat template does beyond formatting turns (AS409) or nothing more (AS450).

Honest adapters often ship their base's tokenizer files, chat template included. A template that
only lays out the turns with the model's special tokens changes nothing an attacker chooses; one
that reaches for Python objects, names a URL or a shell command, pulls in other templates, or
writes a long instruction of its own into every conversation does. Decided on real adapters (#23).
"""

from __future__ import annotations

import re
from collections.abc import Iterator

# Jinja sandbox-escape material: dunders, globals that hold callables, attribute access by name.
MARKERS = re.compile(r"__\w+__|\bcycler\b|\bjoiner\b|\blipsum\b|\bself\b\s*\.|"
                     r"\|\s*attr\b|\bimport\b")
_URL = re.compile(r"(?i)\b(?:https?|ftp|file)://|\bwww\.[a-z0-9-]+\.")
_SHELL = re.compile(r"(?i)\b(?:curl|wget|powershell|bash\s+-c|sh\s+-c|rm\s+-rf|chmod\s+\+x|"
                    r"nc\s+-e|base64\s+-d|os\.system|subprocess)\b")
# Tags that load other templates: beyond what a turn layout needs.
_LOADING_TAGS = re.compile(r"\{%-?\s*(?:include|import|extends|from)\b")
_TAG = re.compile(r"\{%.*?%\}|\{\{.*?\}\}|\{#.*?#\}", re.DOTALL)
_QUOTED = re.compile(r"'((?:[^'\\]|\\.)*)'|\"((?:[^\"\\]|\\.)*)\"", re.DOTALL)
_WORD = re.compile(r"[^\W\d_]{2,}")
# A literal this long is prose the template writes into the prompt, not a turn marker.
MAX_WORDS = 16
# Default system prompts and tool instructions of the official templates of common bases
# (whitespace-normalised), written by their publishers: not an injection by the adapter.
KNOWN_PROSE: frozenset[str] = frozenset({
    # Llama 2 chat (transformers' LlamaTokenizer DEFAULT_SYSTEM_PROMPT)
    "You are a helpful, respectful and honest assistant. Always answer as helpfully as possible, "
    "while being safe. Your answers should not include any harmful, unethical, racist, sexist, "
    "toxic, dangerous, or illegal content. Please ensure that your responses are socially "
    "unbiased and positive in nature. If a question does not make any sense, or is not "
    "factually coherent, explain why instead of answering something not correct. If you don't "
    "know the answer to a question, please don't share false information.",
    # Llama 3.1 / 3.2 tool calling
    "Given the following functions, please respond with a JSON for a function call with its "
    "proper arguments that best answers the given prompt.",
})


def _normalise(text: str) -> str:
    text = text.replace("\\n", " ").replace("\\'", "'").replace('\\"', '"')
    return " ".join(text.split())


def _literals(text: str) -> Iterator[str]:
    """Text the template writes as it is: quoted strings inside tags, text between tags."""
    pos = 0
    for tag in _TAG.finditer(text):
        yield text[pos:tag.start()]
        for m in _QUOTED.finditer(tag.group(0)):
            yield m.group(1) if m.group(1) is not None else m.group(2)
        pos = tag.end()
    yield text[pos:]


def concerns(text: str) -> list[str]:
    """Why this template is more than a turn layout; empty when it is only that."""
    found: list[str] = []
    markers = sorted({m.group(0) for m in MARKERS.finditer(text)})
    if markers:
        found.append("sandbox-escape markers: " + ", ".join(markers[:5]))
    if _URL.search(text):
        found.append("a URL")
    if _SHELL.search(text):
        found.append("a shell command")
    if _LOADING_TAGS.search(text):
        found.append("include/import/extends of other templates")
    for lit in _literals(text):
        prose = _normalise(lit)
        if len(_WORD.findall(prose)) >= MAX_WORDS and prose not in KNOWN_PROSE:
            found.append(f"{len(_WORD.findall(prose))}-word text of its own: {prose[:80]!r}")
            break
    return found
