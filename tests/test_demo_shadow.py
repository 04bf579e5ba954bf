"""`shipyard demo-shadow` tells its story: one candidate passes shadow and is merged, the
other's shadow catches drifted traffic and fails the gate."""

from __future__ import annotations

import io
from pathlib import Path

from rich.console import Console

from bot.cli.demo_shadow import run_shadow_demo
from tests.world_fixtures import FIXTURES


def test_the_shadow_demo_passes_one_candidate_and_catches_the_other(tmp_path: Path) -> None:
    out = io.StringIO()
    code = run_shadow_demo(
        fixtures=FIXTURES, out_dir=tmp_path, console=Console(file=out, width=200)
    )
    shown = out.getvalue()
    assert code == 0, shown
    assert "PR #1 merged by the bot: True" in shown
    assert "PR #2 gate: failure — Shadow traffic found a problem the benchmark missed" in shown
    assert "Input drift in tenure_months" in shown
    assert "in_progress → success → inactive" in shown
