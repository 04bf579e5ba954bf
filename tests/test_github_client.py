"""The GitHub App client against the sandbox: token caching and scoping, rate limits, back-off."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest

from bot.base.clock import ManualClock
from bot.github.api import GitHubApp, GitHubError, InstallationClient
from bot.sandbox.github import SandboxServer, SandboxState, generate_app_keypair

APP_ID = 77


@pytest.fixture
def world() -> Iterator[tuple[SandboxState, GitHubApp, ManualClock]]:
    clock = ManualClock()
    private, public = generate_app_keypair()
    state = SandboxState(app_id=APP_ID, app_public_key_pem=public, clock=clock.now)
    with SandboxServer(state) as server:
        app = GitHubApp(
            app_id=APP_ID,
            private_key=private,
            api_url=server.url,
            clock=clock,
            max_retries=4,
            max_wait_s=120,
        )
        yield state, app, clock
    assert state.violations == []


def _repo(state: SandboxState, name: str) -> InstallationClient | int:
    installation = state.add_installation(name.split("/")[0])
    state.create_repo(name, installation_id=installation)
    return installation


def test_an_installation_token_is_cached_and_refreshed_before_it_expires(world) -> None:  # type: ignore[no-untyped-def]
    state, app, clock = world
    installation = _repo(state, "acme/registry")
    client = app.installation(int(installation))
    for _ in range(3):
        client.request("GET", "/repos/acme/registry/pulls")
    assert state.tokens_issued == 1
    clock.advance(timedelta(minutes=56))  # inside the 5-minute margin of the 1-hour token
    client.request("GET", "/repos/acme/registry/pulls")
    assert state.tokens_issued == 2


def test_each_installation_gets_its_own_token(world) -> None:  # type: ignore[no-untyped-def]
    state, app, _ = world
    first = int(_repo(state, "acme/registry"))
    second = int(_repo(state, "globex/models"))
    assert app.installation(first).request("GET", "/repos/acme/registry/pulls") == []
    assert app.installation(second).request("GET", "/repos/globex/models/pulls") == []
    assert state.tokens_issued == 2
    with pytest.raises(GitHubError) as err:  # one installation's token never reaches another's repo
        app.installation(first).request("GET", "/repos/globex/models/pulls")
    assert err.value.status == 404


@pytest.mark.parametrize(
    "status, headers, expected_sleep",
    [
        (429, {"Retry-After": "7"}, [7.0]),
        (403, {"Retry-After": "3"}, [3.0]),
        (403, {"x-ratelimit-remaining": "0", "x-ratelimit-reset": "RESET+30"}, [31.0]),
        (502, {}, [1.0]),
        (503, {}, [1.0]),
    ],
    ids=[
        "a 429 waits as long as Retry-After says",
        "a secondary rate limit 403 waits for Retry-After",
        "an exhausted primary rate limit waits until x-ratelimit-reset",
        "a 502 backs off and retries",
        "a 503 backs off and retries",
    ],
)
def test_rate_limits_and_server_errors_are_retried_on_the_injected_clock(
    world,
    status: int,
    headers: dict[str, str],
    expected_sleep: list[float],  # type: ignore[no-untyped-def]
) -> None:
    state, app, clock = world
    installation = int(_repo(state, "acme/registry"))
    client = app.installation(installation)
    client.request("GET", "/repos/acme/registry/pulls")  # token first, so only the failure sleeps
    reset = str(int(clock.now().timestamp()) + 30)
    headers = {k: v.replace("RESET+30", reset) for k, v in headers.items()}
    state.inject_failure("GET", r"/pulls$", status=status, headers=headers, times=1)
    assert client.request("GET", "/repos/acme/registry/pulls") == []
    assert clock.slept == expected_sleep


@pytest.mark.parametrize(
    "method",
    ["POST", "PUT", "PATCH"],
    ids=[
        "a POST answered 502 is not repeated by the client",
        "a PUT answered 502 is not repeated by the client",
        "a PATCH answered 502 is not repeated by the client",
    ],
)
def test_a_write_answered_with_a_server_error_is_not_retried_blindly(
    world,
    method: str,  # type: ignore[no-untyped-def]
) -> None:
    # The write may have taken effect: the outbox finds out before writing again.
    state, app, clock = world
    client = app.installation(int(_repo(state, "acme/registry")))
    client.request("GET", "/repos/acme/registry/pulls")
    state.inject_failure(method, r"/pulls/1/merge$|/check-runs|/comments", status=502, times=1)
    path = {
        "POST": "/repos/acme/registry/check-runs",
        "PUT": "/repos/acme/registry/pulls/1/merge",
        "PATCH": "/repos/acme/registry/issues/comments/1",
    }[method]
    with pytest.raises(GitHubError) as err:
        client.request(method, path, json={})
    assert err.value.status == 502
    assert clock.slept == []


def test_a_plain_403_is_a_permission_error_and_is_not_retried(world) -> None:  # type: ignore[no-untyped-def]
    state, app, clock = world
    client = app.installation(int(_repo(state, "acme/registry")))
    state.inject_failure("GET", r"/pulls$", status=403, times=1)
    with pytest.raises(GitHubError) as err:
        client.request("GET", "/repos/acme/registry/pulls")
    assert err.value.status == 403
    assert clock.slept == []


def test_a_wait_longer_than_allowed_is_left_to_the_inbox_not_slept(world) -> None:  # type: ignore[no-untyped-def]
    state, app, clock = world
    client = app.installation(int(_repo(state, "acme/registry")))
    state.inject_failure("GET", r"/pulls$", status=429, headers={"Retry-After": "3600"}, times=1)
    with pytest.raises(GitHubError) as err:
        client.request("GET", "/repos/acme/registry/pulls")
    assert err.value.status == 429
    assert clock.slept == []


def test_errors_never_carry_the_token(world) -> None:  # type: ignore[no-untyped-def]
    state, app, _ = world
    client = app.installation(int(_repo(state, "acme/registry")))
    token = client.installation_token()
    with pytest.raises(GitHubError) as err:
        client.request("GET", "/repos/acme/missing/pulls")
    assert token not in str(err.value) and token not in repr(err.value)
