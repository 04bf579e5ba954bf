"""Show a model's shadow or canary stage as a GitHub Deployment, exactly once per stage.

One convergent outbox effect per (repo, environment, SHA): the newest requested status wins.
A create whose answer was lost is found again by the effect key Shipyard writes into the
deployment's `payload`, and a status already shown is not posted twice, so a retry after a
timeout, a crash or a second replica leaves one deployment with one status per change.
"""

from __future__ import annotations

from typing import Any, Literal

from bot.github.api import InstallationClient
from bot.github.objects import Deployment, DeploymentStatus
from bot.runtime import outbox

KIND = "deployment"
TASK = "deploy:shipyard"
DESCRIPTION_LIMIT = 140  # GitHub rejects longer status descriptions

State = Literal["queued", "in_progress", "success", "failure", "error", "inactive"]


def show(
    rt: outbox.Runtime,
    *,
    installation_id: int,
    repo: str,
    sha: str,
    environment: str,
    state: State,
    description: str,
    environment_url: str = "",
    transient: bool = True,
    production: bool = False,
    version: int | None = None,
) -> outbox.EffectState:
    """Ask for the deployment of `sha` to `environment` to show `state`; carried out now if it
    can be, else by the outbox's background retries."""
    key = outbox.effect_key(KIND, repo, environment, sha)
    payload = {
        "repo": repo,
        "sha": sha,
        "environment": environment,
        "transient": transient,
        "production": production,
        "status": {
            "state": state,
            "description": _clip(description),
            "environment_url": environment_url,
        },
    }
    return outbox.submit(
        rt,
        key=key,
        kind=KIND,
        payload=payload,
        installation_id=installation_id,
        replace=True,
        version=version,
    )


def _clip(text: str) -> str:
    return text if len(text) <= DESCRIPTION_LIMIT else text[: DESCRIPTION_LIMIT - 1] + "…"


def _run(attempt: outbox.Attempt) -> dict[str, Any]:
    client = attempt.client()
    payload = attempt.payload
    repo: str = payload["repo"]
    key = outbox.effect_key(KIND, repo, payload["environment"], payload["sha"])
    deployment_id = attempt.result.get("deployment_id") or _find_existing(client, payload, key)
    if deployment_id is None:
        created = Deployment.model_validate(
            client.request(
                "POST",
                f"/repos/{repo}/deployments",
                json={
                    "ref": payload["sha"],
                    "task": TASK,
                    "environment": payload["environment"],
                    "description": payload["status"]["description"],
                    "payload": {"shipyard_effect": key},
                    "auto_merge": False,  # never let GitHub merge the base into the PR
                    "required_contexts": [],  # Shipyard's own checks are what gates it
                    "transient_environment": payload["transient"],
                    "production_environment": bool(payload.get("production", False)),
                },
            )
        )
        deployment_id = created.id
    wanted: dict[str, str] = payload["status"]
    shown = attempt.result.get("shown")
    if shown != wanted and not (
        attempt.in_doubt and _newest_is(client, repo, deployment_id, wanted)
    ):
        client.request(
            "POST",
            f"/repos/{repo}/deployments/{deployment_id}/statuses",
            json={**wanted, "auto_inactive": False},
        )
    return {"deployment_id": int(deployment_id), "shown": wanted}


def _find_existing(client: InstallationClient, payload: dict[str, Any], key: str) -> int | None:
    found = client.request(
        "GET",
        f"/repos/{payload['repo']}/deployments",
        params={
            "sha": payload["sha"],
            "environment": payload["environment"],
            "task": TASK,
            "per_page": 100,
        },
    )
    for raw in found if isinstance(found, list) else []:
        deployment = Deployment.model_validate(raw)
        if (
            isinstance(deployment.payload, dict)
            and deployment.payload.get("shipyard_effect") == key
        ):
            return deployment.id
    return None


def _newest_is(
    client: InstallationClient, repo: str, deployment_id: int, wanted: dict[str, str]
) -> bool:
    """Whether an earlier attempt's status is already the newest one shown."""
    found = client.request(
        "GET", f"/repos/{repo}/deployments/{deployment_id}/statuses", params={"per_page": 1}
    )
    if not isinstance(found, list) or not found:
        return False
    newest = DeploymentStatus.model_validate(found[0])
    return newest.state == wanted["state"] and (newest.description or "") == wanted["description"]


outbox.register(KIND, _run)
