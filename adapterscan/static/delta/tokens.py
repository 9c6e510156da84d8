"""Which vocabulary rows of an embedding or lm_head a checkpoint changed, by token.

Row i of ΔW (embedding: vocab × hidden; lm_head: vocab × hidden too) is token i. The energies
come from the factorization's first pass; token strings from the checkpoint's tokenizer.json
(the tokenizer a loader of this checkpoint uses), else the base's, read as JSON, never run.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from adapterscan.emit import Emitter
from adapterscan.findings import JSONValue
from adapterscan.static.delta import checks as C
from adapterscan.static.delta.factorize import F64

SHOWN = 32


@dataclass(frozen=True)
class TokenRows:
    tensor: str
    file: str
    rows: int  # rows compared
    changed: tuple[int, ...]  # ids of the changed rows, largest change first (at most SHOWN)
    changed_count: int
    added: tuple[int, ...]  # ids past the base's vocabulary (a resized vocabulary)
    top_share: float  # share of ‖ΔW‖² in the rows listed

    def record(self, vocab: dict[int, str]) -> dict[str, JSONValue]:
        return {"tensor": self.tensor, "rows_compared": self.rows,
                "changed_rows": self.changed_count,
                "top_rows": [{"id": i, "token": vocab.get(i)} for i in self.changed],
                "top_share": self.top_share, "added_rows": len(self.added),
                "added_tokens": [{"id": i, "token": vocab.get(i)} for i in self.added[:SHOWN]]}


def token_rows(tensor: str, file: str, energy: F64, stored_rows: int) -> TokenRows:
    """The changed rows of one vocabulary matrix, from its per-row ‖ΔW_i‖²."""
    nz = np.flatnonzero(energy > 0)
    order = nz[np.argsort(-energy[nz], kind="stable")][:SHOWN]
    total = float(energy.sum())
    share = float(energy[order].sum()) / total if total > 0 else 0.0
    return TokenRows(tensor, file, int(energy.size), tuple(int(i) for i in order), int(nz.size),
                     tuple(range(int(energy.size), stored_rows)), share)


def report_rows(found: list[TokenRows], vocab: dict[int, str], emit: Emitter) -> JSONValue:
    """The report's rows, and AS523 where only a few tokens' rows were rewritten."""
    max_rows = int(emit.num(C.TOKEN_ROWS, "max_rows"))
    max_share = emit.num(C.TOKEN_ROWS, "max_share")
    out: list[JSONValue] = []
    for t in found:
        rec = t.record(vocab)
        out.append(rec)
        if 0 < t.changed_count <= max_rows and t.changed_count <= max_share * t.rows:
            shown = ", ".join(f"{i} ({vocab.get(i)!r})" for i in t.changed[:8])
            emit.emit(C.TOKEN_ROWS, f"{t.tensor}: only {t.changed_count} of {t.rows} token rows "
                      f"changed: {shown}", file=t.file, tensor=t.tensor, evidence=rec)
    return out
