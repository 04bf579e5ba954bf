"""CommentEvent: the one typed shape every comment-like event takes before command logic sees it."""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Self

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from bot.github.objects import Installation, Repository, User


class CommentSource(StrEnum):
    ISSUE_COMMENT = "issue_comment"
    PULL_REQUEST_REVIEW = "pull_request_review"
    REVIEW_COMMENT = "review_comment"
    SLACK = "slack"


class AuthorType(StrEnum):
    USER = "User"
    BOT = "Bot"


class AuthorAssociation(StrEnum):
    """GitHub's author_association; Slack events carry NONE."""

    OWNER = "OWNER"
    MEMBER = "MEMBER"
    COLLABORATOR = "COLLABORATOR"
    CONTRIBUTOR = "CONTRIBUTOR"
    FIRST_TIME_CONTRIBUTOR = "FIRST_TIME_CONTRIBUTOR"
    FIRST_TIMER = "FIRST_TIMER"
    MANNEQUIN = "MANNEQUIN"
    NONE = "NONE"


class CommentAction(StrEnum):
    CREATED = "created"
    EDITED = "edited"
    DELETED = "deleted"
    SUBMITTED = "submitted"  # a review
    DISMISSED = "dismissed"  # a review; GitHub sends it, it carries no new text


class CommentEvent(BaseModel):
    """A comment, review body or Slack command, reduced to what command handling needs."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    source: CommentSource
    repository: str = Field(pattern=r"^[^/\s]+/[^/\s]+$", description="owner/name")
    pr_number: int = Field(ge=1)
    author: str = Field(min_length=1, description="The author's login.")
    author_type: AuthorType
    author_association: AuthorAssociation
    body: str
    action: CommentAction
    comment_id: int | None = None
    html_url: str = Field(description="The comment on GitHub; for Slack, the pull request.")
    installation_id: int | None = None
    slack_team_id: str | None = None
    slack_user_id: str | None = None
    received_at: AwareDatetime = Field(description="When the bot got it (or GitHub stamped it).")

    @model_validator(mode="after")
    def _slack_ids_only_from_slack(self) -> Self:
        from_slack = self.source is CommentSource.SLACK
        has_ids = self.slack_team_id is not None and self.slack_user_id is not None
        has_any = self.slack_team_id is not None or self.slack_user_id is not None
        if from_slack and not has_ids:
            raise ValueError("a Slack event needs slack_team_id and slack_user_id")
        if not from_slack and has_any:
            raise ValueError("only Slack events carry Slack ids")
        return self


class _Part(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class _Comment(_Part):
    id: int
    body: str | None = None
    html_url: str
    user: User
    author_association: AuthorAssociation
    created_at: AwareDatetime | None = None
    updated_at: AwareDatetime | None = None
    submitted_at: AwareDatetime | None = None  # reviews

    def written_at(self) -> AwareDatetime:
        """When the text took its current form, as GitHub stamped it."""
        stamp = self.updated_at or self.submitted_at or self.created_at
        if stamp is None:
            raise ValueError("the payload has no timestamp; pass received_at")
        return stamp


class _PullLink(_Part):
    url: str | None = None


class _IssueRef(_Part):
    number: int
    pull_request: _PullLink | None = None  # present only when the issue is a pull request


class _PullRef(_Part):
    number: int


class _Common(_Part):
    action: CommentAction
    repository: Repository
    installation: Installation | None = None


class _IssueCommentPayload(_Common):
    issue: _IssueRef
    comment: _Comment


class _ReviewPayload(_Common):
    pull_request: _PullRef
    review: _Comment


class _ReviewCommentPayload(_Common):
    pull_request: _PullRef
    comment: _Comment


def from_issue_comment(
    payload: dict[str, Any], *, received_at: AwareDatetime | None = None
) -> CommentEvent | None:
    """An ``issue_comment`` webhook as a CommentEvent; None when the issue is not a pull request.

    Like the other constructors, it raises pydantic's ValidationError for a payload of another
    shape, and without ``received_at`` it uses GitHub's own timestamp on the comment.
    """
    parsed = _IssueCommentPayload.model_validate(payload)
    if parsed.issue.pull_request is None:
        return None
    return _event(
        CommentSource.ISSUE_COMMENT, parsed, parsed.comment, parsed.issue.number, received_at
    )


def from_pull_request_review(
    payload: dict[str, Any], *, received_at: AwareDatetime | None = None
) -> CommentEvent:
    """A ``pull_request_review`` webhook (its body; an empty review has body "")."""
    parsed = _ReviewPayload.model_validate(payload)
    return _event(
        CommentSource.PULL_REQUEST_REVIEW,
        parsed,
        parsed.review,
        parsed.pull_request.number,
        received_at,
    )


def from_review_comment(
    payload: dict[str, Any], *, received_at: AwareDatetime | None = None
) -> CommentEvent:
    """A ``pull_request_review_comment`` webhook (a comment on a line of the diff)."""
    parsed = _ReviewCommentPayload.model_validate(payload)
    return _event(
        CommentSource.REVIEW_COMMENT,
        parsed,
        parsed.comment,
        parsed.pull_request.number,
        received_at,
    )


def _event(
    source: CommentSource,
    payload: _Common,
    comment: _Comment,
    pr_number: int,
    received_at: AwareDatetime | None,
) -> CommentEvent:
    return CommentEvent(
        source=source,
        repository=payload.repository.full_name,
        pr_number=pr_number,
        author=comment.user.login,
        # GitHub apps comment as "Bot"; anything else (User, Mannequin) is a person's account.
        author_type=AuthorType.BOT if comment.user.type == "Bot" else AuthorType.USER,
        author_association=comment.author_association,
        body=comment.body or "",
        action=payload.action,
        comment_id=comment.id,
        html_url=comment.html_url,
        installation_id=payload.installation.id if payload.installation else None,
        received_at=received_at or comment.written_at(),
    )


def should_ignore(event: CommentEvent, *, bot_login: str) -> str | None:
    """Why commands in ``event`` must not run, or None when they may.

    ``bot_login`` is the App's login, ``<slug>[bot]`` (a bare slug is accepted too).
    """
    own_login = bot_login if bot_login.endswith("[bot]") else f"{bot_login}[bot]"
    if event.action is CommentAction.EDITED:
        return "the comment was edited; only new comments carry commands"
    if event.action is CommentAction.DELETED:
        return "the comment was deleted"
    if event.action is CommentAction.DISMISSED:
        return "the review was dismissed"
    if event.author.casefold() == own_login.casefold():
        return "the comment is the bot's own"
    if event.author_type is AuthorType.BOT:
        return "the author is a bot"
    if not event.body.strip():
        return "the comment is empty"
    return None
