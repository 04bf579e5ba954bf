"""A shadow or canary stage shows on the pull request as one GitHub Deployment, exactly once.

The bot's client talks to the GitHub sandbox through tests/fault_proxy.py, which can answer
502 *after* GitHub created the deployment or its status: what a person sees in the
repository's Deployments tab must still be one deployment with one status per change.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta

import pytest

from bot.base.clock import ManualClock
from bot.github.api import GitHubApp
from bot.rollout import deployments
from bot.runtime import outbox
from bot.sandbox.github import SandboxServer, SandboxState, generate_app_keypair
from bot.sandbox.github.models import Deployment
from bot.store.db import open_store
from tests.fault_proxy import FaultProxy

APP_ID = 91
REPO = "acme/registry"
ENV = "shadow/churn"


@dataclass
class World:
    state: SandboxState
    proxy: FaultProxy
    rt: outbox.Local
    clock: ManualClock
    sha: str

    def show(self, state: deployments.State, description: str) -> outbox.EffectState:
        return deployments.show(
            self.rt,
            installation_id=self.rt.client.installation_id,
            repo=REPO,
            sha=self.sha,
            environment=ENV,
            state=state,
            description=description,
            environment_url="http://gateway.staging.example/v2/models/churn",
        )

    def retry_later(self) -> None:
        self.clock.advance(timedelta(minutes=20))  # past the outbox's back-off
        outbox.drain(self.rt)

    def seen(self) -> list[Deployment]:
        with self.state.lock:
            return list(self.state.repos[REPO].deployments.values())


@pytest.fixture
def world(database_url: str) -> Iterator[World]:
    clock = ManualClock()
    private, public = generate_app_keypair()
    state = SandboxState(app_id=APP_ID, app_public_key_pem=public, clock=clock.now)
    installation = state.add_installation("acme")
    repo = state.create_repo(REPO, installation_id=installation, files={"README.md": b"hi\n"})
    store = open_store(database_url)
    with SandboxServer(state) as server, FaultProxy(server.url) as proxy:
        app = GitHubApp(app_id=APP_ID, private_key=private, api_url=proxy.url, clock=clock)
        rt = outbox.Local(store=store, client=app.installation(installation))
        yield World(state, proxy, rt, clock, repo.branches["main"])
    store.engine.dispose()
    assert state.violations == []


def test_a_stage_is_one_transient_deployment_whose_status_follows_it(world: World) -> None:
    assert world.show("in_progress", "Shadow: 3 h of 24 h, 1,200 of 10,000 samples").done
    assert world.show("in_progress", "Shadow: 3 h of 24 h, 1,200 of 10,000 samples").done
    assert world.show("success", "Shadow passed after 24 h and 12,400 samples").done
    (deployment,) = world.seen()
    assert (deployment.environment, deployment.sha, deployment.task) == (
        ENV,
        world.sha,
        "deploy:shipyard",
    )
    assert deployment.transient_environment and not deployment.production_environment
    assert [s.state for s in deployment.statuses] == ["in_progress", "success"]
    assert deployment.statuses[-1].environment_url.endswith("/v2/models/churn")


def test_teardown_marks_the_deployment_inactive(world: World) -> None:
    world.show("in_progress", "Shadow running")
    world.show("inactive", "Pull request closed: shadow stopped")
    (deployment,) = world.seen()
    assert deployment.statuses[-1].state == "inactive"


def test_a_create_answered_502_after_it_happened_is_not_made_twice(world: World) -> None:
    world.proxy.fail_after("POST", r"/deployments$")
    world.show("in_progress", "Shadow running")  # in doubt: tried again, inline or later
    world.retry_later()
    assert world.proxy.faults_injected == 1
    (deployment,) = world.seen()
    assert [s.state for s in deployment.statuses] == ["in_progress"]


def test_a_status_answered_502_after_it_happened_is_not_posted_twice(world: World) -> None:
    world.show("in_progress", "Shadow running")
    world.proxy.fail_after("POST", r"/statuses$")
    world.show("failure", "Shadow found NaN scores")
    world.retry_later()
    assert world.proxy.faults_injected == 1
    (deployment,) = world.seen()
    assert [s.state for s in deployment.statuses] == ["in_progress", "failure"]


def test_long_descriptions_are_clipped_to_what_github_accepts(world: World) -> None:
    assert world.show("in_progress", "x" * 500).done
    (deployment,) = world.seen()
    assert len(deployment.statuses[-1].description) == deployments.DESCRIPTION_LIMIT
