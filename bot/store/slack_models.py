"""Slack tables: requests already seen (dedupe) and the one live message per promotion."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from bot.store.models import Base, UtcDateTime


class SlackRequest(Base):
    """A verified Slack request, keyed by the hash of its signed body: a replay finds its row."""

    __tablename__ = "slack_requests"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    body_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[str] = mapped_column(String(40))
    received_at: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)


class SlackMessage(Base):
    """The channel message of one promotion (repo, PR, head SHA), edited in place."""

    __tablename__ = "slack_messages"
    __table_args__ = (UniqueConstraint("repository", "pr_number", "head_sha"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    repository: Mapped[str] = mapped_column(String(300))
    pr_number: Mapped[int] = mapped_column(Integer)
    head_sha: Mapped[str] = mapped_column(String(64))
    channel: Mapped[str] = mapped_column(String(40))
    ts: Mapped[str | None] = mapped_column(String(40))  # None while the first post is under way
    rendered_sha256: Mapped[str | None] = mapped_column(String(64))
    posted_at: Mapped[datetime] = mapped_column(UtcDateTime())
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())
