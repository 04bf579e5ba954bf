"""Untrusted content cannot hurt the bot: attacks performed through the GitHub sandbox over HTTP."""

from __future__ import annotations

import json
import pickle
import re
import time
from pathlib import Path
from typing import Any

import markdown_it
import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from bot.cli.registry_world import MAINTAINER, REGISTRY, RegistryWorld
from tests.bot_harness import wait_until
from tests.policies import policy_text

CANDIDATE = "Shipyard / candidate (churn)"
EVALUATION = "Shipyard / evaluation (churn)"
GATE = "Shipyard / promotion-gate"


def _completed(world: RegistryWorld, number: int, name: str) -> Any:
    return wait_until(
        lambda: (run := world.check_run(number, name)) and run.status == "completed" and run,
        timeout_s=90,
        what=f"{name} to complete",
    )


def _everything_shown(world: RegistryWorld) -> str:
    """Every check run's output and every comment the sandbox holds, as one text."""
    repo = world.sandbox.repo(REGISTRY)
    with world.sandbox.lock:
        runs = [json.dumps(r.output) + (r.details_url or "") for r in repo.check_runs.values()]
        comments = [c.body for c in repo.comments.values()]
    return "\n".join(runs + comments)


# -- 1. a benchmark URI in the policy cannot read the bot's files or reach its network --------


@pytest.fixture
def planted_secret(tmp_path: Path, world: RegistryWorld, monkeypatch: pytest.MonkeyPatch) -> Path:
    # The bot's own environment and a private file hold the webhook secret, as they might.
    monkeypatch.setenv("SHIPYARD_GITHUB_WEBHOOK_SECRET", world.webhook_secret)
    secret = tmp_path / "private" / "secret.csv"
    secret.parent.mkdir()
    secret.write_text(f"customer_id,churned\n{world.webhook_secret},1\n")
    return secret


BENCHMARK_ATTACKS = [
    ("file:///proc/self/environ", "the bot's environment through file://"),
    ("../../../../../../../../../../etc/passwd", "/etc/passwd through dot-dots"),
    ("{secret}", "a private file by its absolute path"),
    ("http://169.254.169.254/latest/meta-data/", "the cloud metadata service"),
    ("http://127.0.0.1:{bot_port}/healthz", "the bot itself on loopback"),
]


@pytest.mark.parametrize(
    "uri",
    [u for u, _ in BENCHMARK_ATTACKS],
    ids=[f"reading {w} is refused" for _, w in BENCHMARK_ATTACKS],
)
def test_a_benchmark_outside_the_operators_roots_is_refused_and_nothing_leaks(
    world: RegistryWorld, planted_secret: Path, uri: str
) -> None:
    world.start_bot()  # started first: the bot's own port is one of the targets
    assert world.bot is not None
    uri = uri.format(secret=planted_secret, bot_port=world.bot.url.rsplit(":", 1)[1])
    world.create_registry(policy_text=policy_text(benchmark={"uri": uri}))
    number = world.open_candidate_pr("candidate_better")
    run = _completed(world, number, EVALUATION)
    assert run.conclusion == "failure"
    summary = run.output["summary"]
    assert "SHIPYARD_BENCHMARK_ROOTS" in summary and "nothing was read" in summary
    gate = _completed(world, number, GATE)
    assert gate.conclusion == "failure"
    shown = _everything_shown(world)
    assert world.webhook_secret not in shown
    assert "root:x:0:0" not in shown


# -- 2. a tiny document cannot exhaust the bot ------------------------------------------------

BILLION_LAUGHS = "\n".join(
    ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    + [
        f"{chr(97 + i)}: &{chr(97 + i)} [" + ",".join([f"*{chr(96 + i)}"] * 9) + "]"
        for i in range(1, 9)
    ]
).encode()


@pytest.fixture
def registry(world: RegistryWorld) -> RegistryWorld:
    world.create_registry(policy_text=policy_text())
    world.start_bot(evaluation_workers=0)
    return world


@pytest.mark.parametrize(
    ("path", "data", "words"),
    [
        ("config.yaml", BILLION_LAUGHS, "config.yaml: line 2: YAML aliases"),
        ("eval_results.json", b"[" * 100_000, "eval_results.json: nested deeper than 32"),
        ("CHANGELOG.md", b"x" * (1024 * 1024 + 1), "CHANGELOG.md: 1,048,577 bytes is over"),
    ],
    ids=[
        "a billion-laughs config.yaml is refused",
        "an eval_results.json nested 100,000 deep is refused",
        "a CHANGELOG over a megabyte is refused",
    ],
)
def test_a_hostile_document_fails_the_candidate_check_quickly(
    registry: RegistryWorld, path: str, data: bytes, words: str
) -> None:
    files = registry.candidate_files("candidate_better")
    files[f"models/churn/{path}"] = data
    started = time.monotonic()
    number = registry.open_candidate_pr("candidate_better", files=files)
    run = _completed(registry, number, CANDIDATE)
    assert time.monotonic() - started < 30
    assert run.conclusion == "failure"
    assert words in run.output["summary"]
    assert "RecursionError" not in _everything_shown(registry)


def test_a_model_directory_with_too_many_files_is_refused_unread(registry: RegistryWorld) -> None:
    files = registry.candidate_files("candidate_better")
    for i in range(1_000):
        files[f"models/churn/extra/{i:04}.txt"] = b"x"
    number = registry.open_candidate_pr("candidate_better", files=files)
    run = _completed(registry, number, CANDIDATE)
    assert run.conclusion == "failure"
    assert "the limit is 1,000; nothing in it was read" in run.output["summary"]
    blob_reads = [r for r in registry.sandbox.requests if "/git/blobs/" in r.path]
    assert len(blob_reads) < 100  # the policy and nothing of the model directory's 1,004 files


# -- 3. unsafe files cannot hide -----------------------------------------------------------


class _Exploit:
    marker: Path

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (open, (str(self.marker), "w"))


def _exploit(marker: Path, protocol: int) -> bytes:
    exploit = _Exploit()
    exploit.marker = marker
    return pickle.dumps(exploit, protocol=protocol)


def _onnx_external_data() -> bytes:
    """A valid model whose training graph keeps a tensor in /proc/self/environ."""
    weight = numpy_helper.from_array(np.array([[1.0], [-1.0]], np.float32), "w")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["p"])],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 2])],
        [helper.make_tensor_value_info("p", TensorProto.FLOAT, [None, 1])],
        [weight],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    hidden = numpy_helper.from_array(np.zeros(2, np.float32), "h")
    hidden.ClearField("raw_data")
    hidden.data_location = TensorProto.EXTERNAL
    entry = hidden.external_data.add()
    entry.key, entry.value = "location", "/proc/self/environ"
    info = model.training_info.add()
    info.initialization.CopyFrom(helper.make_graph([], "init", [], [], [hidden]))
    return model.SerializeToString()


@pytest.mark.parametrize(
    ("path", "make", "words"),
    [
        ("preprocessing/scaler.pkl", lambda m: _exploit(m, 4), "is a Python pickle"),
        ("preprocessing/vocab.json", lambda m: _exploit(m, 0), "is a Python pickle"),
        ("weights/model.onnx", lambda _: _onnx_external_data(), "absolute"),
    ],
    ids=[
        "a pickle beside the weights fails and is never unpickled",
        "a text-protocol pickle renamed to json fails and is never unpickled",
        "an ONNX model with external data in a training graph fails",
    ],
)
def test_unsafe_content_anywhere_in_the_model_directory_fails_the_candidate_check(
    registry: RegistryWorld, tmp_path: Path, path: str, make: Any, words: str
) -> None:
    marker = tmp_path / "pwned"
    files = registry.candidate_files("candidate_better")
    files[f"models/churn/{path}"] = make(marker)
    number = registry.open_candidate_pr("candidate_better", files=files)
    run = _completed(registry, number, CANDIDATE)
    assert run.conclusion == "failure"
    assert words in run.output["summary"]
    assert not marker.exists()


# -- 4. what people write is shown as text, never as markup ---------------------------------

HOSTILE = "![pwn](http://evil/x.png) [click](javascript:alert(1)) @acme/everyone <img src=x>"


def _render(markdown: str) -> str:
    return markdown_it.MarkdownIt("commonmark").enable(["table", "strikethrough"]).render(markdown)


def _assert_inert(markdown: str) -> None:
    html = _render(markdown)
    assert "<img" not in html and 'href="javascript' not in html
    assert 'href="http://evil' not in html
    # GitHub notifies nobody for an @ inside code; outside it a zero-width space follows the @.
    outside_code = re.sub(r"<code>.*?</code>", "", html, flags=re.DOTALL)
    assert "@acme/everyone" not in outside_code
    assert "pwn" in html and "everyone" in html  # the text itself is still shown


@pytest.fixture
def promotion(world: RegistryWorld, tmp_path_factory: pytest.TempPathFactory) -> RegistryWorld:
    world.create_registry(policy_text=policy_text())
    world.start_bot(cache_dir=tmp_path_factory.getbasetemp() / "prediction-cache")
    return world


def _reply(world: RegistryWorld, number: int, body: str, author: str) -> str:
    before = len(world.sandbox.comments_on(REGISTRY, number))
    world.sandbox.add_comment(REGISTRY, number, body, author)
    reply = wait_until(
        lambda: next(
            (
                c
                for c in world.sandbox.comments_on(REGISTRY, number)[before:]
                if c.body.startswith(f"@{author}")
            ),
            None,
        ),
        timeout_s=60,
        what=f"the bot's answer to {body!r}",
    )
    return str(reply.body)


def test_a_hostile_block_reason_is_shown_inert_everywhere(promotion: RegistryWorld) -> None:
    world = promotion
    number = world.open_candidate_pr("candidate_better")
    _completed(world, number, GATE)
    world.sandbox.set_permission(REGISTRY, "drive-by", "read")
    world.sandbox.set_permission(REGISTRY, "oncall", "write")

    refused = _reply(world, number, f"/block {HOSTILE}", "drive-by")
    assert "only people with write access" in refused
    _assert_inert(refused)

    blocked = _reply(world, number, f"/block {HOSTILE} ``` `", "oncall")
    assert "Blocked" in blocked
    _assert_inert(blocked)
    assert "<code>" in _render(blocked)  # the command's own text stays one code span

    approved = _reply(world, number, f"/approve {HOSTILE}", MAINTAINER)  # an approver's note
    assert "Approved" in approved
    _assert_inert(approved)
    by_approver = _reply(world, number, f"/block {HOSTILE}", MAINTAINER)
    assert "Blocked" in by_approver
    _assert_inert(by_approver)

    status = _reply(world, number, "/status", MAINTAINER)
    assert "Blocked by oncall" in status and "Blocked by lead-ml" in status
    assert "approved" in status  # the audit trail, with the note, is shown inert too
    _assert_inert(status)

    gate = _completed(world, number, GATE)
    assert gate.conclusion == "failure"
    _assert_inert(gate.output["summary"])
    report = wait_until(
        lambda: next(
            (
                c.body
                for c in world.sandbox.comments_on(REGISTRY, number)
                if c.body.startswith("<!-- shipyard:pr-report -->") and "Blocked by" in c.body
            ),
            None,
        ),
        timeout_s=60,
        what="the report comment to show the block",
    )
    _assert_inert(report)
