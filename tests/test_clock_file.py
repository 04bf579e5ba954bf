"""Time moved by hand in one process, kept by another: `ManualClock.follow` writes each move to
a clock file (`write_clock_file`), and a gateway started with `--clock-file` logs that time."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.base.clock import ManualClock
from gateway.clock import FileClock, write_clock_file
from tests.gateway_harness import ROOT

START = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)


def test_a_follower_sees_the_time_now_and_every_move_in_order() -> None:
    clock = ManualClock(START)
    seen: list[datetime] = []
    clock.follow(seen.append)
    clock.advance(timedelta(minutes=10))
    clock.sleep(30)
    assert seen == [START, START + timedelta(minutes=10), START + timedelta(minutes=10, seconds=30)]


def test_a_file_clock_reads_the_time_another_process_wrote(tmp_path: Path) -> None:
    path = tmp_path / "clock.txt"
    clock = ManualClock(START)
    clock.follow(lambda now: write_clock_file(path, now))
    reader = FileClock(path)
    assert reader.now() == START
    clock.advance(timedelta(hours=24, minutes=1))
    assert reader.now() == START + timedelta(hours=24, minutes=1)
    assert reader.now().tzinfo == UTC
    assert [p.name for p in tmp_path.iterdir()] == ["clock.txt"]  # no partial files left


def test_a_file_clock_never_falls_back_to_real_time(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        FileClock(tmp_path / "missing.txt").now()
    naive = tmp_path / "naive.txt"
    naive.write_text("2026-11-24T09:00:00")
    with pytest.raises(ValueError, match="no time zone"):
        FileClock(naive).now()


def test_a_gateway_started_with_a_clock_file_it_cannot_read_refuses_to_start(
    tmp_path: Path,
) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "gateway.cli",
            "serve",
            "--store",
            str(tmp_path / "store"),
            "--routing",
            str(tmp_path / "routing.json"),
            "--clock-file",
            str(tmp_path / "missing.txt"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert done.returncode == 1
    assert "the clock file cannot be read" in done.stderr
    assert "Traceback" not in done.stderr
