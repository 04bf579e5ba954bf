"""After a rollback, one pull request puts the previous model version back on the base branch.

The bot's client talks to the GitHub sandbox over HTTP through tests/fault_proxy.py, with the
bot's real store behind the outbox. What is asserted is what a person sees in the repository:
the pull requests, their branches, and the files they hold, read back through the REST API.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from githubkit import AppInstallationAuthStrategy, GitHub

from bot.base.clock import ManualClock
from bot.base.waiting import wait_until
from bot.github.api import GitHubApp
from bot.rollout import revert_pr
from bot.runtime import outbox
from bot.sandbox.github import SandboxServer, SandboxState, generate_app_keypair
from bot.sandbox.github.models import Pull
from bot.store.db import open_store
from bot.store.models import EffectStatus
from tests.fault_proxy import FaultProxy
from tests.sandbox_receiver import WebhookReceiver

APP_ID = 92
REPO = "acme/registry"
BRANCH = "shipyard/revert-pr1-churn"  # the candidate below is pull request #1

V1 = {
    "models/churn/config.yaml": b"task: binary\nversion: 1\n",
    "models/churn/weights/model.onnx": b"\x08\x07onnx-v1\x00",
    "models/churn/CHANGELOG.md": b"# v1\n",
}
OTHER = {"models/other/config.yaml": b"task: regression\n"}
CANDIDATE: dict[str, bytes | None] = {
    "models/churn/config.yaml": b"task: binary\nversion: 2\n",
    "models/churn/weights/model.onnx": b"\x08\x07onnx-v2\x00",
    "models/churn/CHANGELOG.md": None,  # deleted by the candidate
    "models/churn/eval_results.json": b'{"auc": 0.91}\n',  # added by the candidate
}
TITLE = "Revert churn: rolled back at 25% (error rate 4.1% vs 0.3%)"
BODY = "Shipyard rolled `churn` back in production.\n\n| metric | canary | production |\n"


@dataclass
class World:
    state: SandboxState
    proxy: FaultProxy
    rt: outbox.Local
    clock: ManualClock
    api: httpx.Client  # straight to the sandbox: what a person's client reads
    private_key: str

    def merge(
        self, files: dict[str, bytes | None], *, branch: str = "candidate", method: str = "merge"
    ) -> tuple[int, str]:
        """A data scientist's pull request, merged by Shipyard: (number, merge commit)."""
        self.state.commit(REPO, branch, files, author="data-scientist", message="New model")
        number = self.state.open_pull(REPO, branch, "main", "New model", "data-scientist")
        return number, self.state.merge_pull(REPO, number, merge_method=method)

    def revert(
        self,
        merge_sha: str,
        pr_number: int,
        *,
        model: str = "churn",
        title: str = TITLE,
        body: str = BODY,
    ) -> outbox.EffectState:
        return revert_pr.open_revert(
            self.rt,
            installation_id=self.rt.client.installation_id,
            repo=REPO,
            base_ref="main",
            merge_sha=merge_sha,
            model_dir=f"models/{model}",
            pr_number=pr_number,
            model=model,
            title=title,
            body=body,
        )

    def retry_later(self) -> None:
        self.clock.advance(timedelta(minutes=20))  # past the outbox's back-off
        outbox.drain(self.rt)

    def revert_pulls(self) -> list[Pull]:
        with self.state.lock:
            pulls = self.state.repo(REPO).pulls.values()
            return [p for p in pulls if p.head_ref.startswith(revert_pr.BRANCH_PREFIX)]

    def successful(self, method: str, suffix: str) -> int:
        """How many such writes GitHub carried out (answered or not)."""
        return sum(
            1
            for r in self.state.requests
            if r.method == method and r.path.endswith(suffix) and r.status < 300
        )

    def files(self, ref: str, prefix: str = "") -> dict[str, bytes]:
        """Files under `prefix` at `ref`, listed by the trees API and read by the blobs API."""
        tree = self.api.get(f"/repos/{REPO}/git/trees/{ref}", params={"recursive": "1"}).json()
        return {
            e["path"]: self.blob(e["sha"])
            for e in tree["tree"]
            if e["type"] == "blob" and e["path"].startswith(prefix)
        }

    def blob(self, sha: str) -> bytes:
        return base64.b64decode(self.api.get(f"/repos/{REPO}/git/blobs/{sha}").json()["content"])

    def content(self, path: str, ref: str) -> bytes:
        answer = self.api.get(f"/repos/{REPO}/contents/{path}", params={"ref": ref}).json()
        return base64.b64decode(answer["content"])


def _make_world(database_url: str) -> Iterator[World]:
    clock = ManualClock(datetime.now(UTC))  # githubkit signs its App JWT with the real time
    private, public = generate_app_keypair()
    state = SandboxState(app_id=APP_ID, app_public_key_pem=public, clock=clock.now)
    installation = state.add_installation("acme")
    readme = {"README.md": b"# registry\n"}
    state.create_repo(REPO, installation_id=installation, files={**V1, **OTHER, **readme})
    store = open_store(database_url)
    with SandboxServer(state) as server, FaultProxy(server.url) as proxy:
        app = GitHubApp(app_id=APP_ID, private_key=private, api_url=proxy.url, clock=clock)
        rt = outbox.Local(store=store, client=app.installation(installation))
        token = state.issue_token(installation).value
        headers = {"Authorization": f"token {token}"}
        with httpx.Client(base_url=server.url, headers=headers) as api:
            yield World(state, proxy, rt, clock, api, private)
    store.engine.dispose()
    assert state.violations == []  # every request the bot made exists in GitHub's description
    assert state.response_violations == []  # every answer was shaped as GitHub documents


@pytest.fixture
def world(database_url: str) -> Iterator[World]:
    yield from _make_world(database_url)


@pytest.fixture
def sqlite_world(tmp_path: Any) -> Iterator[World]:
    """For tests of the sandbox's routes alone, which no database changes."""
    yield from _make_world(f"sqlite:///{tmp_path / 'shipyard.db'}")


def _only_revert_pull(world: World) -> Pull:
    (pull,) = world.revert_pulls()
    return pull


# -- the revert pull request ---------------------------------------------------------------------


@pytest.mark.parametrize("method", ["merge", "squash"])
def test_the_revert_pull_request_restores_the_previous_model_directory_exactly(
    world: World, method: str
) -> None:
    number, merge_sha = world.merge(CANDIDATE, method=method)
    result = world.revert(merge_sha, number)
    assert result.done
    revert_number = revert_pr.revert_pr_number(result)
    pull = _only_revert_pull(world)
    assert revert_number == pull.number and result.result["url"].endswith(f"/pull/{pull.number}")
    assert (pull.state, pull.base_ref, pull.head_ref) == ("open", "main", BRANCH)
    assert pull.author_login == "shipyard[bot]" and pull.title == TITLE
    assert pull.body.startswith(BODY) and "was changed on" not in pull.body
    # The branch holds exactly the previous model directory, and everything else as on main.
    assert world.files(BRANCH, "models/churn/") == V1
    assert (
        world.content("models/churn/weights/model.onnx", BRANCH)
        == V1["models/churn/weights/model.onnx"]
    )
    assert world.files(BRANCH, "models/other/") == OTHER
    assert world.content("README.md", BRANCH) == b"# registry\n"
    # The pull request shows the revert as its changes, and the branch's one commit names #1.
    files = world.api.get(f"/repos/{REPO}/pulls/{pull.number}/files").json()
    assert {f["filename"]: f["status"] for f in files} == {
        "models/churn/config.yaml": "modified",
        "models/churn/weights/model.onnx": "modified",
        "models/churn/CHANGELOG.md": "added",
        "models/churn/eval_results.json": "removed",
    }
    commit = world.api.get(f"/repos/{REPO}/commits/{BRANCH}").json()
    assert commit["parents"][0]["sha"] == world.state.repo(REPO).branches["main"]
    assert "before #1" in commit["commit"]["message"]
    listed = world.api.get(
        f"/repos/{REPO}/pulls", params={"head": f"acme:{BRANCH}", "state": "open"}
    ).json()
    assert [p["number"] for p in listed] == [pull.number]


def test_a_model_new_in_the_merged_pull_request_is_deleted_by_its_revert(world: World) -> None:
    number, merge_sha = world.merge({"models/fraud/config.yaml": b"task: binary\n"})
    assert world.revert(merge_sha, number, model="fraud").done
    pull = _only_revert_pull(world)
    assert pull.head_ref == "shipyard/revert-pr1-fraud"
    assert world.files(pull.head_ref, "models/fraud/") == {}
    assert world.files(pull.head_ref, "models/churn/") == V1
    assert world.files(pull.head_ref, "models/other/") == OTHER


def test_a_model_changed_again_after_the_merge_is_still_reverted_and_the_body_says_so(
    world: World,
) -> None:
    number, merge_sha = world.merge(CANDIDATE)
    later = {"models/churn/config.yaml": b"task: binary\nversion: 3\n", "README.md": b"# new\n"}
    world.state.commit(REPO, "main", later, message="Hotfix")
    assert world.revert(merge_sha, number).done
    pull = _only_revert_pull(world)
    assert world.files(BRANCH, "models/churn/") == V1
    assert world.content("README.md", BRANCH) == b"# new\n"  # later work elsewhere is kept
    assert "`models/churn` was changed on `main` after #1 was merged" in pull.body
    assert BODY in pull.body


def test_nothing_is_opened_when_the_base_already_holds_the_previous_version(
    world: World,
) -> None:
    number, merge_sha = world.merge(CANDIDATE)
    world.state.commit(REPO, "main", {**dict.fromkeys(CANDIDATE), **V1}, message="Manual revert")
    result = world.revert(merge_sha, number)
    assert result.done and result.result["already_reverted"] is True
    assert revert_pr.revert_pr_number(result) is None
    assert world.revert_pulls() == [] and BRANCH not in world.state.repo(REPO).branches


def test_opening_it_twice_gives_one_pull_request(world: World) -> None:
    number, merge_sha = world.merge(CANDIDATE)
    first = world.revert(merge_sha, number)
    second = world.revert(merge_sha, number, title="Another title for the same rollback")
    assert revert_pr.revert_pr_number(first) == revert_pr.revert_pr_number(second)
    assert _only_revert_pull(world).title == TITLE
    assert world.successful("POST", "/pulls") == 1


def test_a_pull_request_answered_502_after_it_was_opened_is_found_not_opened_again(
    world: World,
) -> None:
    number, merge_sha = world.merge(CANDIDATE)
    world.proxy.fail_after("POST", r"/pulls$")
    world.revert(merge_sha, number)  # in doubt: tried again, inline or later
    world.retry_later()
    assert world.proxy.faults_injected == 1
    pull = _only_revert_pull(world)
    assert world.successful("POST", "/pulls") == 1
    state = outbox.state_of(
        world.rt.store, outbox.effect_key("revert_pr", REPO, merge_sha, "churn")
    )
    assert state.done and revert_pr.revert_pr_number(state) == pull.number


def test_the_branch_left_by_an_attempt_that_died_before_the_pull_request_is_reused(
    world: World,
) -> None:
    number, merge_sha = world.merge(CANDIDATE)
    outage = world.proxy.fail("POST", r"/pulls$", times=None)
    assert not world.revert(merge_sha, number).done
    left = world.state.repo(REPO).branches[BRANCH]  # the branch and commit the attempt left
    assert world.revert_pulls() == []
    world.proxy.remove(outage)
    world.retry_later()
    pull = _only_revert_pull(world)
    assert pull.head_sha == left
    assert world.successful("POST", "/git/commits") == 1
    assert world.successful("POST", "/git/refs") == 1
    assert world.files(BRANCH, "models/churn/") == V1


def test_a_branch_left_on_a_base_that_moved_since_is_moved_onto_the_new_base(
    world: World,
) -> None:
    number, merge_sha = world.merge(CANDIDATE)
    outage = world.proxy.fail("POST", r"/pulls$", times=None)
    world.revert(merge_sha, number)
    left = world.state.repo(REPO).branches[BRANCH]
    hotfix = world.state.commit(REPO, "main", {"README.md": b"# hotfix\n"}, message="Hotfix")
    world.proxy.remove(outage)
    world.retry_later()
    pull = _only_revert_pull(world)
    assert pull.head_sha != left
    commit = world.api.get(f"/repos/{REPO}/commits/{pull.head_sha}").json()
    assert [p["sha"] for p in commit["parents"]] == [hotfix]
    assert world.files(BRANCH, "models/churn/") == V1
    assert world.content("README.md", BRANCH) == b"# hotfix\n"


def test_a_copied_trailer_on_other_content_does_not_make_a_branch_ours(world: World) -> None:
    number, merge_sha = world.merge(CANDIDATE)
    key = outbox.effect_key("revert_pr", REPO, merge_sha, "churn")
    forged = f"Looks like Shipyard\n\n{revert_pr.commit_trailer(key)}\n"
    world.state.commit(REPO, BRANCH, {"models/churn/config.yaml": b"evil\n"}, message=forged)
    assert world.revert(merge_sha, number).done
    assert world.files(BRANCH, "models/churn/") == V1


def test_a_branch_of_that_name_holding_something_else_is_moved_to_the_revert(
    world: World,
) -> None:
    number, merge_sha = world.merge(CANDIDATE)
    world.state.commit(REPO, BRANCH, {"models/churn/config.yaml": b"someone's edit\n"})
    assert world.revert(merge_sha, number).done
    pull = _only_revert_pull(world)
    assert world.files(BRANCH, "models/churn/") == V1
    assert pull.head_sha == world.state.repo(REPO).branches[BRANCH]


def test_an_unknown_merge_commit_fails_with_a_fixed_sentence_and_opens_nothing(
    world: World,
) -> None:
    world.merge(CANDIDATE)
    result = world.revert("0" * 40, 1)
    assert result.status is EffectStatus.FAILED
    assert result.error_message == revert_pr.REFUSED["merge"]
    assert world.revert_pulls() == [] and BRANCH not in world.state.repo(REPO).branches


def test_a_long_title_and_body_are_bounded_and_cannot_hide_the_marker(world: World) -> None:
    number, merge_sha = world.merge(CANDIDATE)
    title = "Rolled back\nbecause " + "x" * 1000
    body = "<!-- unclosed " + "y" * 100_000
    assert world.revert(merge_sha, number, title=title, body=body).done
    pull = _only_revert_pull(world)
    assert len(pull.title) == revert_pr.MAX_TITLE and "\n" not in pull.title
    assert len(pull.body) <= revert_pr.MAX_BODY
    assert pull.body.count("<!--") == 1 and pull.body.endswith(" -->")


def test_opening_the_pull_request_delivers_pull_request_opened(world: World) -> None:
    number, merge_sha = world.merge(CANDIDATE)
    with WebhookReceiver() as receiver:
        world.state.configure_webhooks(receiver.url, "secret")
        assert world.revert(merge_sha, number).done

        def opened() -> list[dict[str, Any]]:
            bodies = [json.loads(r.body) for r in receiver.received]
            return [b for b in bodies if b.get("action") == "opened"]

        (event,) = wait_until(opened, timeout_s=10, what="pull_request.opened")
    assert event["pull_request"]["head"]["ref"] == BRANCH
    assert event["sender"]["login"] == "shipyard[bot]"


# -- the sandbox's write routes, as GitHub answers them -----------------------------------------


def test_the_new_write_routes_answer_like_github_to_githubkit(sqlite_world: World) -> None:
    world = sqlite_world
    github = GitHub(
        AppInstallationAuthStrategy(APP_ID, world.private_key, world.rt.client.installation_id),
        base_url=str(world.api.base_url),
    )
    main = world.state.repo(REPO).branches["main"]
    base_tree = world.state.repo(REPO).objects.commits[main].tree
    tree = github.rest.git.create_tree(
        "acme",
        "registry",
        base_tree=base_tree,
        tree=[
            {"path": "models/churn/notes.md", "mode": "100644", "type": "blob", "content": "hi"},
            {"path": "README.md", "mode": "100644", "type": "blob", "sha": None},
        ],
    ).parsed_data
    commit = github.rest.git.create_commit(
        "acme", "registry", message="Notes", tree=tree.sha, parents=[main]
    ).parsed_data
    assert commit.parents[0].sha == main and commit.tree.sha == tree.sha
    ref = github.rest.git.create_ref(
        "acme", "registry", ref="refs/heads/notes", sha=commit.sha
    ).parsed_data
    assert ref.object_.sha == commit.sha
    pull = github.rest.pulls.create(
        "acme", "registry", title="Notes", head="notes", base="main"
    ).parsed_data
    assert (pull.head.ref, pull.base.ref, pull.user.login) == ("notes", "main", "shipyard[bot]")
    moved = github.rest.git.update_ref(
        "acme", "registry", "heads/notes", sha=main, force=True
    ).parsed_data
    assert moved.object_.sha == main
    assert world.state.pull(REPO, pull.number).head_sha == main  # the pull followed its branch
    files = world.files(commit.sha)
    assert "README.md" not in files and files["models/churn/notes.md"] == b"hi"
    assert world.files(commit.sha, "models/other/") == OTHER


def test_a_sub_tree_replaces_a_directory_and_sha_null_deletes_one(sqlite_world: World) -> None:
    world = sqlite_world
    repo = world.state.repo(REPO)
    head_tree = repo.objects.commits[repo.branches["main"]].tree
    other = repo.objects.lookup(head_tree, "models/other")
    assert other is not None
    answer = world.api.post(
        f"/repos/{REPO}/git/trees",
        json={
            "base_tree": head_tree,
            "tree": [
                {"path": "models/churn", "mode": "040000", "type": "tree", "sha": other.sha},
                {"path": "models/other", "mode": "040000", "type": "tree", "sha": None},
            ],
        },
    )
    assert answer.status_code == 201
    sha = answer.json()["sha"]
    assert repo.objects.read_files(sha) == {
        "README.md": b"# registry\n",
        "models/churn/config.yaml": OTHER["models/other/config.yaml"],
    }


@pytest.mark.parametrize(
    ("path", "body", "message"),
    [
        ("/git/refs", {"ref": "refs/heads/main", "sha": "MAIN"}, "Reference already exists"),
        ("/git/refs", {"ref": "refs/heads/x", "sha": "f" * 40}, "Object does not exist"),
        ("/git/trees", {"base_tree": "f" * 40, "tree": []}, "base_tree is not a valid tree"),
        (
            "/git/trees",
            {"tree": [{"path": "a", "mode": "100644", "type": "blob", "sha": "f" * 40}]},
            f"tree.sha {'f' * 40} is not a valid blob",
        ),
        (
            "/git/commits",
            {"message": "m", "tree": "f" * 40, "parents": []},
            "Tree SHA does not exist",
        ),
    ],
    ids=[
        "a branch that exists is not created again",
        "a ref to a missing commit is refused",
        "a missing base tree is refused",
        "a tree entry naming a missing blob is refused",
        "a commit of a missing tree is refused",
    ],
)
def test_git_writes_github_refuses_are_422(
    sqlite_world: World, path: str, body: dict[str, Any], message: str
) -> None:
    main = sqlite_world.state.repo(REPO).branches["main"]
    body = {k: (main if v == "MAIN" else v) for k, v in body.items()}
    answer = sqlite_world.api.post(f"/repos/{REPO}{path}", json=body)
    assert (answer.status_code, answer.json()["message"]) == (422, message)


def test_a_second_pull_request_for_an_open_branch_is_refused_as_on_github(
    sqlite_world: World,
) -> None:
    world = sqlite_world
    world.state.commit(REPO, "feature", {"README.md": b"changed\n"})
    pull = {"title": "Feature", "head": "acme:feature", "base": "main"}
    assert world.api.post(f"/repos/{REPO}/pulls", json=pull).status_code == 201
    again = world.api.post(f"/repos/{REPO}/pulls", json=pull)
    assert again.status_code == 422
    assert again.json()["errors"][0]["message"] == "A pull request already exists for acme:feature."
    main = world.state.repo(REPO).branches["main"]
    moved = world.api.patch(f"/repos/{REPO}/git/refs/heads/feature", json={"sha": main})
    assert (moved.status_code, moved.json()["message"]) == (422, "Update is not a fast forward")
