"""A monitoring alert has exactly one GitHub issue, kept showing the alert's newest state.

The bot's client talks to the GitHub sandbox over HTTP through tests/fault_proxy.py, with the
bot's real store behind the outbox (SQLite and PostgreSQL). What is asserted is what a person
sees in the registry repository: its issues, read back through the REST API.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from bot.base.clock import ManualClock
from bot.github.api import GitHubApp
from bot.monitoring import alert_issue
from bot.runtime import outbox
from bot.sandbox.github import SandboxServer, SandboxState, generate_app_keypair
from bot.store.db import Store, open_store
from bot.store.models import EffectStatus
from tests.fault_proxy import FaultProxy

APP_ID = 93
REPO = "acme/registry"
KEY = "drift:churn:v7:episode-1"
LABEL = "shipyard-monitoring"
PRIVATE_KEY, PUBLIC_KEY = generate_app_keypair()
TITLE = "churn v7: input drift on `tenure` (PSI 0.31)"
BODY = "Promoted by #1.\n\n| window | PSI |\n| --- | --- |\n| 09:00 | 0.31 |\n"


@dataclass(frozen=True)
class Runtime:
    """What the scheduler hands the effect: a store, a clock, and the App (it knows its bot)."""

    store: Store
    clock: ManualClock
    github: GitHubApp


@dataclass
class World:
    state: SandboxState
    proxy: FaultProxy
    rt: Runtime
    api: httpx.Client  # straight to the sandbox: what a person's client reads
    installation: int

    def show(
        self,
        *,
        title: str = TITLE,
        body: str = BODY,
        closed: bool = False,
        key: str = KEY,
        repo: str = REPO,
        rt: Any = None,
    ) -> outbox.EffectState:
        return alert_issue.show_issue(
            rt or self.rt,
            installation_id=self.installation,
            repo=repo,
            key=key,
            title=title,
            body=body,
            closed=closed,
        )

    def retry_later(self) -> None:
        self.rt.clock.advance(timedelta(minutes=20))  # past the outbox's back-off
        outbox.drain(self.rt)

    def issues(self) -> list[dict[str, Any]]:
        """Every issue of the repository, open or closed, oldest first (pulls left out)."""
        answer = self.api.get(
            f"/repos/{REPO}/issues", params={"state": "all", "direction": "asc", "per_page": 100}
        )
        return [i for i in answer.json() if "pull_request" not in i]

    def only_issue(self) -> dict[str, Any]:
        (issue,) = self.issues()
        return issue

    def writes(self, method: str, pattern: str = "/issues") -> int:
        """How many such writes GitHub carried out (answered or not)."""
        return sum(
            1
            for r in self.state.requests
            if r.method == method
            and r.path.rstrip("0123456789/").endswith(pattern)
            and r.status < 300
        )

    def effect(self, key: str = KEY) -> outbox.EffectState:
        return outbox.state_of(self.rt.store, alert_issue.effect_key(REPO, key))


@pytest.fixture(scope="module")
def servers() -> Iterator[tuple[SandboxServer, FaultProxy]]:
    placeholder = SandboxState(app_id=APP_ID, app_public_key_pem=PUBLIC_KEY)
    with SandboxServer(placeholder) as server, FaultProxy(server.url) as proxy:
        yield server, proxy


def _world(servers: tuple[SandboxServer, FaultProxy], database_url: str) -> Iterator[World]:
    server, proxy = servers
    proxy.rules.clear()
    proxy.faults_injected = 0
    clock = ManualClock(datetime.now(UTC))  # githubkit signs its App JWT with the real time
    state = SandboxState(app_id=APP_ID, app_public_key_pem=PUBLIC_KEY, clock=clock.now)
    installation = state.add_installation("acme")
    state.create_repo(REPO, installation_id=installation)
    state.commit(REPO, "candidate", {"models/churn/config.yaml": b"v: 7\n"})
    state.open_pull(REPO, "candidate", "main", "churn v7", "data-scientist")  # #1
    server.attach(state)
    store = open_store(database_url)
    app = GitHubApp(app_id=APP_ID, private_key=PRIVATE_KEY, api_url=proxy.url, clock=clock)
    token = state.issue_token(installation).value
    with httpx.Client(base_url=server.url, headers={"Authorization": f"token {token}"}) as api:
        yield World(state, proxy, Runtime(store, clock, app), api, installation)
    store.engine.dispose()
    assert state.violations == []  # every request the bot made exists in GitHub's description
    assert state.response_violations == []  # every answer was shaped as GitHub documents


@pytest.fixture
def world(servers: tuple[SandboxServer, FaultProxy], database_url: str) -> Iterator[World]:
    yield from _world(servers, database_url)


@pytest.fixture
def sqlite_world(servers: tuple[SandboxServer, FaultProxy], tmp_path: Any) -> Iterator[World]:
    """For what no database changes (bounding, refusals)."""
    yield from _world(servers, f"sqlite:///{tmp_path / 'shipyard.db'}")


# -- one issue -----------------------------------------------------------------------------------


def test_the_first_call_opens_one_labelled_issue_by_the_bot_and_a_repeat_sends_nothing(
    world: World,
) -> None:
    state = world.show()
    assert state.done
    issue = world.only_issue()
    assert alert_issue.issue_number(state) == issue["number"] == 2  # after pull request #1
    assert state.result["url"] == issue["html_url"]
    assert (issue["title"], issue["state"], issue["user"]["login"]) == (
        TITLE,
        "open",
        "shipyard[bot]",
    )
    assert issue["body"] == BODY + "\n\n" + alert_issue.issue_marker(KEY)
    assert [label["name"] for label in issue["labels"]] == [LABEL]
    sent = len(world.state.requests)
    again = world.show()
    assert again.done and alert_issue.issue_number(again) == issue["number"]
    assert len(world.state.requests) == sent  # identical: nothing sent at all


@pytest.mark.parametrize("fault", ["fail_after", "drop_after"], ids=["502", "lost answer"])
def test_an_issue_opened_whose_answer_was_lost_is_found_not_opened_again(
    world: World, fault: str
) -> None:
    getattr(world.proxy, fault)("POST", r"/issues$")
    world.show()  # in doubt: tried again, inline or later
    world.retry_later()
    assert world.proxy.faults_injected == 1
    issue = world.only_issue()
    assert world.writes("POST") == 1
    assert world.effect().done and alert_issue.issue_number(world.effect()) == issue["number"]


def test_an_outage_leaves_it_pending_and_a_later_try_opens_exactly_one(world: World) -> None:
    outage = world.proxy.fail("POST", r"/issues$", status=503, times=None)
    state = world.show()
    assert state.status is EffectStatus.PENDING and world.issues() == []
    world.proxy.remove(outage)
    world.retry_later()
    assert world.effect().done and len(world.issues()) == 1


def test_an_issue_a_process_opened_before_it_died_is_found_by_its_marker_not_a_copy(
    sqlite_world: World,
) -> None:
    world = sqlite_world
    marker = alert_issue.issue_marker(KEY)
    # A person pasted the marker into an issue of their own: not ours.
    copied = world.state.create_issue(
        REPO, title="me too", body=f"see {marker}", labels=[LABEL], author_login="alice"
    )
    # An earlier process (its store row lost with it) had opened the issue.
    left = world.state.create_issue(
        REPO, title="old title", body=f"old\n\n{marker}", labels=[LABEL]
    )
    state = world.show()
    assert alert_issue.issue_number(state) == left.number
    assert world.writes("POST") == 0
    assert world.state.issue(REPO, left.number).title == TITLE
    assert world.state.issue(REPO, copied.number).title == "me too"


def test_without_the_apps_login_only_a_bots_issue_counts_as_ours(sqlite_world: World) -> None:
    world = sqlite_world
    marker = alert_issue.issue_marker(KEY)
    world.state.create_issue(REPO, title="x", body=marker, labels=[LABEL], author_login="alice")
    local = outbox.Local(
        store=world.rt.store, client=world.rt.github.installation(world.installation)
    )
    state = world.show(rt=local)
    issues = world.issues()
    assert len(issues) == 2 and alert_issue.issue_number(state) == issues[1]["number"]
    assert issues[1]["user"]["login"] == "shipyard[bot]"


def test_two_racing_submits_open_one_issue(world: World) -> None:
    # Two replicas: their own App clients, one store. The POST is held back, so both are in.
    other = Runtime(
        world.rt.store,
        world.rt.clock,
        GitHubApp(
            app_id=APP_ID, private_key=PRIVATE_KEY, api_url=world.proxy.url, clock=world.rt.clock
        ),
    )
    world.proxy.add("POST", r"/issues$", "delay", seconds=0.3)
    start = threading.Barrier(2)
    states: list[outbox.EffectState] = []

    def submit(rt: Runtime, title: str) -> None:
        start.wait()
        states.append(world.show(rt=rt, title=title))

    threads = [
        threading.Thread(target=submit, args=(rt, title))
        for rt, title in ((world.rt, "first"), (other, "second"))
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    world.retry_later()  # whatever the loser recorded is applied by the tick
    issue = world.only_issue()
    assert world.writes("POST") == 1
    assert issue["title"] in ("first", "second")
    assert world.effect().done and alert_issue.issue_number(world.effect()) == issue["number"]


# -- kept up to date ------------------------------------------------------------------------------


def test_an_edit_converges_the_issue_to_the_newest_title_and_body(world: World) -> None:
    number = alert_issue.issue_number(world.show())
    world.show(title="churn v7: drift worse (PSI 0.45)", body="PSI 0.45 now")
    newest = world.show(title="churn v7: drift worse (PSI 0.52)", body="PSI 0.52 now")
    issue = world.only_issue()
    assert alert_issue.issue_number(newest) == issue["number"] == number
    assert issue["title"] == "churn v7: drift worse (PSI 0.52)"
    assert (
        issue["body"].startswith("PSI 0.52 now") and alert_issue.issue_marker(KEY) in issue["body"]
    )
    assert world.writes("POST") == 1


def test_closed_closes_as_completed_and_a_later_open_reopens_the_same_issue(world: World) -> None:
    number = alert_issue.issue_number(world.show())
    closed = world.show(body="Resolved after 3 clean windows.", closed=True)
    issue = world.only_issue()
    assert closed.done and (issue["state"], issue["state_reason"]) == ("closed", "completed")
    reopened = world.show(body="Drift is back.", closed=False)
    issue = world.only_issue()
    assert alert_issue.issue_number(reopened) == issue["number"] == number
    assert (issue["state"], issue["state_reason"]) == ("open", "reopened")
    assert issue["body"].startswith("Drift is back.")


def test_an_edit_answered_502_after_it_was_made_is_applied_once_more_harmlessly(
    sqlite_world: World,
) -> None:
    world = sqlite_world
    world.show()
    world.proxy.fail_after("PATCH", r"/issues/\d+$")
    world.show(title="worse", closed=True)
    world.retry_later()
    issue = world.only_issue()
    assert (issue["title"], issue["state"]) == ("worse", "closed")
    assert world.effect().done and world.writes("POST") == 1


def test_an_alert_over_before_its_issue_was_opened_gets_one_closed_issue(
    sqlite_world: World,
) -> None:
    world = sqlite_world
    state = world.show(closed=True)
    issue = world.only_issue()
    assert state.done and (issue["state"], issue["state_reason"]) == ("closed", "completed")


def test_each_key_has_its_own_issue(sqlite_world: World) -> None:
    world = sqlite_world
    first = alert_issue.issue_number(world.show())
    second = alert_issue.issue_number(world.show(key="drift:churn:v7:episode-2"))
    assert first != second and len(world.issues()) == 2


# -- bounds and refusals ---------------------------------------------------------------------------


def test_a_long_title_and_body_are_cut_to_githubs_limits_with_the_marker_kept(
    sqlite_world: World,
) -> None:
    world = sqlite_world
    state = world.show(title="t" * 300 + "\nsecond line", body="b" * 70000 + "<!-- hide")
    issue = world.only_issue()
    assert state.done and len(issue["title"]) == 256 and "\n" not in issue["title"]
    assert len(issue["body"]) <= 65536
    assert issue["body"].endswith(alert_issue.issue_marker(KEY))
    hidden = world.show(body="a <!-- never closed")
    assert hidden.done and "<!--" not in world.only_issue()["body"].split("\n\n")[0]


@pytest.mark.parametrize(
    ("how", "status", "sentence"),
    [
        pytest.param("repo", 404, alert_issue.REFUSED[404], id="no such repository"),
        pytest.param("disabled", 410, alert_issue.REFUSED[410], id="issues disabled"),
        pytest.param("invalid", 422, alert_issue.REFUSED["other"], id="validation failed"),
        pytest.param("forbidden", 403, alert_issue.REFUSED["forbidden"], id="no permission"),
    ],
)
def test_a_refused_create_fails_with_a_fixed_sentence_and_opens_nothing(
    sqlite_world: World, how: str, status: int, sentence: str
) -> None:
    world = sqlite_world
    repo = "acme/missing" if how == "repo" else REPO
    if how == "disabled":
        world.state.repo(REPO).has_issues = False
    if how in ("invalid", "forbidden"):
        world.proxy.fail("POST", r"/issues$", status=status)
    state = world.show(repo=repo)
    assert state.status is EffectStatus.FAILED
    assert (state.error_status, state.error_message) == (status, sentence)
    assert alert_issue.issue_number(state) is None
    world.state.repo(REPO).has_issues = True
    assert world.issues() == []
    again = world.show(repo=repo)  # the same again: still refused, nothing more sent
    assert again.status is EffectStatus.FAILED


def test_an_issue_deleted_since_is_not_opened_again(sqlite_world: World) -> None:
    world = sqlite_world
    number = alert_issue.issue_number(world.show())
    assert number is not None
    del world.state.repo(REPO).issues[number]
    state = world.show(title="worse")
    assert state.status is EffectStatus.FAILED
    assert state.error_message == alert_issue.REFUSED["gone"]
    assert alert_issue.issue_number(state) == number and world.issues() == []
