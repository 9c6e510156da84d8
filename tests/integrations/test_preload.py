"""load_adapter / guard_peft on a real PEFT LoRA adapter over a tiny random Llama."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from adapterscan.errors import AdapterRejected
from adapterscan.report import Decision
from tests.provenance.helpers import report_for, signed

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
peft = pytest.importorskip("peft")
pytestmark = pytest.mark.filterwarnings("ignore:.*is_gradient_checkpointing:FutureWarning")


def tiny_model() -> Any:
    torch.set_num_threads(1)
    torch.manual_seed(0)
    cfg = transformers.LlamaConfig(vocab_size=64, hidden_size=32, intermediate_size=64,
                                   num_hidden_layers=2, num_attention_heads=4,
                                   num_key_value_heads=4, max_position_embeddings=64)
    return transformers.LlamaForCausalLM(cfg).eval()


@pytest.fixture(scope="module")
def saved_adapter(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    folder = tmp_path_factory.mktemp("lora") / "adapter"
    model = peft.get_peft_model(tiny_model(), peft.LoraConfig(
        r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], init_lora_weights=False))
    model.save_pretrained(folder)
    state = {k: v.clone() for k, v in peft.get_peft_model_state_dict(model).items()}
    return folder, state


@pytest.fixture
def adapter(tmp_path: Path, saved_adapter: tuple[Path, dict[str, Any]]) -> Path:
    import shutil

    return Path(shutil.copytree(saved_adapter[0], tmp_path / "adapter"))


@pytest.fixture
def key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _att(tmp_path: Path, adapter: Path, key: ec.EllipticCurvePrivateKey,
         decision: Decision = Decision.PASS) -> Path:
    att = tmp_path / "adapter.sigstore.json"
    att.write_bytes(signed(report_for(adapter, decision), key))
    return att


def test_loads_attested_adapter(tmp_path: Path, adapter: Path, key: ec.EllipticCurvePrivateKey,
                                saved_adapter: tuple[Path, dict[str, Any]]) -> None:
    from adapterscan.integrations.preload import load_adapter

    model = load_adapter(tiny_model(), adapter, attestation=_att(tmp_path, adapter, key),
                         trusted_keys=[key.public_key()])
    assert isinstance(model, peft.PeftModel)
    loaded = peft.get_peft_model_state_dict(model)
    assert set(loaded) == set(saved_adapter[1])
    for name, value in saved_adapter[1].items():
        assert torch.equal(loaded[name], value)
    with torch.no_grad():
        model(torch.tensor([[1, 2, 3]]))


def test_trusted_key_as_pem_path(tmp_path: Path, adapter: Path,
                                 key: ec.EllipticCurvePrivateKey) -> None:
    from adapterscan.integrations.preload import load_adapter
    from adapterscan.provenance.keys import write_public_key

    pub = tmp_path / "k.pub"
    write_public_key(pub, key.public_key())
    assert load_adapter(tiny_model(), str(adapter), attestation=_att(tmp_path, adapter, key),
                        trusted_keys=[pub]) is not None


@pytest.mark.parametrize("tamper", ["byte", "extra", "fail_verdict", "wrong_key"])
def test_rejected(tmp_path: Path, adapter: Path, key: ec.EllipticCurvePrivateKey,
                  tamper: str) -> None:
    from adapterscan.integrations.preload import load_adapter

    att = _att(tmp_path, adapter, key, Decision.FAIL if tamper == "fail_verdict"
               else Decision.PASS)
    trusted = [key.public_key()]
    if tamper == "byte":
        f = adapter / "adapter_model.safetensors"
        data = bytearray(f.read_bytes())
        data[-1] ^= 1
        f.write_bytes(bytes(data))
    elif tamper == "extra":
        (adapter / "adapter_model.bin").write_bytes(b"\x80\x04N.")
    elif tamper == "wrong_key":
        trusted = [ec.generate_private_key(ec.SECP256R1()).public_key()]
    with pytest.raises(AdapterRejected) as exc:
        load_adapter(tiny_model(), adapter, attestation=att, trusted_keys=trusted)
    expected = {"byte": "AS702", "extra": "AS703", "fail_verdict": "AS705",
                "wrong_key": "AS701"}[tamper]
    assert any(r.startswith(expected) for r in exc.value.reasons), exc.value.reasons


def test_without_attestation_scans_and_refuses_pickle(tmp_path: Path, adapter: Path) -> None:
    """A pickle that would run os.system is never loaded: the scan rejects it (or, while an
    analyzer is unfinished, the scan is incomplete and fails closed)."""
    from adapterscan.integrations.preload import load_adapter

    (adapter / "adapter_model.safetensors").unlink()
    payload = b"\x80\x04\x95\x1e\x00\x00\x00\x00\x00\x00\x00\x8c\x02os\x8c\x06system\x93\x8c" \
              b"\x08echo pwn\x85R."
    (adapter / "adapter_model.bin").write_bytes(payload)
    with pytest.raises(AdapterRejected) as exc:
        load_adapter(tiny_model(), adapter)
    assert exc.value.report is not None
    assert exc.value.report.verdict.decision is Decision.FAIL or not exc.value.report.complete


def test_loads_from_private_copy_and_guard_restores(tmp_path: Path, adapter: Path,
                                                    key: ec.EllipticCurvePrivateKey) -> None:
    from adapterscan.integrations.preload import guard_peft

    att = _att(tmp_path, adapter, key)
    original = peft.PeftModel.__dict__["from_pretrained"]
    real: Callable[..., Any] = peft.PeftModel.from_pretrained
    with guard_peft(attestation=att, trusted_keys=[key.public_key()]):
        assert peft.PeftModel.__dict__["from_pretrained"] is not original
        model = peft.PeftModel.from_pretrained(tiny_model(), str(adapter))
        with pytest.raises(AdapterRejected):
            (adapter / "extra.txt").write_text("x")
            peft.PeftModel.from_pretrained(tiny_model(), str(adapter))
    assert peft.PeftModel.__dict__["from_pretrained"] is original
    assert peft.PeftModel.from_pretrained == real
    assert isinstance(model, peft.PeftModel)


def _e2e(tmp_path: Path, adapter: Path, base: Any) -> None:
    """scan -> attest (key) -> verify -> load_adapter, with outcomes that follow the real scan."""
    from adapterscan.integrations.preload import load_adapter
    from adapterscan.pipeline import scan
    from adapterscan.provenance.trust import TrustConfig
    from adapterscan.provenance.verify import verify_source

    key = ec.generate_private_key(ec.SECP256R1())
    report = scan(adapter)
    att = tmp_path / f"{adapter.name}.sigstore.json"
    att.write_bytes(signed(report, key))
    acceptable = report.complete and report.verdict.decision is not Decision.FAIL
    result = verify_source(adapter, att.read_bytes(), TrustConfig(keys=(key.public_key(),)))
    assert result.ok is acceptable, [f.message for f in result.findings]
    if acceptable:
        model = load_adapter(base, adapter, attestation=att, trusted_keys=[key.public_key()])
        assert isinstance(model, peft.PeftModel)
    else:
        with pytest.raises(AdapterRejected):
            load_adapter(base, adapter, attestation=att, trusted_keys=[key.public_key()])
        with pytest.raises(AdapterRejected):
            load_adapter(base, adapter)  # and without the attestation: scanned, same answer


def test_end_to_end_generated_adapter(tmp_path: Path, adapter: Path) -> None:
    _e2e(tmp_path, adapter, tiny_model())


@pytest.mark.slow
def test_end_to_end_bundled_examples(tmp_path: Path) -> None:
    """The example adapters shipped in the package, on the bundled reference model."""
    from adapterscan.examples import load_examples, shipped_dir
    from adapterscan.reference import reference_dir

    examples = load_examples(shipped_dir())
    assert examples, "the shipped example set is missing or stale"
    for ex in examples:
        base = transformers.AutoModelForCausalLM.from_pretrained(str(reference_dir()))
        _e2e(tmp_path, ex.path, base)


def test_loader_reads_a_private_verified_copy(tmp_path: Path, adapter: Path,
                                              key: ec.EllipticCurvePrivateKey) -> None:
    import stat

    from adapterscan.integrations.preload import guarded_load

    seen: dict[str, Any] = {}

    def loader(model: Any, path: str, **kw: Any) -> str:
        copy = Path(path)
        seen["path"] = copy
        seen["mode"] = stat.S_IMODE(copy.parent.stat().st_mode)
        seen["same"] = all((copy / f.name).read_bytes() == f.read_bytes()
                           for f in adapter.iterdir())
        seen["kw"] = kw
        return "loaded"

    out = guarded_load(loader, object(), adapter, attestation=_att(tmp_path, adapter, key),
                       trusted_keys=[key.public_key()], policy=None, identity=None, issuer=None,
                       trusted_root=None, scan_options=None, peft_kwargs={"is_trainable": False})
    assert out == "loaded" and seen["same"] and seen["kw"] == {"is_trainable": False}
    assert not str(seen["path"]).startswith(str(adapter)) and seen["mode"] == 0o700
    assert not seen["path"].exists()  # removed once PEFT has the weights in memory


def test_load_from_hub_attested(tmp_path: Path, adapter: Path, key: ec.EllipticCurvePrivateKey,
                                monkeypatch: pytest.MonkeyPatch) -> None:
    from adapterscan.fetch.hub_options import HubOptions
    from adapterscan.integrations.preload import load_adapter
    from tests.hubserver import HubServer

    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf_home"))
    for var in ("HF_HUB_CACHE", "HF_TOKEN", "HF_ENDPOINT"):
        monkeypatch.delenv(var, raising=False)
    files = {p.name: p.read_bytes() for p in adapter.iterdir()}
    att = _att(tmp_path, adapter, key)
    with HubServer() as hub:
        hub.add_repo("acme/lora", files)
        opts = HubOptions(endpoint=hub.url, cache_dir=tmp_path / "cache", timeout_s=10)
        model = load_adapter(tiny_model(), "hf://acme/lora", attestation=att,
                             trusted_keys=[key.public_key()], hub_options=opts)
        assert isinstance(model, peft.PeftModel)
        hub.add_commit("acme/lora", {**files, "adapter_config.json": b"{}"})
        with pytest.raises(AdapterRejected) as exc:
            load_adapter(tiny_model(), "hf://acme/lora", attestation=att,
                         trusted_keys=[key.public_key()], hub_options=opts)
        assert any(r.startswith("AS702") for r in exc.value.reasons)
