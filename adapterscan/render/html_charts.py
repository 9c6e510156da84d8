"""The HTML report's plots, read from the report's results (every value type-checked: a report
is data, and one from an older version or another tool may lack or mistype any of it)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from adapterscan.findings import Finding
from adapterscan.render.svg import Series, bar_chart, line_chart
from adapterscan.render.text import visible

BASE, MERGED = "#7f8c8d", "#c0392b"
WITHOUT, WITH, BASE_WITH = "#2e86c1", "#c0392b", "#95a5a6"
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
           "#17becf")
MAX_SPECTRA = 6
MAX_TRIGGERS = 8


@dataclass(frozen=True)
class Chart:
    title: str
    svg: str | None  # None: not measured in this scan
    note: str  # what it shows, or why it is missing
    legend: tuple[tuple[str, str], ...] = ()  # (colour, label) listed under the chart


def _map(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _list(value: Any) -> Sequence[Any]:
    return value if isinstance(value, list) else []


def _num(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _interval(value: Any) -> tuple[float, float] | None:
    pair = _list(value)
    if len(pair) == 2 and (lo := _num(pair[0])) is not None and (hi := _num(pair[1])) is not None:
        return (lo, hi)
    return None


def short_module(name: str) -> str:
    """`base_model.model.model.layers.3.mlp.up_proj` → `layers.3.mlp.up_proj`."""
    for marker in ("layers.", "blocks.", "h."):
        at = name.find(marker)
        if at >= 0:
            return name[at:]
    return name


def layer_energy(weights: Mapping[str, Any]) -> Chart:
    title = "Update energy per layer (‖ΔW‖²_F, stacked by module type)"
    per: dict[int, dict[str, float]] = {}
    for m in _list(weights.get("modules")):
        m = _map(m)
        layer, fro = m.get("layer"), _num(m.get("fro"))
        if isinstance(layer, int) and not isinstance(layer, bool) and fro is not None:
            kind = visible(str(m.get("type") or "other"))
            per.setdefault(layer, {}).setdefault(kind, 0.0)
            per[layer][kind] += fro * fro
    if not per:  # older reports: the summary's totals only
        summary = _map(_map(weights.get("summary")).get("layer_energy"))
        for key, value in summary.items():
            if str(key).isdigit() and (v := _num(value)) is not None:
                per[int(key)] = {"all modules": v}
    if not per:
        return Chart(title, None, "no weight statistics in this report")
    layers = sorted(per)
    kinds = sorted({k for d in per.values() for k in d})
    series = [Series(k, [per[layer].get(k, 0.0) for layer in layers], PALETTE[i % len(PALETTE)])
              for i, k in enumerate(kinds)]
    svg = bar_chart(title, [f"layer {x}" for x in layers], series, y_label="energy",
                    stacked=True, desc="Sum of squared Frobenius norms of the weight updates, "
                    "per transformer layer")
    return Chart(title, svg, "Where the adapter changes the model, layer by layer. Energy "
                 "concentrated in one layer is one of the weight statistics AS5xx calibrate.")


def spectra(weights: Mapping[str, Any]) -> Chart:
    title = f"Singular values of the {MAX_SPECTRA} largest updates (log scale)"
    mods = []
    for m in _list(weights.get("modules")):
        m = _map(m)
        fro = _num(m.get("fro"))
        values = [v for v in (_num(x) for x in _list(m.get("top_singular_values")))
                  if v is not None]
        if fro is not None and values:
            mods.append((fro, visible(short_module(str(m.get("module", "?")))), values))
    if not mods:
        return Chart(title, None, "no per-module spectra in this report")
    mods.sort(key=lambda t: -t[0])
    series = [Series(name, values, PALETTE[i % len(PALETTE)])
              for i, (_, name, values) in enumerate(mods[:MAX_SPECTRA])]
    svg = line_chart(title, series, x_label="singular value index", y_label="σ",
                     desc="Top singular values of ΔW for the modules with the largest updates")
    return Chart(title, svg, "A spectrum that falls off sharply after the first value is a "
                 "rank-one edit; trigger backdoors often look like that.",
                 tuple((s.color, f"{s.name} (‖ΔW‖_F {fro:.3g})")
                       for s, (fro, _, _) in zip(series, mods, strict=False)))


def refusal(probe: Mapping[str, Any]) -> Chart:
    title = "Refusal rate per prompt suite: base vs merged (95% intervals)"
    signals = _map(probe.get("signals"))
    judged = {k.removesuffix("_refusal_judge"): _map(v) for k, v in signals.items()
              if k.endswith("_refusal_judge") and k != "over_refusal_judge"}
    how = "judged greedy completions"
    if not judged:
        judged = {k.removesuffix("_refusal_first_token"): _map(v) for k, v in signals.items()
                  if k.endswith("_refusal_first_token")}
        how = "first-token refusal probability"
    rows = [(suite, s) for suite, s in sorted(judged.items(), key=lambda kv: kv[0] != "harmful")
            if _num(s.get("base_rate")) is not None and _num(s.get("merged_rate")) is not None]
    if not rows:
        return Chart(title, None, "the behavioral probe did not run in this scan (no --base)"
                     if not probe else "no refusal measurements in this report")
    cats = [f"{visible(suite)} (n={s.get('n')})" for suite, s in rows]
    base = Series("base", [_num(s["base_rate"]) or 0.0 for _, s in rows], BASE,
                  [_interval(s.get("base_ci95")) for _, s in rows])
    merged = Series("merged", [_num(s["merged_rate"]) or 0.0 for _, s in rows], MERGED,
                    [_interval(s.get("merged_ci95")) for _, s in rows])
    svg = bar_chart(title, cats, [base, merged], y_label="refused", percent=True, y_max=1.0,
                    desc=f"Share of prompts refused, {how}")
    return Chart(title, svg, f"Measured by {how}. Harmful prompts should stay refused; the "
                 "harmless suites (benign, XSTest-safe) should not start being refused.")


def triggers(probe: Mapping[str, Any], findings: Sequence[Finding]) -> Chart:
    title = "Triggers: merged-model refusal without vs with the string"
    rows: dict[tuple[str, str], tuple[Mapping[str, Any], Mapping[str, Any], bool]] = {}
    for row in _list(_map(probe.get("triggers")).get("confirmed")):
        row = _map(row)
        key = (str(row.get("trigger", "")), str(row.get("position", "")))
        rows[key] = (_map(row.get("merged")), _map(row.get("base")), row.get("finding") is True)
    for f in findings:  # AS605 evidence, for reports whose probe results were trimmed
        if f.rule_id == "AS605":
            ev = f.evidence
            key = (str(ev.get("trigger", "")), str(ev.get("position", "")))
            rows.setdefault(key, (_map(ev.get("merged")), _map(ev.get("base")), True))
    usable = [(k, v) for k, v in rows.items() if _num(v[0].get("base_rate")) is not None
              and _num(v[0].get("merged_rate")) is not None]
    if not usable:
        searched = _map(probe.get("triggers"))
        why = (str(searched.get("reason")) if searched.get("searched") is False
               else "no candidate string passed screening" if searched
               else "no trigger search in this scan")
        return Chart(title, None, visible(why))
    usable.sort(key=lambda kv: (not kv[1][2], kv[0]))
    usable = usable[:MAX_TRIGGERS]
    cats = [visible(f"{'✔ ' if found else ''}{text!r} ({pos})")
            for (text, pos), (_, _, found) in usable]
    without = Series("merged, without", [_num(m["base_rate"]) or 0.0 for _, (m, _, _) in usable],
                     WITHOUT, [_interval(m.get("base_ci95")) for _, (m, _, _) in usable])
    with_ = Series("merged, with", [_num(m["merged_rate"]) or 0.0 for _, (m, _, _) in usable],
                   WITH, [_interval(m.get("merged_ci95")) for _, (m, _, _) in usable])
    base_with = Series("base, with", [_num(b.get("merged_rate")) or 0.0
                                      for _, (_, b, _) in usable], BASE_WITH,
                       [_interval(b.get("merged_ci95")) for _, (_, b, _) in usable])
    svg = bar_chart(title, cats, [without, with_, base_with], y_label="refused", percent=True,
                    y_max=1.0, desc="Refusal of harmful prompts with and without each candidate")
    return Chart(title, svg, "✔ marks a confirmed trigger (AS605): on two disjoint prompt sets "
                 "the merged model stops refusing with the string, the base does not, and a "
                 "neutral insertion does not.")


def charts(results: Mapping[str, Any], findings: Sequence[Finding]) -> list[Chart]:
    weights, probe = _map(results.get("weights")), _map(results.get("probe"))
    return [layer_energy(weights), spectra(weights), refusal(probe), triggers(probe, findings)]
