"""The GitHub sandbox's issues behave like GitHub's: numbers shared with pull requests, edits,
closing with a reason, the list that holds pull requests too, comments, and GitHub's refusals.

Every answer is checked against GitHub's documented response schema (the `server` fixture).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from githubkit import AppInstallationAuthStrategy, GitHub

from bot.sandbox.github import SandboxServer, SandboxState, generate_app_keypair

APP_ID = 4343
REPO = "acme/registry"
PRIVATE_KEY, PUBLIC_KEY = generate_app_keypair()


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC).replace(microsecond=0)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def state(clock: Clock) -> SandboxState:
    sandbox = SandboxState(app_id=APP_ID, app_public_key_pem=PUBLIC_KEY, clock=clock)
    sandbox.add_installation("acme", installation_id=11)
    sandbox.add_installation("other", installation_id=22)
    sandbox.create_repo(REPO, installation_id=11)
    sandbox.create_repo("other/private", installation_id=22)
    sandbox.commit(REPO, "candidate", {"models/churn/config.yaml": b"task: binary\n"})
    sandbox.open_pull(REPO, "candidate", "main", "New churn model", "alice")  # number 1
    return sandbox


@pytest.fixture(scope="module")
def running_server() -> Iterator[SandboxServer]:
    with SandboxServer(SandboxState(app_id=APP_ID, app_public_key_pem=PUBLIC_KEY)) as running:
        yield running


@pytest.fixture
def server(running_server: SandboxServer, state: SandboxState) -> Iterator[SandboxServer]:
    running_server.attach(state)
    yield running_server
    assert state.response_violations == []  # every answer shaped as GitHub documents it


@pytest.fixture
def api(server: SandboxServer, state: SandboxState) -> Iterator[httpx.Client]:
    token = state.issue_token(11).value
    with httpx.Client(base_url=server.url, headers={"Authorization": f"token {token}"}) as client:
        yield client


def open_issue(api: httpx.Client, title: str = "Drift on churn", **fields: object) -> int:
    answer = api.post(f"/repos/{REPO}/issues", json={"title": title, **fields})
    assert answer.status_code == 201, answer.text
    return int(answer.json()["number"])


def numbers(api: httpx.Client, **params: str) -> list[int]:
    answer = api.get(f"/repos/{REPO}/issues", params=params)
    assert answer.status_code == 200, answer.text
    return [item["number"] for item in answer.json()]


# -- opening and reading -------------------------------------------------------------------------


def test_an_issue_is_opened_by_the_app_bot_with_the_next_number_after_the_pull(
    api: httpx.Client, state: SandboxState
) -> None:
    answer = api.post(
        f"/repos/{REPO}/issues",
        json={"title": "Drift on churn", "body": "PSI 0.31", "labels": ["shipyard-monitoring"]},
    )
    assert answer.status_code == 201
    issue = answer.json()
    assert issue["number"] == 2  # pull request #1 holds number 1
    assert answer.headers["Location"] == issue["url"]
    assert issue["user"]["login"] == "shipyard[bot]" and issue["state"] == "open"
    assert [label["name"] for label in issue["labels"]] == ["shipyard-monitoring"]
    assert issue["html_url"].endswith(f"/{REPO}/issues/2") and "pull_request" not in issue
    again = api.get(f"/repos/{REPO}/issues/2").json()
    assert (again["title"], again["body"], again["id"]) == (
        "Drift on churn",
        "PSI 0.31",
        issue["id"],
    )
    state.open_pull(REPO, "candidate", "main", "Another", "alice")  # numbers stay shared
    assert state.repo(REPO).pulls.keys() == {1, 3}


def test_a_pull_request_read_as_an_issue_carries_its_pull_request_block(
    api: httpx.Client,
) -> None:
    issue = api.get(f"/repos/{REPO}/issues/1").json()
    assert issue["title"] == "New churn model" and issue["user"]["login"] == "alice"
    assert issue["pull_request"]["url"].endswith(f"/repos/{REPO}/pulls/1")
    assert api.get(f"/repos/{REPO}/issues/99").status_code == 404


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        pytest.param({"title": "x" * 257}, "title", id="a title over 256 characters"),
        pytest.param({"title": "t", "body": "x" * 65537}, "body", id="a body over 65536"),
        pytest.param({"title": "  "}, "title", id="a blank title"),
    ],
)
def test_github_refuses_with_422_validation_failed(
    api: httpx.Client, state: SandboxState, fields: dict[str, str], field: str
) -> None:
    answer = api.post(f"/repos/{REPO}/issues", json=fields)
    assert answer.status_code == 422
    assert answer.json()["message"] == "Validation Failed"
    assert answer.json()["errors"][0]["field"] == field
    number = open_issue(api)
    edited = api.patch(f"/repos/{REPO}/issues/{number}", json=fields)
    assert edited.status_code == 422
    assert state.issue(REPO, number).title == "Drift on churn"  # nothing changed
    assert open_issue(api, "x" * 256, body="y" * 65536) > number  # the limits themselves pass


def test_issues_disabled_answer_410_and_another_installation_sees_404(
    api: httpx.Client, server: SandboxServer, state: SandboxState
) -> None:
    number = open_issue(api)
    state.repo(REPO).has_issues = False
    assert api.post(f"/repos/{REPO}/issues", json={"title": "t"}).status_code == 410
    assert api.get(f"/repos/{REPO}/issues").status_code == 410
    assert api.get(f"/repos/{REPO}/issues/{number}").status_code == 410
    assert api.post(f"/repos/{REPO}/issues/1/comments", json={"body": "hi"}).status_code == 201
    assert (
        api.post(f"/repos/{REPO}/issues/{number}/comments", json={"body": "x"}).status_code == 410
    )
    other = {"Authorization": f"token {state.issue_token(22).value}"}
    assert httpx.get(f"{server.url}/repos/{REPO}/issues", headers=other).status_code == 404


# -- editing -------------------------------------------------------------------------------------


def test_an_edit_changes_title_body_and_labels(api: httpx.Client, clock: Clock) -> None:
    number = open_issue(api, body="old", labels=["a"])
    clock.now += timedelta(minutes=5)
    answer = api.patch(
        f"/repos/{REPO}/issues/{number}",
        json={"title": "Drift worse", "body": "new", "labels": ["a", "b"]},
    )
    assert answer.status_code == 200
    issue = api.get(f"/repos/{REPO}/issues/{number}").json()
    assert (issue["title"], issue["body"]) == ("Drift worse", "new")
    assert [label["name"] for label in issue["labels"]] == ["a", "b"]
    assert issue["updated_at"] != issue["created_at"]


def test_closing_records_completed_and_who_then_reopening_records_reopened(
    api: httpx.Client,
) -> None:
    number = open_issue(api)
    closed = api.patch(f"/repos/{REPO}/issues/{number}", json={"state": "closed"}).json()
    assert (closed["state"], closed["state_reason"]) == ("closed", "completed")
    assert closed["closed_at"] is not None and closed["closed_by"]["login"] == "shipyard[bot]"
    reopened = api.patch(f"/repos/{REPO}/issues/{number}", json={"state": "open"}).json()
    assert (reopened["state"], reopened["state_reason"], reopened["closed_at"]) == (
        "open",
        "reopened",
        None,
    )
    not_planned = api.patch(
        f"/repos/{REPO}/issues/{number}", json={"state": "closed", "state_reason": "not_planned"}
    ).json()
    assert not_planned["state_reason"] == "not_planned"
    wrong = api.patch(
        f"/repos/{REPO}/issues/{number}", json={"state": "closed", "state_reason": "reopened"}
    )
    assert wrong.status_code == 422


def test_a_pull_request_is_closed_and_retitled_through_the_issues_api(
    api: httpx.Client, state: SandboxState
) -> None:
    answer = api.patch(f"/repos/{REPO}/issues/1", json={"title": "Renamed", "state": "closed"})
    assert answer.status_code == 200 and "pull_request" in answer.json()
    pull = state.pull(REPO, 1)
    assert (pull.title, pull.state) == ("Renamed", "closed")


# -- the list ------------------------------------------------------------------------------------


def test_the_list_holds_pull_requests_and_filters_like_github(
    api: httpx.Client, state: SandboxState, clock: Clock
) -> None:
    labelled = open_issue(api, labels=["shipyard-monitoring", "churn"])  # 2
    clock.now += timedelta(minutes=1)
    other = open_issue(api, labels=["Shipyard-Monitoring"])  # 3: label names ignore case
    clock.now += timedelta(minutes=1)
    by_alice = state.create_issue(REPO, title="Question", author_login="alice").number  # 4
    clock.now += timedelta(minutes=1)
    api.patch(f"/repos/{REPO}/issues/{other}", json={"state": "closed"})
    listed = api.get(f"/repos/{REPO}/issues").json()
    assert [i["number"] for i in listed] == [by_alice, labelled, 1]  # open, newest first
    assert ["pull_request" in i for i in listed] == [False, False, True]
    assert numbers(api, state="closed") == [other]
    assert numbers(api, state="all", labels="shipyard-monitoring") == [other, labelled]
    assert numbers(api, state="all", labels="shipyard-monitoring,churn") == [labelled]
    assert numbers(api, state="all", creator="shipyard[bot]", direction="asc") == [2, 3]
    assert numbers(api, state="all", sort="updated") == [other, by_alice, labelled, 1]
    api.post(f"/repos/{REPO}/issues/{labelled}/comments", json={"body": "note"})
    assert numbers(api, sort="comments")[0] == labelled
    assert api.get(f"/repos/{REPO}/issues", params={"state": "any"}).status_code == 422


def test_the_list_is_paginated_with_a_link_header(api: httpx.Client) -> None:
    for n in range(4):
        open_issue(api, f"Alert {n}")
    first = api.get(f"/repos/{REPO}/issues", params={"per_page": 2, "direction": "asc"})
    assert [i["number"] for i in first.json()] == [1, 2]
    assert 'rel="next"' in first.headers["Link"] and 'rel="last"' in first.headers["Link"]
    last = api.get(f"/repos/{REPO}/issues", params={"per_page": 2, "page": 3, "direction": "asc"})
    assert [i["number"] for i in last.json()] == [5]
    assert 'rel="next"' not in last.headers["Link"]


# -- comments on plain issues, faults, and a real client ----------------------------------------


def test_comments_on_a_plain_issue_are_posted_listed_and_counted(api: httpx.Client) -> None:
    number = open_issue(api)
    posted = api.post(f"/repos/{REPO}/issues/{number}/comments", json={"body": "Still drifting"})
    assert posted.status_code == 201
    assert posted.json()["html_url"].split("#")[0].endswith(f"/issues/{number}")
    listed = api.get(f"/repos/{REPO}/issues/{number}/comments").json()
    assert [c["body"] for c in listed] == ["Still drifting"]
    assert api.get(f"/repos/{REPO}/issues/{number}").json()["comments"] == 1
    assert api.post(f"/repos/{REPO}/issues/77/comments", json={"body": "x"}).status_code == 404


def test_an_injected_failure_answers_instead_of_the_issue_routes(
    api: httpx.Client, state: SandboxState
) -> None:
    state.inject_failure("POST", r"/issues$", status=502)
    assert api.post(f"/repos/{REPO}/issues", json={"title": "t"}).status_code == 502
    assert state.repo(REPO).issues == {}  # GitHub never saw it
    number = open_issue(api)
    state.inject_failure("PATCH", rf"/issues/{number}$", status=503)
    assert api.patch(f"/repos/{REPO}/issues/{number}", json={"title": "u"}).status_code == 503
    assert api.patch(f"/repos/{REPO}/issues/{number}", json={"title": "u"}).status_code == 200


def test_githubkit_parses_every_issue_answer(server: SandboxServer, state: SandboxState) -> None:
    github = GitHub(AppInstallationAuthStrategy(APP_ID, PRIVATE_KEY, 11), base_url=server.url)
    created = github.rest.issues.create(
        "acme", "registry", title="Drift", body="b", labels=["shipyard-monitoring"]
    ).parsed_data
    got = github.rest.issues.get("acme", "registry", created.number).parsed_data
    assert got.title == "Drift" and got.user is not None and got.user.login == "shipyard[bot]"
    closed = github.rest.issues.update(
        "acme", "registry", created.number, state="closed", state_reason="completed"
    ).parsed_data
    assert (closed.state, closed.state_reason) == ("closed", "completed")
    listed: list[Any] = github.rest.issues.list_for_repo(
        "acme", "registry", state="all"
    ).parsed_data
    assert {i.number for i in listed} == {1, created.number}
    assert state.violations == []
