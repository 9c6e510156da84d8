"""quiet(): third-party warnings, log records and progress bars hidden inside, state restored."""

from __future__ import annotations

import logging
import sys
import warnings

import pytest

from adapterscan._quiet import VERBOSE_ENV, quiet


def test_warnings_and_library_logging_are_hidden_and_state_restored(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(VERBOSE_ENV, raising=False)
    filters_before = list(warnings.filters)
    disable_before = logging.root.manager.disable
    lib = logging.getLogger("somelib.module")
    lib.addHandler(handler := logging.StreamHandler(sys.stderr))
    try:
        with quiet() as hidden:
            warnings.warn("deprecated thing", FutureWarning, stacklevel=1)
            lib.warning("could not find a config file")
            lib.error("a real error still shows")
        lib.warning("after the block: shown")
    finally:
        lib.removeHandler(handler)
    err = capsys.readouterr().err
    assert "deprecated thing" not in err
    assert "could not find a config file" not in err
    assert "a real error still shows" in err
    assert "after the block: shown" in err
    assert [str(w.message) for w in hidden.warnings] == ["deprecated thing"]
    assert warnings.filters == filters_before
    assert logging.root.manager.disable == disable_before


def test_verbose_hides_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(VERBOSE_ENV, "1")
    with warnings.catch_warnings(record=True) as outside:
        warnings.simplefilter("always")
        with quiet() as hidden:
            warnings.warn("visible", UserWarning, stacklevel=1)
    assert [str(w.message) for w in outside] == ["visible"]
    assert hidden.warnings == []


def test_nested_blocks_restore_the_outer_state(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(VERBOSE_ENV, raising=False)
    with quiet():
        inside = logging.root.manager.disable
        with quiet():
            pass
        assert logging.root.manager.disable == inside
    assert logging.root.manager.disable == logging.NOTSET


def test_progress_bars_switched_off_inside_and_back_on(monkeypatch: pytest.MonkeyPatch) -> None:
    tl = pytest.importorskip("transformers.utils.logging")
    from huggingface_hub import utils as hub
    hub_tqdm = sys.modules["huggingface_hub.utils.tqdm"]

    monkeypatch.delenv(VERBOSE_ENV, raising=False)
    # The session sets HF_HUB_DISABLE_PROGRESS_BARS=1 (conftest), which locks the switch.
    monkeypatch.setattr(hub_tqdm, "HF_HUB_DISABLE_PROGRESS_BARS", None)
    tl.enable_progress_bar()
    try:
        with quiet():
            assert not tl.is_progress_bar_enabled()
            assert hub.are_progress_bars_disabled()
        assert tl.is_progress_bar_enabled()
        assert not hub.are_progress_bars_disabled()
    finally:
        tl.disable_progress_bar()
