"""The GitHub sandbox behaves like the part of GitHub the bot uses, and only that part."""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from fastapi.routing import APIRoute
from githubkit import AppInstallationAuthStrategy, GitHub
from githubkit.webhooks import parse_obj

from bot.sandbox.github import (
    SandboxError,
    SandboxServer,
    SandboxState,
    generate_app_keypair,
    iter_webhook_examples,
    sign_webhook,
)
from bot.sandbox.github.app import REST_ROUTERS
from bot.sandbox.github.git_objects import blob_sha
from bot.sandbox.github.lfs import LFS_MEDIA_TYPE
from bot.sandbox.github.openapi import DEFAULT_SUBSET_PATH, load_subset, template_of
from bot.sandbox.github.webhooks import build_event
from fixtures.github.extract_openapi import OPERATIONS
from tests.sandbox_receiver import WebhookReceiver

APP_ID = 4242
REPO = "acme/registry"
PRIVATE_KEY, PUBLIC_KEY = generate_app_keypair()
OTHER_PRIVATE_KEY, _ = generate_app_keypair()


class FakeClock:
    """A clock tests move by hand."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


def app_jwt(
    clock: FakeClock,
    *,
    key: str = PRIVATE_KEY,
    iss: str = str(APP_ID),
    lifetime: timedelta = timedelta(minutes=9),
) -> str:
    issued = clock.now - timedelta(seconds=30)
    return jwt.encode(
        {"iss": iss, "iat": int(issued.timestamp()), "exp": int((issued + lifetime).timestamp())},
        key,
        algorithm="RS256",
    )


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def state(clock: FakeClock) -> SandboxState:
    sandbox = SandboxState(app_id=APP_ID, app_public_key_pem=PUBLIC_KEY, clock=clock)
    installation = sandbox.add_installation("acme", installation_id=11)
    sandbox.add_installation("other", installation_id=22)
    sandbox.create_repo(
        REPO,
        installation_id=installation,
        files={"README.md": b"hello\n", "models/churn/config.yaml": b"task: binary\n"},
    )
    sandbox.create_repo("other/private", installation_id=22)
    sandbox.commit(REPO, "candidate", {"models/churn/config.yaml": b"task: binary\nv: 2\n"})
    sandbox.open_pull(REPO, "candidate", "main", "New churn model", "alice")
    return sandbox


@pytest.fixture(scope="module")
def running_server() -> Iterator[SandboxServer]:
    placeholder = SandboxState(app_id=APP_ID, app_public_key_pem=PUBLIC_KEY)
    with SandboxServer(placeholder) as running:
        yield running


@pytest.fixture
def server(running_server: SandboxServer, state: SandboxState) -> Iterator[SandboxServer]:
    running_server.attach(state)
    yield running_server
    # Every response the sandbox produced in the test must match GitHub's documented schema.
    assert state.response_violations == []


@pytest.fixture
def api(server: SandboxServer, state: SandboxState) -> Iterator[httpx.Client]:
    token = state.issue_token(11).value
    with httpx.Client(base_url=server.url, headers={"Authorization": f"token {token}"}) as client:
        yield client


def head_sha(state: SandboxState, number: int = 1) -> str:
    return state.pull(REPO, number).head_sha


# -- the subset --------------------------------------------------------------------------------


def test_every_rest_route_served_exists_with_its_method_in_the_openapi_subset() -> None:
    subset = load_subset()
    served = set()
    routes = [route for router in REST_ROUTERS for route in router.routes]
    for route in routes:
        assert isinstance(route, APIRoute)
        for method in route.methods or set():
            assert subset.has(method, template_of(route.path)), (method, route.path)
            served.add((method.lower(), template_of(route.path)))
    assert served == {(op.method, op.path) for op in subset.operations()}


def test_subset_is_small_and_comes_from_the_pinned_openapi_version() -> None:
    assert DEFAULT_SUBSET_PATH.stat().st_size < 2 * 1024 * 1024
    assert load_subset().version == "23.0.2"


def test_subset_holds_exactly_the_operations_the_bot_uses() -> None:
    document = json.loads(DEFAULT_SUBSET_PATH.read_text())
    held = {(method, path) for path, item in document["paths"].items() for method in item}
    assert held == set(OPERATIONS) and len(held) == 37


def test_a_repository_names_its_default_branch(api: httpx.Client) -> None:
    body = api.get(f"/repos/{REPO}").json()
    assert (body["full_name"], body["default_branch"]) == (REPO, "main")


def test_a_pull_lists_at_most_the_files_github_would(
    api: httpx.Client, state: SandboxState
) -> None:
    state.commit(REPO, "candidate", {f"models/churn/f{i}.txt": b"x" for i in range(4)})
    state.pull(REPO, 1).head_sha = state.repo(REPO).branches["candidate"]
    state.max_listed_pull_files = 3
    listed = api.get(f"/repos/{REPO}/pulls/1/files", params={"per_page": 100}).json()
    assert len(listed) == 3
    assert api.get(f"/repos/{REPO}/pulls/1").json()["changed_files"] == 5


# -- git objects -------------------------------------------------------------------------------


def test_blob_ids_are_computed_like_git() -> None:
    assert blob_sha(b"hello\n") == "ce013625030ba8dba906f756967f9e9ca394464a"


def test_commit_tree_ids_match_what_git_itself_computes(
    state: SandboxState, tmp_path: Path
) -> None:
    files = {"a.txt": b"a\n", "dir/b.txt": b"b\n", "dir/sub/c.bin": bytes(range(256)), "d-e": b""}
    sha = state.commit(REPO, "main", files)
    repo = state.repo(REPO)
    expected = repo.objects.read_files(repo.objects.commits[sha].tree)
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    for path, data in expected.items():
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_bytes(data)
    subprocess.run(["git", "-C", str(tmp_path), "add", "-A"], check=True)
    tree = subprocess.run(
        ["git", "-C", str(tmp_path), "write-tree"], check=True, capture_output=True, text=True
    ).stdout.strip()
    assert tree == repo.objects.commits[sha].tree


def test_contents_trees_and_blobs_agree_on_shas_and_bytes(
    api: httpx.Client, state: SandboxState
) -> None:
    readme = api.get(f"/repos/{REPO}/contents/README.md").json()
    assert (readme["type"], readme["sha"], readme["size"]) == (
        "file",
        "ce013625030ba8dba906f756967f9e9ca394464a",
        6,
    )
    assert base64.b64decode(readme["content"]) == b"hello\n"
    tree = api.get(f"/repos/{REPO}/git/trees/candidate", params={"recursive": "1"}).json()
    paths = {e["path"]: e for e in tree["tree"]}
    assert set(paths) == {"README.md", "models", "models/churn", "models/churn/config.yaml"}
    config_sha = paths["models/churn/config.yaml"]["sha"]
    blob = api.get(f"/repos/{REPO}/git/blobs/{config_sha}").json()
    assert base64.b64decode(blob["content"]) == b"task: binary\nv: 2\n"
    by_sha = api.get(
        f"/repos/{REPO}/contents/models/churn/config.yaml", params={"ref": head_sha(state)}
    )
    assert by_sha.json()["sha"] == config_sha
    listing = api.get(f"/repos/{REPO}/contents/models/churn").json()
    assert [(e["name"], e["type"]) for e in listing] == [("config.yaml", "file")]


def test_contents_of_a_missing_path_or_ref_is_404(api: httpx.Client) -> None:
    assert api.get(f"/repos/{REPO}/contents/nope.txt").status_code == 404
    assert api.get(f"/repos/{REPO}/contents/README.md", params={"ref": "nope"}).status_code == 404


def test_files_over_one_megabyte_come_without_content_so_the_blob_api_is_needed(
    api: httpx.Client, state: SandboxState
) -> None:
    big = bytes(range(256)) * 5000
    state.commit(REPO, "main", {"weights/model.onnx": big})
    meta = api.get(f"/repos/{REPO}/contents/weights/model.onnx").json()
    assert (meta["encoding"], meta["content"], meta["size"]) == ("none", "", len(big))
    blob = api.get(f"/repos/{REPO}/git/blobs/{meta['sha']}").json()
    assert base64.b64decode(blob["content"]) == big


def test_ref_branch_and_commit_routes_resolve_to_the_branch_tip(
    api: httpx.Client, state: SandboxState
) -> None:
    tip = state.repo(REPO).branches["main"]
    assert api.get(f"/repos/{REPO}/git/ref/heads/main").json()["object"]["sha"] == tip
    assert api.get(f"/repos/{REPO}/branches/main").json()["commit"]["sha"] == tip
    commit = api.get(f"/repos/{REPO}/commits/main").json()
    assert (commit["sha"], commit["commit"]["message"]) == (tip, "Initial commit")
    assert api.get(f"/repos/{REPO}/branches/nope").status_code == 404


# -- authentication ----------------------------------------------------------------------------


def test_a_jwt_signed_by_the_app_key_mints_a_one_hour_installation_token(
    server: SandboxServer, state: SandboxState, clock: FakeClock
) -> None:
    response = httpx.post(
        f"{server.url}/app/installations/11/access_tokens",
        headers={"Authorization": f"Bearer {app_jwt(clock)}"},
    )
    assert response.status_code == 201
    body = response.json()
    assert body["token"].startswith("ghs_")
    expires = datetime.fromisoformat(body["expires_at"].replace("Z", "+00:00"))
    assert expires == clock.now.replace(microsecond=0) + timedelta(hours=1)
    assert state.tokens_issued == 1


@pytest.mark.parametrize(
    "make_jwt",
    [
        pytest.param(lambda c: app_jwt(c, key=OTHER_PRIVATE_KEY), id="signed by another key"),
        pytest.param(lambda c: app_jwt(c, iss="1"), id="issued by another app"),
        pytest.param(lambda c: app_jwt(c, lifetime=timedelta(seconds=-120)), id="expired"),
        pytest.param(
            lambda c: app_jwt(c, lifetime=timedelta(hours=1)), id="living over ten minutes"
        ),
        pytest.param(lambda c: "ghs_not_a_jwt", id="an installation token instead"),
    ],
)
def test_a_bad_app_jwt_is_refused_with_401(
    server: SandboxServer, clock: FakeClock, make_jwt: Callable[[FakeClock], str]
) -> None:
    response = httpx.get(
        f"{server.url}/app", headers={"Authorization": f"Bearer {make_jwt(clock)}"}
    )
    assert response.status_code == 401


def test_a_token_of_another_installation_sees_404_as_on_github(
    server: SandboxServer, state: SandboxState
) -> None:
    other = state.issue_token(22).value
    response = httpx.get(
        f"{server.url}/repos/{REPO}/pulls/1", headers={"Authorization": f"token {other}"}
    )
    assert response.status_code == 404
    anonymous = httpx.get(f"{server.url}/repos/{REPO}/pulls/1")
    assert anonymous.status_code == 404


def test_an_expired_installation_token_gets_401(
    server: SandboxServer, state: SandboxState, clock: FakeClock
) -> None:
    token = state.issue_token(11).value
    headers = {"Authorization": f"Bearer {token}"}
    assert httpx.get(f"{server.url}/repos/{REPO}/pulls/1", headers=headers).status_code == 200
    clock.advance(minutes=61)
    response = httpx.get(f"{server.url}/repos/{REPO}/pulls/1", headers=headers)
    assert (response.status_code, response.json()["message"]) == (401, "Bad credentials")


# -- request validation and failure injection --------------------------------------------------


def test_a_request_body_outside_the_schema_is_422_and_recorded_as_a_violation(
    api: httpx.Client, state: SandboxState
) -> None:
    response = api.post(f"/repos/{REPO}/check-runs", json={"name": "x", "head_sha": 7})
    assert response.status_code == 422
    assert response.json()["message"].startswith("Invalid request")
    assert [v.kind for v in state.violations] == ["request-body"]


def test_a_call_to_an_operation_outside_the_subset_is_recorded(
    api: httpx.Client, state: SandboxState
) -> None:
    assert api.get(f"/repos/{REPO}/labels").status_code == 404
    assert [v.kind for v in state.violations] == ["unknown-operation"]


@pytest.mark.parametrize(
    ("status", "headers"),
    [
        pytest.param(429, {"Retry-After": "3"}, id="a secondary limit with retry-after"),
        pytest.param(
            403,
            {"x-ratelimit-remaining": "0", "x-ratelimit-reset": "1700000000"},
            id="a primary limit with a reset time",
        ),
        pytest.param(502, {}, id="a bad gateway"),
    ],
)
def test_an_injected_failure_answers_the_given_times_then_the_route_works_again(
    api: httpx.Client, state: SandboxState, status: int, headers: dict[str, str]
) -> None:
    state.inject_failure("GET", r"/pulls/\d+$", status=status, headers=headers, times=2)
    for _ in range(2):
        failed = api.get(f"/repos/{REPO}/pulls/1")
        assert failed.status_code == status
        assert all(failed.headers[name] == value for name, value in headers.items())
    assert api.get(f"/repos/{REPO}/pulls/1").status_code == 200


# -- pulls -------------------------------------------------------------------------------------


def test_a_pull_shows_head_base_author_and_merge_state(
    api: httpx.Client, state: SandboxState
) -> None:
    pull = api.get(f"/repos/{REPO}/pulls/1").json()
    assert pull["head"]["sha"] == head_sha(state)
    assert pull["base"]["sha"] == state.repo(REPO).branches["main"]
    assert (pull["base"]["ref"], pull["state"], pull["draft"], pull["merged"]) == (
        "main",
        "open",
        False,
        False,
    )
    assert (pull["mergeable"], pull["user"]["login"]) == (True, "alice")


def test_pull_files_are_paginated_with_a_link_header(
    api: httpx.Client, state: SandboxState
) -> None:
    state.push(REPO, "candidate", {f"models/churn/f{i}.txt": b"x\n" for i in range(4)})
    first = api.get(f"/repos/{REPO}/pulls/1/files", params={"per_page": 2})
    assert len(first.json()) == 2
    assert 'rel="next"' in first.headers["link"] and 'rel="last"' in first.headers["link"]
    last = api.get(f"/repos/{REPO}/pulls/1/files", params={"per_page": 2, "page": 3})
    names = [f["filename"] for f in last.json()]
    assert names == ["models/churn/f3.txt"]
    assert 'rel="prev"' in last.headers["link"] and 'rel="next"' not in last.headers["link"]


def test_a_push_to_the_head_branch_moves_the_pull_head(
    api: httpx.Client, state: SandboxState
) -> None:
    sha = state.push(REPO, "candidate", {"models/churn/CHANGELOG.md": b"v2\n"})
    assert api.get(f"/repos/{REPO}/pulls/1").json()["head"]["sha"] == sha
    statuses = {f["filename"]: f["status"] for f in api.get(f"/repos/{REPO}/pulls/1/files").json()}
    assert statuses == {
        "models/churn/CHANGELOG.md": "added",
        "models/churn/config.yaml": "modified",
    }


@pytest.mark.parametrize(
    "change",
    [
        pytest.param({"draft": True}, id="a draft pull"),
        pytest.param({"state": "closed"}, id="a closed pull"),
        pytest.param({"mergeable": False}, id="a pull marked unmergeable"),
    ],
)
def test_merging_is_refused_with_405_for(
    api: httpx.Client, state: SandboxState, change: dict[str, Any]
) -> None:
    state.set_pull_state(REPO, 1, **change)
    response = api.put(f"/repos/{REPO}/pulls/1/merge", json={"sha": head_sha(state)})
    assert (response.status_code, response.json()["message"]) == (
        405,
        "Pull Request is not mergeable",
    )


def test_merging_a_moved_head_is_refused_with_409(api: httpx.Client, state: SandboxState) -> None:
    evaluated = head_sha(state)
    state.push(REPO, "candidate", {"late.txt": b"late\n"})
    response = api.put(f"/repos/{REPO}/pulls/1/merge", json={"sha": evaluated})
    assert response.status_code == 409
    assert response.json()["message"] == "Head branch was modified. Review and try the merge again."


def test_a_successful_merge_lands_the_head_on_base_and_closes_the_pull(
    api: httpx.Client, state: SandboxState
) -> None:
    response = api.put(
        f"/repos/{REPO}/pulls/1/merge", json={"sha": head_sha(state), "merge_method": "squash"}
    )
    assert response.status_code == 200
    body = response.json()
    assert body["merged"] is True
    assert state.repo(REPO).branches["main"] == body["sha"]
    content = api.get(f"/repos/{REPO}/contents/models/churn/config.yaml").json()
    assert base64.b64decode(content["content"]) == b"task: binary\nv: 2\n"
    pull = api.get(f"/repos/{REPO}/pulls/1").json()
    assert (pull["state"], pull["merged"], pull["merge_commit_sha"]) == (
        "closed",
        True,
        body["sha"],
    )
    assert len(api.get(f"/repos/{REPO}/pulls/1/files").json()) == 1


# -- check runs --------------------------------------------------------------------------------


def test_check_runs_keep_full_state_through_create_update_and_list(
    api: httpx.Client, state: SandboxState
) -> None:
    created = api.post(
        f"/repos/{REPO}/check-runs",
        json={
            "name": "Shipyard / evaluation",
            "head_sha": head_sha(state),
            "status": "in_progress",
            "external_id": "promo-1",
            "details_url": "https://shipyard.example/p/1",
        },
    )
    assert created.status_code == 201
    run_id = created.json()["id"]
    updated = api.patch(
        f"/repos/{REPO}/check-runs/{run_id}",
        json={
            "conclusion": "success",
            "output": {"title": "Better", "summary": "AUC +0.02", "text": "t"},
        },
    ).json()
    assert (updated["status"], updated["conclusion"], updated["external_id"]) == (
        "completed",
        "success",
        "promo-1",
    )
    assert updated["output"]["summary"] == "AUC +0.02" and updated["completed_at"] is not None
    listed = api.get(f"/repos/{REPO}/commits/{head_sha(state)}/check-runs").json()
    assert listed["total_count"] == 1
    assert listed["check_runs"][0]["details_url"] == "https://shipyard.example/p/1"
    assert api.get(f"/repos/{REPO}/check-runs/{run_id}").json()["name"] == "Shipyard / evaluation"


def _output(summary: int, text: int = 0) -> dict[str, Any]:
    return {"output": {"title": "t", "summary": "s" * summary, "text": "x" * text}}


@pytest.mark.parametrize(
    ("extra", "status", "violates_schema"),
    [
        pytest.param(_output(65535, 65535), 201, False, id="65535 characters are accepted"),
        pytest.param(_output(65536), 422, True, id="a 65536 character summary is refused"),
        pytest.param(_output(1, 65536), 422, True, id="a 65536 character text is refused"),
        pytest.param({"status": "completed"}, 422, False, id="completed needs a conclusion"),
        pytest.param({"conclusion": "neutral"}, 201, False, id="a conclusion completes the run"),
    ],
)
def test_check_run_limits(
    api: httpx.Client,
    state: SandboxState,
    extra: dict[str, Any],
    status: int,
    violates_schema: bool,
) -> None:
    response = api.post(
        f"/repos/{REPO}/check-runs", json={"name": "c", "head_sha": head_sha(state), **extra}
    )
    assert response.status_code == status
    assert bool(state.violations) is violates_schema


# -- comments, reactions, access ---------------------------------------------------------------


def test_comments_are_posted_as_the_app_bot_and_edited_in_place(api: httpx.Client) -> None:
    created = api.post(f"/repos/{REPO}/issues/1/comments", json={"body": "report v1"}).json()
    assert (created["user"]["login"], created["user"]["type"]) == ("shipyard[bot]", "Bot")
    api.patch(f"/repos/{REPO}/issues/comments/{created['id']}", json={"body": "report v2"})
    listed = api.get(f"/repos/{REPO}/issues/1/comments").json()
    assert [c["body"] for c in listed] == ["report v2"]


def test_a_comment_longer_than_65536_characters_is_refused(api: httpx.Client) -> None:
    response = api.post(f"/repos/{REPO}/issues/1/comments", json={"body": "x" * 65537})
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "body"


def test_a_reaction_is_created_once_then_reported_as_existing(
    api: httpx.Client, state: SandboxState
) -> None:
    comment_id = state.add_comment(REPO, 1, "/approve", "bob")
    url = f"/repos/{REPO}/issues/comments/{comment_id}/reactions"
    assert api.post(url, json={"content": "+1"}).status_code == 201
    assert api.post(url, json={"content": "+1"}).status_code == 200
    assert api.post(url, json={"content": "thumbs"}).status_code == 422


@pytest.mark.parametrize(
    ("role", "permission"),
    [
        ("admin", "admin"),
        ("maintain", "write"),
        ("write", "write"),
        ("triage", "read"),
        ("read", "read"),
        ("none", "none"),
    ],
)
def test_collaborator_permission_reports_githubs_coarse_permission_and_role(
    api: httpx.Client, state: SandboxState, role: str, permission: str
) -> None:
    state.set_permission(REPO, "carol", role)
    body = api.get(f"/repos/{REPO}/collaborators/carol/permission").json()
    assert (body["permission"], body["role_name"]) == (permission, role)


def test_team_membership_is_active_for_members_and_404_otherwise(
    api: httpx.Client, state: SandboxState
) -> None:
    state.add_team_member("acme", "ml-reviewers", "dave")
    member = api.get("/orgs/acme/teams/ml-reviewers/memberships/dave")
    assert (member.status_code, member.json()["state"]) == (200, "active")
    assert api.get("/orgs/acme/teams/ml-reviewers/memberships/erin").status_code == 404


# -- Git LFS -----------------------------------------------------------------------------------


def lfs_batch(server: SandboxServer, token: str, objects: list[dict[str, Any]]) -> httpx.Response:
    basic = base64.b64encode(f"x-access-token:{token}".encode()).decode()
    return httpx.post(
        f"{server.url}/{REPO}.git/info/lfs/objects/batch",
        json={"operation": "download", "transfers": ["basic"], "objects": objects},
        headers={
            "Authorization": f"Basic {basic}",
            "Accept": LFS_MEDIA_TYPE,
            "Content-Type": LFS_MEDIA_TYPE,
        },
    )


def test_lfs_batch_hands_out_downloads_and_a_404_error_for_unknown_objects(
    server: SandboxServer, state: SandboxState
) -> None:
    content = b"onnx-bytes" * 100
    pointer = state.store_lfs_object(REPO, content)
    oid = hashlib.sha256(content).hexdigest()
    assert (
        pointer
        == f"version https://git-lfs.github.com/spec/v1\noid sha256:{oid}\nsize 1000\n".encode()
    )
    response = lfs_batch(
        server,
        state.issue_token(11).value,
        [{"oid": oid, "size": 1000}, {"oid": "0" * 64, "size": 1}],
    )
    assert response.headers["content-type"].startswith(LFS_MEDIA_TYPE)
    known, unknown = response.json()["objects"]
    assert unknown["error"]["code"] == 404
    download = known["actions"]["download"]
    fetched = httpx.get(download["href"], headers=download["header"])
    assert hashlib.sha256(fetched.content).hexdigest() == oid


def test_lfs_can_serve_bytes_that_do_not_match_the_pointer(
    server: SandboxServer, state: SandboxState
) -> None:
    content = b"the real weights"
    state.store_lfs_object(REPO, content, served=b"tampered weights")
    oid = hashlib.sha256(content).hexdigest()
    response = lfs_batch(server, state.issue_token(11).value, [{"oid": oid, "size": len(content)}])
    download = response.json()["objects"][0]["actions"]["download"]
    assert httpx.get(download["href"], headers=download["header"]).content == b"tampered weights"


def test_lfs_batch_refuses_another_installation_and_a_missing_accept_header(
    server: SandboxServer, state: SandboxState
) -> None:
    assert lfs_batch(server, state.issue_token(22).value, []).status_code == 404
    no_accept = httpx.post(
        f"{server.url}/{REPO}.git/info/lfs/objects/batch",
        json={"operation": "download", "objects": []},
        headers={"Authorization": f"Bearer {state.issue_token(11).value}"},
    )
    assert no_accept.status_code == 406
    assert [v.kind for v in state.violations] == ["lfs-accept"]


# -- webhooks ----------------------------------------------------------------------------------


def test_webhooks_are_signed_like_github_and_carry_sandbox_state(
    server: SandboxServer, state: SandboxState
) -> None:
    with WebhookReceiver() as receiver:
        state.configure_webhooks(receiver.url, "s3cret")
        number = state.open_pull(REPO, "candidate", "main", "Second", "alice")
        sha = state.push(REPO, "candidate", {"x.txt": b"x\n"})
        state.add_comment(REPO, number, "/approve", "bob")
    assert [d.status_code for d in state.webhooks.deliveries] == [202] * 4
    events = [
        (r.headers["X-GitHub-Event"], json.loads(r.body)["action"]) for r in receiver.received
    ]
    assert events == [
        ("pull_request", "opened"),
        ("pull_request", "synchronize"),
        ("pull_request", "synchronize"),
        ("issue_comment", "created"),
    ]
    for received in receiver.received:
        assert received.headers["X-Hub-Signature-256"] == sign_webhook("s3cret", received.body)
        assert received.headers["User-Agent"].startswith("GitHub-Hookshot/")
        assert received.headers["X-GitHub-Hook-Installation-Target-ID"] == str(APP_ID)
        assert received.headers["X-Hub-Signature"].startswith("sha1=")
        assert uuid.UUID(received.headers["X-GitHub-Delivery"]).version == 4
    synchronize = json.loads(receiver.received[2].body)
    assert synchronize["after"] == sha and synchronize["pull_request"]["head"]["sha"] == sha
    assert synchronize["repository"]["full_name"] == REPO
    assert synchronize["installation"]["id"] == 11
    comment = parse_obj("issue_comment", json.loads(receiver.received[3].body))
    assert comment.issue.pull_request is not None
    assert comment.comment.user is not None and comment.comment.user.login == "bob"


def test_a_review_is_delivered_with_the_commit_it_was_written_on(
    server: SandboxServer, state: SandboxState
) -> None:
    old = head_sha(state)
    with WebhookReceiver() as receiver:
        state.configure_webhooks(receiver.url, "s3cret")
        state.push(REPO, "candidate", {"x.txt": b"x\n"})
        state.submit_review(REPO, 1, "/approve", "bob", commit_id=old, state="approved")
        state.submit_review(REPO, 1, "looks fine", "bob")
    old_review, new_review = (
        parse_obj("pull_request_review", json.loads(r.body)) for r in receiver.received[1:]
    )
    assert old_review.action == "submitted" and old_review.review.commit_id == old
    assert old_review.review.body == "/approve" and old_review.review.state == "approved"
    assert old_review.review.user is not None and old_review.review.user.login == "bob"
    assert new_review.review.commit_id == head_sha(state) != old
    assert new_review.pull_request.head.sha == head_sha(state)
    assert new_review.installation is not None and new_review.installation.id == 11
    with pytest.raises(SandboxError):
        state.submit_review(REPO, 1, "/approve", "bob", commit_id="f" * 40)


def test_redelivery_sends_the_same_bytes_with_the_same_delivery_id(
    server: SandboxServer, state: SandboxState
) -> None:
    with WebhookReceiver(status=500) as receiver:
        state.configure_webhooks(receiver.url, "s3cret")
        state.add_comment(REPO, 1, "/retest", "bob")
        receiver.status = 200
        first = state.webhooks.deliveries[0]
        assert state.redeliver(first.id) == 200
    one, two = receiver.received
    assert one.body == two.body
    assert one.headers["X-GitHub-Delivery"] == two.headers["X-GitHub-Delivery"] == first.id
    assert first.attempts == [500, 200]


def test_a_merge_through_the_api_delivers_pull_request_closed_as_merged(
    api: httpx.Client, state: SandboxState
) -> None:
    with WebhookReceiver() as receiver:
        state.configure_webhooks(receiver.url, "s3cret")
        api.put(f"/repos/{REPO}/pulls/1/merge", json={"sha": head_sha(state)})
        state.webhooks.wait_for(1)  # the sandbox delivers after answering the merge
    closed = [json.loads(r.body) for r in receiver.received]
    assert [(p["action"], p["pull_request"]["merged"]) for p in closed] == [("closed", True)]


@pytest.mark.parametrize(
    ("event", "action"),
    [
        ("pull_request", "opened"),
        ("pull_request", "synchronize"),
        ("pull_request", "closed"),
        ("pull_request", "reopened"),
        ("pull_request", "ready_for_review"),
        ("issue_comment", "created"),
        ("issue_comment", "edited"),
        ("issue_comment", "deleted"),
    ],
)
def test_built_webhook_payloads_parse_as_githubkit_webhook_models(
    state: SandboxState, event: str, action: str
) -> None:
    repo = state.repo(REPO)
    comment = repo.comments[state.create_comment(REPO, 1, "/status", "bob")]
    payload = build_event(
        state,
        event,
        action,
        repo=repo,
        pull=repo.pulls[1],
        sender="bob",
        comment=comment,
        before="0" * 40,
        after=head_sha(state),
        changes={"body": {"from": "old"}} if action == "edited" else None,
    )
    parsed = parse_obj(event, payload)
    repository = getattr(parsed, "repository", None)
    installation = getattr(parsed, "installation", None)
    assert getattr(parsed, "action", None) == action
    assert getattr(repository, "full_name", None) == REPO
    assert getattr(installation, "id", None) == 11


def test_every_webhook_example_is_available_with_its_event_name() -> None:
    examples = list(iter_webhook_examples())
    names = {name for name, _ in examples}
    assert {"pull_request", "issue_comment", "installation", "ping"} <= names
    assert len(examples) > 200


# -- githubkit against the sandbox -------------------------------------------------------------


def test_githubkit_authenticates_as_the_app_and_parses_every_response(
    server: SandboxServer, state: SandboxState
) -> None:
    github = GitHub(AppInstallationAuthStrategy(APP_ID, PRIVATE_KEY, 11), base_url=server.url)
    pull = github.rest.pulls.get("acme", "registry", 1).parsed_data
    assert pull.head.sha == head_sha(state)
    run = github.rest.checks.create(
        "acme",
        "registry",
        name="Shipyard / candidate",
        head_sha=pull.head.sha,
        status="in_progress",
    ).parsed_data
    run = github.rest.checks.update(
        "acme", "registry", run.id, conclusion="success", output={"title": "ok", "summary": "fine"}
    ).parsed_data
    assert (run.status, run.conclusion) == ("completed", "success")
    assert (
        github.rest.checks.list_for_ref("acme", "registry", pull.head.sha).parsed_data.total_count
        == 1
    )
    comment = github.rest.issues.create_comment("acme", "registry", 1, body="report").parsed_data
    assert comment.user is not None and comment.user.login == "shipyard[bot]"
    files: list[Any] = github.rest.pulls.list_files("acme", "registry", 1).parsed_data
    assert [f.filename for f in files] == ["models/churn/config.yaml"]
    content = github.rest.repos.get_content("acme", "registry", "README.md").parsed_data
    assert getattr(content, "sha", None) == blob_sha(b"hello\n")
    assert (
        len(github.rest.git.get_tree("acme", "registry", "main", recursive="1").parsed_data.tree)
        == 4
    )
    merged = github.rest.pulls.merge("acme", "registry", 1, sha=pull.head.sha).parsed_data
    assert merged.merged is True
    # One token, cached by githubkit across all the calls above.
    assert state.tokens_issued == 1
    assert state.violations == []
