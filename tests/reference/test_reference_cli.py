"""`adapterscan reference export` writes a loadable folder; `demo` and `examples` are registered."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from adapterscan.cli.app import app


def test_reference_export_cli(tmp_path: Path) -> None:
    res = CliRunner().invoke(app, ["reference", "export", str(tmp_path / "out"), "--unaligned"])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "out" / "model.safetensors").is_file()
    assert (tmp_path / "out" / "tokenizer.json").is_file()


def test_reference_export_cli_refuses_non_empty(tmp_path: Path) -> None:
    (tmp_path / "keep").write_text("x")
    res = CliRunner().invoke(app, ["reference", "export", str(tmp_path)])
    assert res.exit_code == 2


def test_commands_registered() -> None:
    res = CliRunner().invoke(app, ["--help"])
    assert res.exit_code == 0
    for name in ("demo", "examples", "reference"):
        assert name in res.output


def test_demo_table_names_the_version() -> None:
    from adapterscan._version import __version__
    from adapterscan.cli.demo_cmd import _table

    assert f"adapterscan {__version__} demo" in str(_table([]).title)
