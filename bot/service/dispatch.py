"""Route a stored delivery to its handler; everything else is acknowledged and ignored."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ValidationError

from bot.commands.run_commands import (
    run_comment_commands,
    run_review_commands,
    run_review_comment_commands,
)
from bot.github.events import PullRequestEvent
from bot.promotion.reevaluate_after_merge import reevaluate_after_merge
from bot.promotion.register_candidates import register_candidates
from bot.rollout import canary_stage, shadow_stage
from bot.runtime.context import BotContext
from bot.slack.durable import handle_slack_action

Handler = Callable[[BotContext, Any], None]

# event name -> (payload model or None for raw payloads, handlers in order)
ROUTES: dict[str, tuple[type[BaseModel] | None, list[Handler]]] = {
    "pull_request": (
        PullRequestEvent,
        [
            register_candidates,
            reevaluate_after_merge,
            shadow_stage.on_pull_request,
            canary_stage.on_pull_request,
        ],
    ),
    "issue_comment": (None, [run_comment_commands]),
    "pull_request_review": (None, [run_review_commands]),
    "pull_request_review_comment": (None, [run_review_comment_commands]),
    "slack_action": (None, [handle_slack_action]),
}


def dispatch(ctx: BotContext, event: str, payload: dict[str, Any]) -> bool:
    """Handle one event; False when no handler applies (unknown event or unexpected shape)."""
    route = ROUTES.get(event)
    if route is None:
        return False
    model, handlers = route
    typed: Any = payload
    if model is not None:
        try:
            typed = model.model_validate(payload)
        except ValidationError:
            return False
    for handler in handlers:
        handler(ctx, typed)
    return True
