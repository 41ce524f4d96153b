"""docs/quickstart.md runs as written: its Python blocks in order, in one namespace."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
QUICKSTART = ROOT / "docs" / "quickstart.md"


def python_blocks(text: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", text, flags=re.DOTALL)


@pytest.mark.slow
def test_quickstart_blocks_run(monkeypatch, capsys):
    monkeypatch.chdir(ROOT)
    blocks = python_blocks(QUICKSTART.read_text())
    assert len(blocks) >= 6  # load, fit, evaluate, forecast, plot, save/load
    namespace: dict = {}
    for number, block in enumerate(blocks, start=1):
        code = compile(block, f"quickstart block {number}", "exec")
        exec(code, namespace)  # noqa: S102 - the page's own code, run as a test
    printed = capsys.readouterr().out
    assert "3270 2000-03-01 2013-03-01 Adj Close" in printed
    assert namespace["model"].scaler_ is not None
    assert namespace["loaded"].bundle_ is not None
