"""The GitHub Action (action.yml) and the pre-commit hook (.pre-commit-hooks.yaml), run the way
GitHub and pre-commit run them: the files are parsed, and their commands run through bash (the
Action's `run:` steps, with `${{ ... }}` expressions filled in from the inputs, as the runner
does) or as an argv (the hook's entry, its args and the staged file names that match `files`),
against fixture adapters and the test Hub. Steps that `uses:` other actions are not run."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests import factories
from tests.fetch.conftest import adapter_files
from tests.hostile_factories import global_p0
from tests.hubserver import HubServer

ROOT = Path(__file__).resolve().parents[2]
BIN = str(Path(sys.executable).parent)  # where `adapterscan` and `python` live
EXPR = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")


class Job:
    """A GitHub job running only this composite action, one step after another."""

    def __init__(self, inputs: dict[str, str], workdir: Path, env: dict[str, str]) -> None:
        self.action = yaml.safe_load((ROOT / "action.yml").read_text())
        declared = self.action["inputs"]
        unknown = set(inputs) - set(declared)
        assert not unknown, f"not inputs of action.yml: {unknown}"
        self.inputs = {k: str(v.get("default", "")) for k, v in declared.items()} | inputs
        self.workdir, self.env = workdir, env
        self.outputs: dict[str, dict[str, str]] = {}
        self.summary = workdir.parent / "summary.md"
        self.log: list[tuple[str, int, str]] = []

    def value(self, name: str) -> str:
        if name.startswith("inputs."):
            return self.inputs[name.removeprefix("inputs.")]
        if name == "github.action_path":
            return str(ROOT)
        step, _, key = name.removeprefix("steps.").partition(".outputs.")
        return self.outputs.get(step, {}).get(key, "")

    def fill(self, text: str) -> str:
        return EXPR.sub(lambda m: self.value(m.group(1)), text)

    def condition(self, expr: str) -> bool:
        """The `if:` expressions action.yml uses: comparisons, &&, always()."""
        py = re.sub(r"\b(inputs|steps)\.[\w.-]+", lambda m: repr(self.value(m.group(0))),
                    expr).replace("always()", "True").replace("&&", " and ").replace("||", " or ")
        return bool(eval(py, {"__builtins__": {}}))  # our own file's expressions only

    def run(self) -> int:
        """Run the steps; the job's exit code (the first failing step's, as on GitHub)."""
        for i, step in enumerate(self.action["runs"]["steps"]):
            if "if" in step and not self.condition(step["if"]):
                continue
            if "uses" in step:
                self.log.append((step["uses"], 0, "not run here"))
                continue
            assert step["shell"] == "bash"
            script = self.workdir.parent / f"step{i}.sh"
            script.write_text(self.fill(step["run"]))
            out = self.workdir.parent / f"out{i}"
            out.write_text("")
            env = {**os.environ, **self.env, "PATH": BIN + os.pathsep + os.environ["PATH"],
                   "GITHUB_OUTPUT": str(out), "GITHUB_STEP_SUMMARY": str(self.summary),
                   "RUNNER_TEMP": str(self.workdir.parent)}
            env |= {k: self.fill(str(v)) for k, v in step.get("env", {}).items()}
            # What GitHub runs for `shell: bash`.
            proc = subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail",
                                   str(script)], cwd=self.workdir, env=env, text=True,
                                  capture_output=True, timeout=900, check=False)
            self.log.append((step.get("name", step.get("id", "")), proc.returncode,
                             proc.stdout + proc.stderr))
            pairs = [line.split("=", 1) for line in out.read_text().splitlines() if "=" in line]
            if "id" in step:
                self.outputs[step["id"]] = dict(pairs)
            if proc.returncode != 0:
                return proc.returncode
        return 0

    def text(self) -> str:
        return "\n".join(f"--- {name} (exit {code})\n{out}" for name, code, out in self.log)


@pytest.fixture
def hub() -> Iterator[HubServer]:
    with HubServer() as server:
        yield server


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A checkout with a clean adapter and one that ships a code-executing pickle."""
    root = tmp_path / "checkout"
    factories.write_adapter(root / "adapters" / "clean")
    bad = factories.write_adapter(root / "adapters" / "bad")
    (bad / "training_args.bin").write_bytes(global_p0("os", "system", "echo pwned"))
    return root


def sarif(path: Path) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(path.read_text())
    return doc


def test_action_scans_folders_and_a_hub_repo_writes_sarif_and_fails_on_policy(
        repo: Path, hub: HubServer) -> None:
    sha = hub.add_repo("acme/lora", adapter_files())
    job = Job({"targets": "adapters/clean adapters/bad\nhf://acme/lora", "endpoint": hub.url,
               "install": "false", "setup-python": "false", "upload-sarif": "true"}, repo,
              {"HF_HOME": str(repo.parent / "hf")})
    code = job.run()
    assert code == 1, job.text()  # the enforce step fails the job on the rejection
    assert job.outputs["scan"]["exit-code"] == "1"
    assert ("github/codeql-action/upload-sarif@v3", 0, "not run here") in job.log
    doc = sarif(repo / "adapterscan.sarif")
    runs = doc["runs"]
    assert [r["automationDetails"]["id"] for r in runs] == [
        "adapterscan/adapters/clean/", "adapterscan/adapters/bad/",
        "adapterscan/hf://acme/lora/"]
    assert runs[2]["properties"]["revision"] == sha
    bad = [r for r in runs[1]["results"] if r["ruleId"] == "AS430"]
    assert bad, runs[1]["results"]
    uri = bad[0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
    assert uri == "adapters/bad/training_args.bin"  # repository-relative: alerts find the file
    assert (repo / uri).is_file()
    summary = job.summary.read_text()
    assert "| `adapters/bad` | rejected by policy |" in summary
    assert "| `adapters/clean` | pass |" in summary


def test_action_reports_only_when_fail_on_policy_is_off(repo: Path) -> None:
    job = Job({"targets": "adapters/bad", "fail-on-policy": "false", "install": "false",
               "setup-python": "false"}, repo, {})
    assert job.run() == 0, job.text()
    assert job.outputs["scan"]["exit-code"] == "1"
    assert "rejected by the policy (fail-on-policy is off)" in job.text()
    assert sarif(repo / "adapterscan.sarif")["runs"][0]["results"]


def test_action_fails_closed_on_a_target_it_cannot_scan(repo: Path) -> None:
    job = Job({"targets": "adapters/clean no-such-folder", "install": "false",
               "setup-python": "false", "fail-on-policy": "false"}, repo, {})
    assert job.run() == 2, job.text()
    assert "| `no-such-folder` | error (exit 2) |" in job.summary.read_text()


def test_action_install_step_installs_this_checkout_with_its_extras(repo: Path) -> None:
    """The install step's pip commands, run for real in pip's dry-run mode, offline: they name
    this checkout with the probe extra (implied by a base) and CPU torch."""
    job = Job({"targets": "adapters/clean", "base": "reference", "extras": "sign",
               "setup-python": "false"}, repo,
              {"PIP_DRY_RUN": "1", "PIP_NO_INDEX": "1", "PIP_NO_BUILD_ISOLATION": "0"})
    job.action["runs"]["steps"] = [s for s in job.action["runs"]["steps"]
                                   if s.get("name") == "Install adapterscan"]
    assert job.run() == 0, job.text()
    log = job.text()
    assert "Would install adapterscan-" in log
    assert "does not provide the extra" not in log
    # The extras resolved: sign (sigstore) as asked, probe (peft) because a base was given.
    assert "from sigstore" in log or "sigstore>=" in log
    assert "peft>=" in log
    script = (repo.parent / "step0.sh").read_text()
    assert 'spec="${INPUT_PACKAGE:-$ACTION_PATH}"' in script


# -- pre-commit -----------------------------------------------------------------------------------

def staged(root: Path) -> list[str]:
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    subprocess.run(["git", "-C", str(root), "add", "-A"], check=True)
    out = subprocess.run(["git", "-C", str(root), "diff", "--cached", "--name-only", "-z"],
                         check=True, capture_output=True).stdout.decode()
    return [p for p in out.split("\0") if p]


def run_hook(root: Path, files: list[str], *args: str) -> subprocess.CompletedProcess[str]:
    """What pre-commit does: keep the files its `files` pattern matches, then run
    entry + args + file names from the repository root."""
    hooks = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
    hook = next(h for h in hooks if h["id"] == "adapterscan")
    assert hook["language"] == "python" and hook.get("pass_filenames", True)
    matched = [f for f in files if re.search(hook["files"], f)]
    env = {**os.environ, "PATH": BIN + os.pathsep + os.environ["PATH"]}
    return subprocess.run([*shlex.split(hook["entry"]), *hook.get("args", []), *args, *matched],
                          cwd=root, env=env, text=True, capture_output=True, timeout=600,
                          check=False)


def test_hook_scans_each_adapter_folder_of_a_commit(repo: Path) -> None:
    (repo / "README.md").write_text("not an adapter file")
    factories.write_adapter(repo / "adapters" / "clean" / "checkpoint-10")
    files = staged(repo)
    assert "README.md" in files
    res = run_hook(repo, files)
    assert res.returncode == 1, res.stdout + res.stderr
    out = res.stdout
    # One report per adapter folder; the checkpoint inside adapters/clean is read by that scan.
    assert "\nadapters/bad (3 changed files)\n" in "\n" + out, out
    assert "\nadapters/clean (4 changed files)\n" in out, out
    assert out.count("verdict:") == 2
    assert "AS430" in out and "checkpoint-10/adapter_co" in out
    # Only the checkpoint changed: its own folder (it has its own adapter_config.json).
    only = run_hook(repo, [f for f in files if "checkpoint-10/" in f])
    assert only.returncode == 0, only.stdout
    assert only.stdout.startswith("adapters/clean/checkpoint-10 (2 changed files)")


def test_hook_passes_a_clean_commit_and_honours_args(repo: Path) -> None:
    files = [f for f in staged(repo) if f.startswith("adapters/clean/")]
    res = run_hook(repo, files)
    assert res.returncode == 0, res.stdout + res.stderr
    assert res.stdout.count("verdict:") == 1
    bad = [f for f in staged(repo) if f.startswith("adapters/bad/")]
    assert run_hook(repo, bad, "--exit-zero").returncode == 0


def test_hook_file_pattern_selects_adapter_files_only() -> None:
    hooks = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
    pattern = hooks[0]["files"]
    picked = ["adapter_config.json", "a/adapter_model.safetensors", "x/lora.gguf",
              "y/training_args.bin", "adapters.safetensors", "z/optimizer.pt"]
    ignored = ["README.md", "config.json", "a/adapter_config.json.bak", "src/model.py"]
    assert all(re.search(pattern, p) for p in picked)
    assert not any(re.search(pattern, p) for p in ignored)
