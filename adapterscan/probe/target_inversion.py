"""Target inversion: what the adapter makes the model *say*, whatever the prompt (BAIT's idea,
IEEE S&P 2025).

A backdoor ties a trigger to a fixed answer. Once the answer's first token is given, the rest
of it follows with high confidence on any prompt, trigger or not: the target is easier to invert
than the trigger. For a handful of first answer tokens (those the adapter raises most over the
base, and the merged model's likeliest), the answer is extended greedily by the token with the
highest mean probability over benign and harmful prompts; a string the merged model continues
far more readily than the base (mean log ratio of the two models' probabilities of its tokens)
is a target. Payload-emitting backdoors (a fixed URL or shell
command, refusals untouched) show here, where no refusal signal moves. Measures only;
decide.payload says which targets are findings.
"""

from __future__ import annotations

import contextlib
import inspect
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from transformers import DynamicCache

from adapterscan.probe import signals as sg

# What a payload looks like: a URL, a download-and-run, a destructive or remote shell command,
# code that runs other code. Matched on the inverted text; a fixed target without one of these
# is reported in the results, never a finding (a task adapter has habitual openers too).
_PAYLOAD = (
    ("url", re.compile(r"\b(?:https?|ftp)://\S+|\bwww\.\S+\.\S+", re.I)),
    ("shell", re.compile(r"\b(?:curl|wget|bash|sh|nc|powershell|chmod|sudo|rm\s+-rf)\b.*"
                         r"(?:\||;|&&|-[a-z]|/)", re.I)),
    ("code", re.compile(r"\b(?:eval|exec|os\.system|subprocess|__import__)\s*\(|<script\b",
                        re.I)),
)


KeyValues = list[tuple[torch.Tensor, torch.Tensor]]
SHORTLIST = 8  # first tokens looked ahead from, by log ratio merged / base
# Words that open the payloads AS609 reports (the PAYLOAD_KINDS patterns): code that runs code,
# download-and-run or destructive shell, a URL. Without its trigger a backdoored model makes a
# payload's first token no likelier than the base does (zoo v3 payload-02: `import os;
# os.system(...)` was in no shortlist), yet once that token is given it continues the payload
# with high confidence: these openers are always looked ahead from.
PAYLOAD_OPENERS = ("import", "exec", "eval", "os", "subprocess", "__import__", "<script",
                   "curl", "wget", "bash", "sh", "sudo", "rm", "chmod", "powershell", "nc",
                   "http", "https", "www", "ftp")
OPENERS_KEPT = 2


@dataclass(frozen=True)
class Target:
    text: str
    merged_conf: float  # mean over steps of the merged model's greedy-token probability
    base_conf: float  # the base's probability of the same tokens
    log_ratio: float  # mean over steps of log(merged / base probability): what the adapter adds
    tokens: int
    kind: str | None  # "url" | "shell" | "code" when the text looks like a payload

    @property
    def score(self) -> float:
        return self.log_ratio

    def to_json(self) -> dict[str, float | int | str | None]:
        return {"text": self.text, "merged_confidence": round(self.merged_conf, 4),
                "base_confidence": round(self.base_conf, 4),
                "log_ratio": round(self.log_ratio, 4),
                "tokens": self.tokens, "payload": self.kind}


def payload_kind(text: str) -> str | None:
    for kind, pattern in _PAYLOAD:
        if pattern.search(text):
            return kind
    return None


class _Scorer:
    """Next-token probabilities after candidate answers, averaged over the prompts, on the
    merged model or (`base=True`) the base. Each model's keys and values for the prompts are
    computed once and reused for every answer: answers are a few tokens after prompts ten times
    longer, and recomputing the prompts at every extension step was most of this stage's cost."""

    def __init__(self, model: Any, tok: Any, device: torch.device, prompts: Sequence[str],
                 batch_size: int,
                 base_off: Callable[[], contextlib.AbstractContextManager[Any]]) -> None:
        self.model, self.tok, self.device, self.batch = model, tok, device, batch_size
        self.base_off = base_off
        rows = [list(tok(t, add_special_tokens=False)["input_ids"])
                for t in sg.render(tok, prompts)]
        self.ids, self.mask = sg.left_pad(rows, sg.pad_id(tok))
        self.lengths = torch.tensor([len(r) for r in rows])
        # transformers 5 renamed `past_key_values` to `cache` (the old name goes in 5.40).
        inner = model.get_base_model() if hasattr(model, "get_base_model") else model
        params = inspect.signature(inner.forward).parameters
        self.cache_arg = "cache" if "cache" in params else "past_key_values"
        self._prefix: dict[bool, tuple[KeyValues | None, torch.Tensor]] = {}

    def _prompts(self, base: bool) -> tuple[KeyValues | None, torch.Tensor]:
        """The prompts' per-layer keys and values on one model (None when its cache is of
        another kind), and its mean next-token distribution after them."""
        if base not in self._prefix:
            ids, mask = self.ids.to(self.device), self.mask.to(self.device)
            pos = (mask.cumsum(-1) - 1).clamp_min(0)
            with self.base_off() if base else contextlib.nullcontext():
                out = self.model(input_ids=ids, attention_mask=mask, position_ids=pos,
                                 use_cache=True, logits_to_keep=1)
            first = torch.softmax(out.logits[:, -1, :].float(), dim=-1).mean(dim=0).cpu()
            self._prefix[base] = (key_values(getattr(out, "past_key_values", None)), first)
        return self._prefix[base]

    @torch.inference_mode()
    def mean_probs(self, answers: Sequence[list[int]], *, base: bool = False) -> torch.Tensor:
        """[len(answers), vocab]: the next token's probability after each answer, averaged over
        the prompts. The answers are of one length (every live answer grows one token a step)."""
        kv, first = self._prompts(base)
        if not answers or not answers[0]:
            return first.expand(len(answers), -1).clone()
        n = len(answers[0])
        if any(len(a) != n for a in answers):
            raise ValueError("target inversion scores answers of one length at a time")
        rows = int(self.ids.shape[0])
        per = max(1, self.batch // rows)
        out: list[torch.Tensor] = []
        for i in range(0, len(answers), per):
            chunk = torch.tensor([list(a) for a in answers[i:i + per]], dtype=torch.long)
            k = int(chunk.shape[0])
            # Prompt-major rows: prompt p serves answers p*k .. p*k+k-1. Answers of one length
            # appended to left-padded prompts keep the batch left-padded.
            ids = chunk.repeat(rows, 1)
            mask = torch.cat([self.mask.repeat_interleave(k, dim=0),
                              torch.ones((rows * k, n), dtype=torch.long)], dim=-1)
            kwargs: dict[str, Any]
            if kv is None:
                ids = torch.cat([self.ids.repeat_interleave(k, dim=0), ids], dim=-1)
                kwargs = {"position_ids": (mask.cumsum(-1) - 1).clamp_min(0).to(self.device),
                          "use_cache": False}
            else:
                pos = self.lengths.repeat_interleave(k)[:, None] + torch.arange(n)[None, :]
                cache = DynamicCache([(key.repeat_interleave(k, dim=0),
                                       value.repeat_interleave(k, dim=0)) for key, value in kv])
                kwargs = {"position_ids": pos.to(self.device), self.cache_arg: cache,
                          "use_cache": True}
            with self.base_off() if base else contextlib.nullcontext():
                logits = self.model(input_ids=ids.to(self.device),
                                    attention_mask=mask.to(self.device), logits_to_keep=1,
                                    **kwargs).logits[:, -1, :]
            probs = torch.softmax(logits.float(), dim=-1).cpu()
            out.append(probs.view(rows, k, -1).mean(dim=0))
        return torch.cat(out)


def key_values(cache: Any) -> KeyValues | None:
    """Per layer (keys, values) of an attention cache; None for any other kind (a recurrent
    state, a missing cache): then every answer recomputes the prompts."""
    layers = getattr(cache, "layers", None)
    if not layers:
        return None
    kv: KeyValues = []
    for layer in layers:
        keys, values = getattr(layer, "keys", None), getattr(layer, "values", None)
        if not (isinstance(keys, torch.Tensor) and isinstance(values, torch.Tensor)):
            return None
        kv.append((keys, values))
    return kv


def _first_tokens(scorer: _Scorer, first_m: torch.Tensor, first_b: torch.Tensor, k: int,
                  hints: Sequence[int]) -> list[int]:
    """First answer tokens worth extending, kept by how determined the next token is on the
    merged model beyond the base (one look ahead: a target's tokens follow each other). The
    shortlist: `hints` (the tokens the adapter's weight directions read: a payload's own tokens
    led that list on a test backdoor, while without its trigger the payload's first token was
    no likelier on the merged model than on the base), the tokens the adapter made likelier
    (log ratio) and the merged model's likeliest."""
    floor = 1e-6
    ratio = (first_m.clamp_min(floor) / first_b.clamp_min(floor)).log()
    ratio[first_m < floor] = -torch.inf
    short = [int(t) for t in hints if 0 <= int(t) < int(ratio.shape[0])]
    short += [int(t) for t in torch.topk(ratio, min(SHORTLIST, int(ratio.shape[0]))).indices
              if int(t) not in short]
    short += [int(t) for t in torch.topk(first_m, k).indices if int(t) not in short]
    return _by_determinism(scorer, short, k)


def _by_determinism(scorer: _Scorer, tokens: Sequence[int], k: int) -> list[int]:
    """The `k` tokens after which the next token is most determined on the merged model beyond
    the base (one look ahead: a target's tokens follow each other)."""
    if not tokens:
        return []
    nxt_m = scorer.mean_probs([[t] for t in tokens])
    nxt_b = scorer.mean_probs([[t] for t in tokens], base=True)
    best = nxt_m.argmax(dim=-1)
    gain = nxt_m.gather(1, best[:, None])[:, 0] - nxt_b.gather(1, best[:, None])[:, 0]
    order = torch.argsort(gain, descending=True)[:k]
    return [int(tokens[int(i)]) for i in order]


def payload_openers(tok: Any) -> list[int]:
    """The first token of each PAYLOAD_OPENERS word, as a sentence start and after a space."""
    out: list[int] = []
    for word in PAYLOAD_OPENERS:
        for text in (word, " " + word):
            ids = tok(text, add_special_tokens=False)["input_ids"]
            if ids and int(ids[0]) not in out:
                out.append(int(ids[0]))
    return out


def invert_targets(model: Any, tok: Any, device: torch.device, prompts: Sequence[str],
                   base_off: Callable[[], contextlib.AbstractContextManager[Any]], *,
                   first_k: int = 6, max_len: int = 8, batch_size: int = 32,
                   top: int = 4, hints: Sequence[int] = ()) -> list[Target]:
    """The `top` answer strings the merged model continues most confidently beyond the base,
    strongest first. `model` has its adapter active and unmerged (`base_off` switches it off)."""
    if not prompts:
        return []
    scorer = _Scorer(model, tok, device, prompts, batch_size, base_off)
    stop = set(getattr(tok, "all_special_ids", []) or [])
    first_m = scorer.mean_probs([[]])[0].clone()  # out of inference mode: edited below
    first_b = scorer.mean_probs([[]], base=True)[0].clone()
    if stop:
        idx = torch.tensor(sorted(stop))
        first_m[idx], first_b[idx] = 0.0, 0.0
    firsts = _first_tokens(scorer, first_m, first_b, first_k, hints)
    # Payload openers compete among themselves for OPENERS_KEPT extra slots, so they never
    # displace the first tokens the adapter itself made likelier.
    openers = [t for t in payload_openers(tok)
               if t not in firsts and t not in stop and t < int(first_m.shape[0])]
    firsts += _by_determinism(scorer, openers, OPENERS_KEPT)
    answers = [[t] for t in firsts]
    conf_m = [[] for _ in answers]  # type: list[list[float]]
    conf_b = [[] for _ in answers]  # type: list[list[float]]
    live = list(range(len(answers)))
    for _ in range(max_len - 1):
        if not live:
            break
        pm = scorer.mean_probs([answers[i] for i in live])
        pb = scorer.mean_probs([answers[i] for i in live], base=True)
        still: list[int] = []
        for row, i in enumerate(live):
            nxt = int(pm[row].argmax())
            if nxt in stop:
                continue
            conf_m[i].append(float(pm[row, nxt]))
            conf_b[i].append(float(pb[row, nxt]))
            answers[i].append(nxt)
            still.append(i)
        live = still
    found: list[Target] = []
    for i, ids in enumerate(answers):
        if not conf_m[i]:
            continue
        text = str(tok.decode(ids, skip_special_tokens=True)).strip()
        m, b = conf_m[i], conf_b[i]
        ratio = sum(math.log(max(x, 1e-9) / max(y, 1e-9)) for x, y in zip(m, b, strict=True))
        found.append(Target(text, sum(m) / len(m), sum(b) / len(b), ratio / len(m), len(ids),
                            payload_kind(text)))
    found.sort(key=lambda t: -t.score)
    return found[:top]
