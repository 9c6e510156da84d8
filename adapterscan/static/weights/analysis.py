"""Weight-delta analysis (AS5xx): low-rank statistics, calibration, base-model comparisons.

Flow: the adapter model (formats/: modules, factors, scales) → per-module statistics streamed
one tensor at a time (stats, algorithms, lowrank) → adapter-level distribution → scale-free
rules → z-scores against a calibration bank when one applies (baseline) → with a base model:
relative update, Safe-LoRA cosine (alignment) and trigger-candidate tokens (trigger_tokens).
docs/weights.md.
"""

from __future__ import annotations

import json
import posixpath
from collections.abc import Mapping, Sequence
from concurrent.futures import Executor, Future
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from adapterscan.emit import Emitter
from adapterscan.findings import JSONValue
from adapterscan.static.formats.model import AdapterModel, Algorithm, TensorRef
from adapterscan.static.formats.readers import read_adapters
from adapterscan.static.formats.tensor_reader import TensorReadError
from adapterscan.static.layout import TensorTable
from adapterscan.static.options import WeightOptions
from adapterscan.static.weights import checks as C
from adapterscan.static.weights.alignment import (
    BaseModelError,
    BaseWeights,
    frobenius,
    oriented,
    parse_header,
    safe_lora_cosine,
)
from adapterscan.static.weights.baseline import (
    ADAPTER_STATS,
    MODULE_STATS,
    AdapterSample,
    Bank,
    BankError,
    load_bank,
    module_key,
    zscores,
)
from adapterscan.static.weights.copies import full_copy_rows
from adapterscan.static.weights.coverage import fail_closed
from adapterscan.static.weights.dora import check_magnitudes
from adapterscan.static.weights.ia3 import ScalingResult
from adapterscan.static.weights.lowrank import row_energies
from adapterscan.static.weights.outliers import module_outliers
from adapterscan.static.weights.row_rule import row_concentration
from adapterscan.static.weights.stats import (
    Computed,
    ModuleResult,
    analyze_module,
    compute_pair,
    needs_pair,
    summarize_adapter,
)
from adapterscan.static.weights.tokens import order_candidates, trainable_tokens
from adapterscan.static.weights.trigger_tokens import (
    TokenCandidate,
    candidates_for,
    load_vocab,
    robust_top,
)

AHEAD = 4  # modules whose statistics are computed ahead on the workers
DEFAULT_BANK = Path(__file__).resolve().parents[2] / "reference" / "baseline_bank.json"


@dataclass(frozen=True)
class AdapterStatistics:
    results: tuple[ModuleResult, ...]
    summary: dict[str, JSONValue]
    records: tuple[dict[str, JSONValue], ...]
    others: tuple[TensorRef, ...] = ()
    scaling: tuple[ScalingResult, ...] = ()  # (IA)3 vectors: gains, not a ΔW


def describe(root: Path, headers: Mapping[str, TensorTable],
             config: Mapping[str, JSONValue] | None) -> AdapterModel:
    """The adapter model of safetensors files with one config beside them (tests, the bank)."""
    configs = {} if config is None else {
        posixpath.join(posixpath.dirname(p), "adapter_config.json"): config for p in headers}
    return read_adapters(root, headers, {}, configs)


def compute_statistics(model: AdapterModel, emit: Emitter, *, keep_grams: bool = False,
                       executor: Executor | None = None) -> AdapterStatistics:
    """Per-module statistics and the adapter summary (no calibration, no base model).

    With an `executor`, the modules' factor statistics (Grams: BLAS, GIL released) are computed
    there, as its workers free up from hashing and data scans; findings are still emitted here,
    module by module in order.
    """
    results: list[ModuleResult] = []
    scaling: list[ScalingResult] = []
    modules = model.modules
    todo = iter([i for i, m in enumerate(modules) if needs_pair(m)] if executor else [])
    ahead: dict[int, Future[Computed]] = {}

    def submit_next() -> None:
        i = next(todo, None)
        if i is not None and executor is not None:
            ahead[i] = executor.submit(compute_pair, modules[i], keep_grams)

    for _ in range(AHEAD):  # a bounded window: working memory stays a few modules' worth
        submit_next()
    for i, m in enumerate(modules):
        computed = ahead.pop(i, None)  # popped: a consumed result must not outlive its module
        if computed is not None:
            submit_next()
        r = analyze_module(m, emit, keep_grams=keep_grams, computed=computed)
        if isinstance(r, ModuleResult):
            results.append(r)
        elif isinstance(r, ScalingResult):
            scaling.append(r)
    top_fraction = emit.num(C.LAYER_CONCENTRATION, "top_fraction")
    summary = summarize_adapter(results, top_fraction)
    summary["scaling_modules"] = len(scaling)
    return AdapterStatistics(tuple(results), summary, tuple(r.record() for r in results),
                             model.others, tuple(scaling))


MAX_CONFIG_BYTES = 4 * 1024 * 1024


def adapter_sample(folder: Path, emit: Emitter) -> AdapterSample:
    """Statistics of one trusted adapter folder, for a calibration bank (raises ValueError)."""
    files = sorted(folder.glob("*.safetensors"))
    if not files:
        raise ValueError("no *.safetensors file")
    headers = {f.name: parse_header(f, f.name) for f in files}
    config: Mapping[str, JSONValue] | None = None
    cfg_path = folder / "adapter_config.json"
    if cfg_path.is_file():
        if cfg_path.stat().st_size > MAX_CONFIG_BYTES:
            raise ValueError("adapter_config.json is too large")
        loaded = json.loads(cfg_path.read_text("utf-8"))
        config = loaded if isinstance(loaded, dict) else None
    stats = compute_statistics(describe(folder, headers, config), emit)
    if not stats.results:
        raise ValueError("no LoRA module could be analysed")
    modules = [(module_key(r.module.module_type, r.pair.out_features, r.pair.in_features),
                r.pair.rank, r.values) for r in stats.results]
    adapter = {n: _float(stats.summary.get(n)) for n in ADAPTER_STATS}
    return AdapterSample(source=folder.name, modules=modules, adapter=adapter)


def analyze_weights(root: Path, headers: Mapping[str, TensorTable],
                    config: Mapping[str, JSONValue] | None, emit: Emitter,
                    options: WeightOptions, model: AdapterModel | None = None,
                    executor: Executor | None = None) -> JSONValue:
    """The report part of `weight_analysis`."""
    return weight_analysis(root, headers, config, emit, options, model, executor)[0]


def weight_analysis(root: Path, headers: Mapping[str, TensorTable],
                    config: Mapping[str, JSONValue] | None, emit: Emitter,
                    options: WeightOptions, model: AdapterModel | None = None,
                    executor: Executor | None = None, read_elsewhere: frozenset[str] = frozenset()
                    ) -> tuple[JSONValue, tuple[TokenCandidate, ...]]:
    """Weight analysis of `model` (by default: the safetensors files with `config` beside them):
    the report's summary, and the trigger-candidate tokens (with a base) for the probe.

    Fails closed: a weights file whose tensors no reader recognised, or an adapter of which no
    module could be analysed, is recorded as not analysed (the scan is then incomplete).
    """
    if model is None:
        model = describe(root, headers, config)
    stats = compute_statistics(model, emit, keep_grams=options.base_dir is not None,
                               executor=executor)
    files: JSONValue = [f.summary() for f in model.files]  # type: ignore[misc]
    fail_closed(model, len(stats.results) + len(stats.scaling), emit, read_elsewhere)
    others: list[JSONValue] = [o.info.name for o in stats.others[:50]]
    # Without a base, DoRA magnitudes are checked here; with one, against it in _against_base.
    # Diffusion modules never meet a (causal LM) base.
    lm_mags, other_mags = _magnitudes(model)
    dora: JSONValue = check_magnitudes(
        stats.others, config, None, emit, extra=lm_mags + other_mags) \
        if options.base_dir is None else check_magnitudes([], config, None, emit,
                                                          extra=other_mags)
    tokens: JSONValue = (trainable_tokens(stats.others, config, None, {}, emit)[0]
                         if options.base_dir is None else [])
    scaling: list[JSONValue] = [r.record() for r in stats.scaling]
    if not stats.results and (options.base_dir is None or not stats.others):
        return {"files": files, "modules": scaling, "summary": stats.summary,
                "other_tensors": others, "dora": dora, "trainable_tokens": tokens}, ()
    _layer_rule(stats.summary, emit)
    module_outliers(stats.results, emit)
    triggers: tuple[TokenCandidate, ...] = ()
    row_concentration(stats.results, emit)
    vocab = _vocab_rows(stats.results, emit)
    out: dict[str, JSONValue] = {"summary": stats.summary}
    out["calibration"] = _calibrate(stats, options, emit)
    if options.base_dir is not None:
        base, triggers = _against_base(stats, config, options, emit, lm_mags)
        out["base"] = base
        # Top level too, for readers of the report (the probe gets them typed).
        out["trigger_candidates"] = base.get("trigger_candidates", []) \
            if isinstance(base, dict) else []
        base_dora = base.get("dora", []) if isinstance(base, dict) else []
        if isinstance(dora, list) and isinstance(base_dora, list):
            dora = base_dora + dora
        tokens = base.get("trainable_tokens", []) if isinstance(base, dict) else []
    out["files"] = files
    out["vocab_rows"] = vocab
    out["dora"] = dora
    out["trainable_tokens"] = tokens
    out["other_tensors"] = others
    out["modules"] = [*stats.records, *scaling]
    return out, triggers


def _magnitudes(model: AdapterModel) -> tuple[list[tuple[str, TensorRef]],
                                               list[tuple[str, TensorRef]]]:
    """DoRA magnitudes carried by modules (kohya dora_scale, MLX m): (causal LM, others)."""
    lm: list[tuple[str, TensorRef]] = []
    other: list[tuple[str, TensorRef]] = []
    for m in model.modules:
        if m.magnitude is not None:
            (other if m.component is not None else lm).append((m.target, m.magnitude))
    return lm, other


def _layer_rule(summary: Mapping[str, JSONValue], emit: Emitter) -> None:
    share, layers = summary.get("layer_top_share"), summary.get("layers")
    if not isinstance(share, float) or not isinstance(layers, int):
        return
    if layers >= emit.num(C.LAYER_CONCENTRATION, "min_layers") and \
            share > emit.num(C.LAYER_CONCENTRATION, "max_share"):
        emit.emit(C.LAYER_CONCENTRATION,
                  f"{share:.0%} of the update's energy sits in {summary.get('layer_top_k')} of "
                  f"{layers} adapted layers", evidence={
                      "layer_top_share": share, "layer_top_k": summary.get("layer_top_k"),
                      "layers": layers, "layer_energy": summary.get("layer_energy")})


def _as_list(v: object) -> list[object]:
    return list(v) if isinstance(v, list) else [v]


def _vocab_rows(results: Sequence[ModuleResult], emit: Emitter) -> JSONValue:
    """Energy of ΔW per vocabulary row for embedding and lm_head LoRA modules."""
    top_rows = int(emit.num(C.VOCAB_CONCENTRATION, "top_rows"))
    min_vocab = emit.num(C.VOCAB_CONCENTRATION, "min_vocab")
    out: list[JSONValue] = []
    for res in results:
        m = res.module
        if not res.is_vocab or not _plain_lora(res) or m.a is None or res.zero_b:
            continue
        try:
            if m.embedding:  # rows of ΔW_emb are A's columns
                energies = row_energies(m.read_a(), res.pair.gram_b, False, res.scale.value)
            else:  # lm_head: rows are B's rows
                energies = row_energies(m.read_b(), res.pair.gram_a, True, res.scale.value)
        except (OSError, TensorReadError) as exc:
            emit.skip(m.a.file, f"module {m.name}: cannot re-read for vocabulary rows: {exc}")
            continue
        total = float(energies.sum())
        if total <= 0 or energies.size < min_vocab:
            continue
        top = robust_top(energies, top_rows)
        share = sum(s for _, s, _ in top) / total
        entry: dict[str, JSONValue] = {
            "module": m.name, "vocab": int(energies.size), "top_rows": [i for i, _, _ in top],
            "top_share": share, "top_z": [z for _, _, z in top]}
        out.append(entry)
        if share > emit.num(C.VOCAB_CONCENTRATION, "max_share"):
            emit.emit(C.VOCAB_CONCENTRATION,
                      f"{m.name}: {share:.0%} of the update's energy sits in {len(top)} of "
                      f"{energies.size} vocabulary rows", file=m.a.file, evidence=entry)
    return out


def _plain_lora(res: ModuleResult) -> bool:
    """B·A read straight from the file (no Tucker core): row-level analyses apply."""
    m = res.module
    return m.algorithm is Algorithm.LORA and "mid" not in m.factors and m.a is not None \
        and m.b is not None


def _load_bank(options: WeightOptions, emit: Emitter) -> Bank | None:
    path = options.baseline
    if path is None and options.use_default_baseline and DEFAULT_BANK.is_file():
        path = DEFAULT_BANK
    if path is None:
        return None
    try:
        return load_bank(path)
    except BankError as exc:
        emit.error("weights", f"calibration bank unusable: {exc}", str(path))
        return None


def _calibrate(stats: AdapterStatistics, options: WeightOptions, emit: Emitter) -> JSONValue:
    bank = _load_bank(options, emit)
    if bank is None:
        return {"bank": None, "note": "no calibration bank: only scale-free rules applied"}
    threshold = emit.num(C.BASELINE_OUTLIER, "z")
    min_adapters = int(emit.num(C.BASELINE_OUTLIER, "min_adapters"))
    names = {str(s) for s in _as_list(emit.param(C.BASELINE_OUTLIER, "stats"))}
    scored = unmatched = 0
    for res, rec in zip(stats.results, stats.records, strict=True):
        found = bank.lookup(module_key(res.module.module_type, res.pair.out_features,
                                       res.pair.in_features), res.pair.rank, min_adapters)
        if found is None:
            unmatched += 1
            continue
        scored += 1
        key, ref = found
        z = zscores(ref, res.values, MODULE_STATS)
        rec["z"], rec["bank_key"] = dict(z.items()), key
        flagged = {n: v for n, v in z.items()
                   if n in names and abs(v) >= threshold and ref[n].adapters >= min_adapters}
        if flagged:
            worst = max(flagged, key=lambda n: abs(flagged[n]))
            emit.emit(C.BASELINE_OUTLIER,
                      f"{res.module.name}: {worst} is {flagged[worst]:+.1f} robust SDs from the "
                      f"calibration bank ({ref[worst].count} {key} modules of "
                      f"{ref[worst].adapters} adapters)",
                      file=res.module.file, evidence={
                          "module": res.module.name, "statistic": worst,
                          "value": res.values.get(worst), "z": flagged[worst],
                          "median": ref[worst].median, "mad": ref[worst].mad,
                          "count": ref[worst].count, "adapters": ref[worst].adapters,
                          "bank_key": key, "all_flagged": dict(flagged.items())})
    adapter_z: dict[str, float] = {}
    if unmatched == 0:
        values = {n: _float(stats.summary.get(n)) for n in ADAPTER_STATS}
        adapter_z = zscores(bank.adapter, values, ADAPTER_STATS)
        flagged = {n: v for n, v in adapter_z.items() if n in names and abs(v) >= threshold
                   and bank.adapter[n].adapters >= min_adapters}
        for n, v in flagged.items():
            emit.emit(C.BASELINE_OUTLIER, f"adapter {n} is {v:+.1f} robust SDs from the "
                      "calibration bank", evidence={"module": None, "statistic": n,
                                                    "value": values[n], "z": v,
                                                    "median": bank.adapter[n].median,
                                                    "mad": bank.adapter[n].mad,
                                                    "count": bank.adapter[n].count,
                                                    "adapters": bank.adapter[n].adapters})
    return {"bank": bank.path, "n_adapters": bank.n_adapters, "modules_scored": scored,
            "modules_unmatched": unmatched, "adapter_z": dict(adapter_z.items())}


def _float(v: JSONValue) -> float | None:
    return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else None


def _against_base(stats: AdapterStatistics, config: Mapping[str, JSONValue] | None,
                  options: WeightOptions, emit: Emitter,
                  magnitudes: Sequence[tuple[str, TensorRef]]
                  ) -> tuple[JSONValue, tuple[TokenCandidate, ...]]:
    assert options.base_dir is not None
    try:
        base = BaseWeights.open(options.base_dir)
        unaligned = BaseWeights.open(options.unaligned_dir) if options.unaligned_dir else None
    except (OSError, ValueError, BaseModelError, TensorReadError) as exc:
        emit.error("weights", f"base model unusable: {exc}", str(options.base_dir))
        return None, ()
    max_ratio = emit.num(C.RELATIVE_UPDATE, "max_ratio")
    tau = emit.num(C.SAFE_LORA, "tau")
    fifo = config is not None and config.get("fan_in_fan_out") is True
    missing: list[JSONValue] = []
    cosines: list[JSONValue] = []
    for res, rec in zip(stats.results, stats.records, strict=True):
        m = res.module
        if m.embedding or m.component is not None:  # diffusion modules have no LM base
            continue
        name = base.find(m.target)
        if name is None:
            missing.append(m.target)
            continue
        try:
            stored = base.read(name)
            w = oriented(stored, res.pair.out_features, res.pair.in_features, fifo)
            if w is None:
                missing.append(f"{m.target}: base shape {[stored.rows, stored.cols]}")
                continue
            w_norm = frobenius(w)
            ratio = res.pair.spectrum.fro / w_norm if w_norm > 0 else None
            rec["relative_update"] = ratio
            if ratio is not None and ratio > max_ratio:
                emit.emit(C.RELATIVE_UPDATE, f"{m.name}: ‖ΔW‖/‖W‖ = {ratio:.3g}",
                          file=m.file, evidence={"module": m.name, "ratio": ratio,
                                                 "delta_fro": res.pair.spectrum.fro,
                                                 "base_fro": w_norm})
            # Safe-LoRA needs B's rows in the base's order: GGUF q/k rows are RoPE-permuted.
            if unaligned is None or not _plain_lora(res) or m.permuted_rows:
                continue
            uname = unaligned.find(m.target)
            if uname is None:
                missing.append(f"unaligned:{m.target}")
                continue
            stored_u = unaligned.read(uname)
            wu = oriented(stored_u, w.rows, w.cols, fifo)
            if wu is None:
                missing.append(f"unaligned:{m.target}: shape {[stored_u.rows, stored_u.cols]}")
                continue
            cos = safe_lora_cosine(w, wu, m.read_b().dense(), res.pair.gram_a, res.pair.gram_b)
        except (OSError, TensorReadError) as exc:
            emit.skip(m.file, f"module {m.name}: base comparison failed: {exc}")
            continue
        rec["safe_lora_cosine"] = cos
        cosines.append({"module": m.name, "layer": m.layer, "cosine": cos})
    _safe_lora_rule(cosines, tau, emit)
    if missing:
        emit.skip(str(options.base_dir), f"{len(missing)} adapted modules have no matching base "
                  f"weight (first: {missing[0]})")
    tokens, rewritten = trainable_tokens(stats.others, config, base,
                                         load_vocab(options.base_dir), emit)
    candidates = _triggers(base, stats, config, options, emit, rewritten)
    copies = full_copy_rows(base, stats.others, emit)
    dora = check_magnitudes(stats.others, config, base, emit, extra=magnitudes)
    return {"base_dir": str(options.base_dir), "full_copies": copies, "dora": dora,
            "trainable_tokens": tokens,
            "unaligned_dir": str(options.unaligned_dir) if options.unaligned_dir else None,
            "missing": missing[:50], "safe_lora": cosines,
            "trigger_candidates": [c.to_json() for c in candidates]}, tuple(candidates)


def _safe_lora_rule(cosines: Sequence[JSONValue], tau: float, emit: Emitter) -> None:
    """One AS510 finding per adapter, listing its modules below τ, lowest first."""
    low: list[tuple[float, dict[str, JSONValue]]] = []
    for c in cosines:
        value = c.get("cosine") if isinstance(c, dict) else None
        if isinstance(c, dict) and isinstance(value, float) and value < tau:
            low.append((value, c))
    if not low:
        return
    low.sort(key=lambda item: item[0])
    emit.emit(C.SAFE_LORA, f"{len(low)} of {len(cosines)} modules have a Safe-LoRA cosine below "
              f"τ = {tau:g} (lowest {low[0][0]:.3f} at {low[0][1].get('module')})",
              evidence={"tau": tau, "count": len(low), "modules_compared": len(cosines),
                        "modules": [c for _, c in low[:20]]})


def _triggers(base: BaseWeights, stats: AdapterStatistics,
              config: Mapping[str, JSONValue] | None, options: WeightOptions,
              emit: Emitter, rewritten: Sequence[TokenCandidate]) -> list[TokenCandidate]:
    assert options.base_dir is not None
    modules = [r.module for r in stats.results if not r.zero_b and _plain_lora(r)]
    try:
        cands = candidates_for(base, options.base_dir, modules,
                               top_k=options.trigger_top_k, first_layers=options.trigger_layers)
    except (OSError, TensorReadError) as exc:
        emit.skip(str(options.base_dir), f"trigger-candidate ranking failed: {exc}")
        return list(rewritten)
    cands += _vocab_candidates(stats, options)
    threshold = emit.num(C.TRIGGER_TOKEN, "z")
    top = [c for c in cands if c.z >= threshold]
    if top:
        best = max(top, key=lambda c: c.z)
        emit.emit(C.TRIGGER_TOKEN, f"token {best.token_id} ({best.token!r}) stands out "
                  f"{best.z:.1f} robust SDs in {best.source}",
                  evidence={"candidates": [c.to_json() for c in top[:10]]})
    return order_candidates([*rewritten, *cands])


def _vocab_candidates(stats: AdapterStatistics, options: WeightOptions) -> list[TokenCandidate]:
    """Rows of embedding LoRA updates as candidates too (they rewrite those tokens directly)."""
    assert options.base_dir is not None
    vocab = load_vocab(options.base_dir)
    out: list[TokenCandidate] = []
    for res in stats.results:
        m = res.module
        if not m.embedding or not _plain_lora(res) or res.zero_b:
            continue
        energies = np.sqrt(row_energies(m.read_a(), res.pair.gram_b, False, res.scale.value))
        out += [TokenCandidate(i, vocab.get(i), s, z, "embedding-lora-rows")
                for i, s, z in robust_top(energies, options.trigger_top_k)]
    return out


__all__ = ["DEFAULT_BANK", "AdapterStatistics", "TokenCandidate", "WeightOptions",
           "adapter_sample", "analyze_weights", "compute_statistics", "weight_analysis"]
