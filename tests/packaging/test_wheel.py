"""The built wheel, installed the way README.md's "Install" section says, works from outside the
source tree: every command's smoke path, with and without the optional extras.

`python -m build` makes the sdist and builds the wheel from it. The wheel goes into two fresh
virtual environments with the README's own pip commands: one without extras, one with [all].
Every command then runs in a folder outside the checkout, with no PYTHONPATH, HOME and the
caches in that folder and the Hub offline, so nothing can come from the source tree or from a
file the wheel leaves out (rule signatures, reference models, prompt data, example adapters).
Reports are checked against docs/report.schema.json by this process, not by the installed code.

The environments are made once per test run; the whole module takes a few minutes (most of it
pip). PyTorch comes first in the [all] environment as `torch==2.13.0`, the CPU build on this
machine's disk: the README's advice to install the CPU build first, in a form that needs no
index but PyPI (an unpinned torch would be a multi-GB CUDA build).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import tarfile
import time
import urllib.request
import zipfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from adapterscan.extras import EXTRAS
from tests.factories import raw_safetensors, write_adapter

pytestmark = [pytest.mark.slow, pytest.mark.install]

ROOT = Path(__file__).resolve().parents[2]
TORCH = "torch==2.13.0"
# Added to the README's probe command here: the default prompt count and trigger search make it
# a minute or more on 2 cores; this is a smoke path, the probe's results are tested elsewhere.
QUICK_PROBE = ["--max-prompts", "8", "--no-trigger-search"]


def readme_install() -> tuple[list[str], list[str]]:
    """The commands of README.md's "Install" section: (pip install lines, adapterscan lines)."""
    text = (ROOT / "README.md").read_text("utf-8")
    section = text.split("\n## Install\n", 1)[1].split("\n## ", 1)[0]
    lines = [line.split("#", 1)[0].strip()
             for block in re.findall(r"```bash\n(.*?)```", section, re.S)
             for line in block.splitlines()]
    lines = [line for line in lines if line]
    pips = [line for line in lines if line.startswith("pip install ")]
    commands = [line for line in lines if line.startswith("adapterscan ")]
    assert len(pips) + len(commands) == len(lines), lines
    return pips, commands


@dataclass(frozen=True)
class Dist:
    wheel: Path
    sdist: Path
    version: str


@dataclass(frozen=True)
class Venv:
    path: Path
    work: Path  # the folder outside the checkout every command runs in

    @property
    def bin(self) -> Path:
        return self.path / "bin"

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items()
               if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")
               and not k.startswith(("ADAPTERSCAN_", "HF_"))}
        home = self.work / "home"
        env.update(PATH=f"{self.bin}{os.pathsep}{env.get('PATH', '')}", HOME=str(home),
                   XDG_CACHE_HOME=str(home / ".cache"), HF_HOME=str(home / "hf"),
                   HF_HUB_OFFLINE="1", HF_ENDPOINT="http://127.0.0.1:9",
                   HF_HUB_DISABLE_TELEMETRY="1", RAY_USAGE_STATS_ENABLED="0", NO_COLOR="1",
                   COLUMNS="200")
        return env

    def run(self, *args: str | Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(a) for a in args], cwd=self.work, env=self.env(),
                              capture_output=True, text=True, timeout=timeout)

    def adapterscan(self, *args: str | Path, timeout: float = 300
                    ) -> subprocess.CompletedProcess[str]:
        return self.run(self.bin / "adapterscan", *args, timeout=timeout)


def _check(proc: subprocess.CompletedProcess[str], what: str) -> None:
    assert proc.returncode == 0, f"{what} failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"


def _pip_env() -> dict[str, str]:
    """pip keeps the user's cache and configuration; only the source tree is kept out."""
    return {k: v for k, v in os.environ.items()
            if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}


def _make_venv(path: Path, work: Path, dist: Dist, pip_line: str, first: list[str]) -> Venv:
    _check(subprocess.run([sys.executable, "-m", "venv", str(path)], capture_output=True,
                          text=True, timeout=120), "python -m venv")
    args = shlex.split(pip_line)[2:]  # after "pip install"
    # The README installs "adapterscan" from the index; here the same spec names the wheel.
    specs = [re.sub(r"^adapterscan(?=\[|$)", str(dist.wheel), a) for a in args]
    assert specs != args, pip_line
    for step in ([*first], specs):
        if step:
            # --no-compile: the same packages, without byte-compiling all of torch and ray up
            # front (half of pip's CPU time here); Python compiles what is imported.
            _check(subprocess.run([str(path / "bin" / "python"), "-m", "pip", "install", "-q",
                                   "--no-compile", *step], cwd=work, env=_pip_env(),
                                  capture_output=True, text=True, timeout=900),
                   f"pip install {' '.join(step)}")
    return Venv(path, work)


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Dist:
    out = tmp_path_factory.mktemp("dist")
    # No arguments: build the sdist, then the wheel from the unpacked sdist (so the sdist is
    # checked to be complete too).
    _check(subprocess.run([sys.executable, "-m", "build", "--outdir", str(out), str(ROOT)],
                          capture_output=True, text=True, timeout=600, env=_pip_env()),
           "python -m build")
    [wheel] = out.glob("adapterscan-*.whl")
    [sdist] = out.glob("adapterscan-*.tar.gz")
    return Dist(wheel, sdist, wheel.name.split("-")[1])


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Outside the checkout: generated adapters and a batch list."""
    w = tmp_path_factory.mktemp("outside")
    assert not w.resolve().is_relative_to(ROOT)
    write_adapter(w / "adapter", seed=1)
    write_adapter(w / "adapter2", seed=2)
    ref = json.loads((ROOT / "adapterscan" / "reference" / "aligned" / "config.json").read_text())
    write_adapter(w / "for-reference", layers=ref["num_hidden_layers"], hidden=ref["hidden_size"],
                  seed=3)  # fits the bundled model
    hostile = w / "hostile"
    hostile.mkdir()
    # Header length far past the end of the file: a structural finding that rejects.
    (hostile / "adapter_model.safetensors").write_bytes(raw_safetensors(b"{}", header_len=10**9))
    (w / "sources.txt").write_text(f"{w / 'adapter'}\n{hostile}\n")
    for sub in ("home", "core", "all"):
        (w / sub).mkdir()
    return w


@pytest.fixture(scope="module")
def venvs(tmp_path_factory: pytest.TempPathFactory, dist: Dist,
          work: Path) -> Iterator[dict[str, Venv]]:
    """Both environments, installed side by side (pip is mostly one core's work each), and
    removed afterwards (the [all] one is 1.6 GB; pytest keeps its last three temp folders)."""
    root = tmp_path_factory.mktemp("venv")
    [core_line] = [p for p in readme_install()[0] if "[" not in p]
    [all_line] = [p for p in readme_install()[0] if "[all]" in p]
    try:
        with ThreadPoolExecutor(max_workers=2) as pool:
            core = pool.submit(_make_venv, root / "core", work / "core", dist, core_line, [])
            full = pool.submit(_make_venv, root / "all", work / "all", dist, all_line, [TORCH])
            made = {"core": core.result(), "all": full.result()}
        yield made
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def core(venvs: dict[str, Venv]) -> Venv:
    return venvs["core"]


@pytest.fixture(scope="module")
def full(venvs: dict[str, Venv]) -> Venv:
    return venvs["all"]


# --- the distributions -------------------------------------------------------------------------

def test_readme_install_section_is_what_this_test_runs() -> None:
    pips, commands = readme_install()
    assert sorted(pips) == ["pip install 'adapterscan[all]'", "pip install adapterscan"]
    assert commands == ["adapterscan --version", "adapterscan scan path/to/adapter",
                        "adapterscan scan path/to/adapter --base reference", "adapterscan demo"]


def test_sdist_and_wheel_carry_what_the_commands_read(dist: Dist) -> None:
    names = set(zipfile.ZipFile(dist.wheel).namelist())
    # Every tracked file of the package (data included: models, prompts, shipped examples) and
    # every rule signature, under the name the loader looks for.
    tracked = subprocess.run(["git", "ls-files", "adapterscan", "signatures"], cwd=ROOT,
                             capture_output=True, text=True, check=True).stdout.split()
    assert tracked
    wanted = {re.sub(r"^signatures/", "adapterscan/_signatures/", p) for p in tracked}
    assert not wanted - names, sorted(wanted - names)[:20]
    for needed in ("adapterscan/_signatures/schema/rule.schema.json",
                   "adapterscan/reference/aligned/model.safetensors",
                   "adapterscan/reference/unaligned/model.safetensors",
                   "adapterscan/reference/baseline_bank.json",
                   "adapterscan/data/xstest/xstest_prompts.csv", "adapterscan/py.typed"):
        assert needed in names, needed
    assert any(n.startswith("adapterscan/_signatures/rules/") for n in names)
    with tarfile.open(dist.sdist) as tar:
        top = {Path(n).parts[1] for n in tar.getnames() if len(Path(n).parts) > 1}
    assert {"adapterscan", "signatures", "docs", "tests", "pyproject.toml", "README.md"} <= top


# --- without extras ----------------------------------------------------------------------------

def _version_checks(venv: Venv, dist: Dist) -> None:
    res = venv.adapterscan("--version")
    assert (res.returncode, res.stdout) == (0, f"adapterscan {dist.version}\n"), res.stderr
    res = venv.run(venv.bin / "python", "-m", "adapterscan", "--version")
    assert (res.returncode, res.stdout) == (0, f"adapterscan {dist.version}\n"), res.stderr
    res = venv.run(venv.bin / "python", "-c", "import adapterscan; print(adapterscan.__file__)")
    assert Path(res.stdout.strip()).is_relative_to(venv.path), res.stdout  # not the checkout


def _json_report(venv: Venv, dist: Dist, *args: str | Path, code: int = 0) -> dict[str, Any]:
    out = venv.work / "report.json"
    res = venv.adapterscan("scan", *args, "-f", "json", "-o", out)
    assert res.returncode == code, res.stdout + res.stderr
    assert "Traceback" not in res.stderr
    doc: dict[str, Any] = json.loads(out.read_text())
    schema = json.loads((ROOT / "docs" / "report.schema.json").read_text())
    jsonschema.Draft202012Validator(schema).validate(doc)
    assert doc["tool"] == {"name": "adapterscan", "version": dist.version}
    return doc


def test_core_version_and_static_scans(core: Venv, dist: Dist, work: Path) -> None:
    _version_checks(core, dist)
    doc = _json_report(core, dist, work / "adapter")
    assert doc["complete"] is True
    res = core.adapterscan("scan", work / "adapter")  # the README's first scan, as text
    assert res.returncode == 0 and f"adapterscan {dist.version}" in res.stdout, res.stderr
    res = core.adapterscan("scan", work / "adapter", "-f", "sarif")
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["runs"][0]["tool"]["driver"]["version"] == dist.version
    doc = _json_report(core, dist, work / "hostile", code=1)  # the signatures reject it
    assert any(str(f["rule_id"]).startswith("AS2") for f in doc["findings"])


def test_core_rules_keys_signing_and_verify(core: Venv, dist: Dist, work: Path) -> None:
    res = core.adapterscan("rules", "list")
    assert res.returncode == 0 and "AS201" in res.stdout, res.stderr
    assert core.adapterscan("rules", "explain", "AS201").returncode == 0
    keys = core.work / "keys"
    keys.mkdir(exist_ok=True)
    res = core.adapterscan("keygen", "--out-private", keys / "k.pem", "--out-public",
                           keys / "k.pub", "--force")
    assert res.returncode == 0, res.stderr
    res = core.adapterscan("scan", work / "adapter", "-o", core.work / "r.txt", "--sign-key",
                           keys / "k.pem", "--attestation-out", core.work / "a.sigstore.json")
    assert res.returncode == 0, res.stderr
    res = core.adapterscan("verify", work / "adapter", "-a", core.work / "a.sigstore.json",
                           "--key", keys / "k.pub", "-f", "json")
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["ok"] is True and out["tool"]["version"] == dist.version


def test_core_reference_export_baseline_and_local_batch(core: Venv, dist: Dist,
                                                        work: Path) -> None:
    ref = core.work / "reference"
    res = core.adapterscan("reference", "export", ref)
    assert res.returncode == 0 and (ref / "model.safetensors").is_file(), res.stderr
    bank = core.work / "bank.json"
    res = core.adapterscan("baseline", "build", work / "adapter", work / "adapter2",
                           "--out", bank)
    assert res.returncode == 0 and json.loads(bank.read_text())["modules"], res.stderr
    _json_report(core, dist, work / "adapter", "--baseline", bank)
    out = core.work / "batch.jsonl"
    out.unlink(missing_ok=True)
    res = core.adapterscan("batch", work / "sources.txt", "--out", out, "--workers", "1")
    assert res.returncode == 1, res.stdout + res.stderr  # the hostile one is rejected
    assert "Traceback" not in res.stderr
    lines = {d["source"]: d for d in map(json.loads, out.read_text().splitlines())}
    assert lines[str(work / "adapter")]["decision"] != "fail"
    assert lines[str(work / "hostile")]["decision"] == "fail"
    assert {d["tool_version"] for d in lines.values()} == {dist.version}


MISSING = [
    (["demo"], "probe", "adapterscan demo"),
    (["scan", "{work}/for-reference", "--base", "reference"], "probe",
     "adapterscan scan --base"),
    (["examples", "build", "--out", "ex"], "probe", "adapterscan examples build"),
    (["reference", "build", "--out", "ref-build"], "probe", "adapterscan reference build"),
    (["baseline", "reference", "--out", "bank-ref.json"], "probe",
     "adapterscan baseline reference"),
    (["scan", "{work}/adapter", "--attestation-out", "keyless.json"], "sign",
     "adapterscan scan --attestation-out without --sign-key (keyless signing)"),
    (["serve", "--db", "q.db"], "serve", "adapterscan serve"),
    (["batch", "{work}/sources.txt", "--out", "ray.jsonl", "--engine", "ray"], "ray",
     "adapterscan batch --engine ray"),
    (["batch", "{work}/sources.txt", "--out", "probe.jsonl", "--base", "reference"], "probe",
     "adapterscan batch --base"),
]


def test_core_commands_that_need_an_extra_say_which(core: Venv, work: Path) -> None:
    for args, extra, what in MISSING:
        res = core.adapterscan(*(a.replace("{work}", str(work)) for a in args))
        lines = [line for line in (res.stdout + res.stderr).splitlines() if line.strip()]
        assert res.returncode == 2 and len(lines) == 1, (args, res.stdout, res.stderr)
        head, _, missing = lines[0].partition(" (not installed: ")
        assert head == (f"error: {what} needs the {extra} extra: pip install "
                        f"'adapterscan[{extra}]'"), lines
        assert set(missing.rstrip(")").split(", ")) <= set(EXTRAS[extra]), lines
    # Nothing was started or written by the refused commands.
    assert not {"ex", "ref-build", "bank-ref.json", "keyless.json", "q.db", "ray.jsonl",
                "probe.jsonl"} & {p.name for p in core.work.iterdir()}


# --- with [all] ---------------------------------------------------------------------------------

def test_all_probe_scan_against_the_bundled_reference(full: Venv, dist: Dist, work: Path) -> None:
    _version_checks(full, dist)
    doc = _json_report(full, dist, work / "for-reference", "--base", "reference", *QUICK_PROBE)
    assert doc["complete"] is True and doc["base_model"] == "reference"
    probe = doc["results"]["probe"]
    assert isinstance(probe, dict) and probe.get("signals"), probe


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_all_serve_starts_and_its_scan_process_is_ready(full: Venv) -> None:
    port = _free_port()
    env = full.env() | {"ADAPTERSCAN_WEBHOOK_SECRET": "s3cret-webhook-for-the-test"}
    proc = subprocess.Popen([str(full.bin / "adapterscan"), "serve", "--port", str(port),
                             "--db", str(full.work / "admissions.db"), "--workers", "1"],
                            cwd=full.work, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    health: dict[str, object] = {}
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
                    health = json.loads(r.read())
                if health.get("scan_processes") == {"ready": 1, "of": 1}:
                    break
            except OSError:
                pass
            time.sleep(0.5)
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=60)
    assert health.get("ok") is True and health.get("scan_processes") == {"ready": 1, "of": 1}, \
        f"{health}\n{out}\n{err}"
    assert "Traceback" not in err, err


def test_all_batch_on_ray(full: Venv, dist: Dist, work: Path) -> None:
    out = full.work / "ray.jsonl"
    out.unlink(missing_ok=True)
    res = full.adapterscan("batch", work / "sources.txt", "--out", out, "--engine", "ray",
                           "--workers", "1", timeout=600)
    assert res.returncode == 1, res.stdout + res.stderr
    lines = {d["source"]: d for d in map(json.loads, out.read_text().splitlines())}
    assert lines[str(work / "hostile")]["decision"] == "fail"
    assert lines[str(work / "adapter")]["status"] == "ok"
    assert {d["tool_version"] for d in lines.values()} == {dist.version}
