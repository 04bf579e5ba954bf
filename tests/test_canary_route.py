"""The route a rollout wants, from its row alone: what a visit applies after a crash between
writing the row and changing traffic (applying it again changes nothing)."""

from __future__ import annotations

from dataclasses import replace

from bot.rollout.canary_route import Intent, wanted_route
from gateway.routing import CanarySlot, Deployed, ModelRoute, ShadowSlot

OLD = Deployed(version="v41", sha256="a" * 64)
NEW = Deployed(version="pr7-abc", sha256="b" * 64)
INTENT = Intent(
    status="running",
    version=NEW.version,
    sha256=NEW.sha256,
    previous_version=OLD.version,
    previous_sha256=OLD.sha256,
    weight=0.25,
)
SHADOW = ShadowSlot(version="pr9-def", sha256="c" * 64, mirror_share=1.0)


def test_a_running_canary_takes_its_steps_share_and_keeps_the_shadow() -> None:
    current = ModelRoute(production=OLD, shadow=SHADOW)
    route = wanted_route(INTENT, current)
    assert route == ModelRoute(
        production=OLD,
        shadow=SHADOW,
        canary=CanarySlot(version=NEW.version, sha256=NEW.sha256, weight=0.25),
    )
    # Applying what is in effect is the same route: a repeated visit changes nothing.
    assert wanted_route(INTENT, route) == route


def test_a_crash_after_the_row_moved_a_step_is_finished_by_the_next_visit() -> None:
    at_5 = ModelRoute(
        production=OLD, canary=CanarySlot(version=NEW.version, sha256=NEW.sha256, weight=0.05)
    )
    route = wanted_route(INTENT, at_5)
    assert route is not None and route.canary is not None and route.canary.weight == 0.25


def test_promotion_makes_the_canary_production() -> None:
    current = ModelRoute(
        production=OLD, canary=CanarySlot(version=NEW.version, sha256=NEW.sha256, weight=1.0)
    )
    assert wanted_route(replace(INTENT, status="promoted"), current) == ModelRoute(production=NEW)


def test_a_rollback_takes_only_its_own_canary_away() -> None:
    ours = CanarySlot(version=NEW.version, sha256=NEW.sha256, weight=0.25)
    rolled_back = replace(INTENT, status="rolled_back")
    assert wanted_route(rolled_back, ModelRoute(production=OLD, canary=ours)) == ModelRoute(
        production=OLD
    )
    other = CanarySlot(version="pr8-xyz", sha256="d" * 64, weight=0.05)
    assert wanted_route(rolled_back, ModelRoute(production=OLD, canary=other)) == ModelRoute(
        production=OLD, canary=other
    )
    # Promoted already (a rollback of a promoted model is a new rollout): left alone.
    assert wanted_route(rolled_back, ModelRoute(production=NEW)) is None


def test_a_production_someone_else_set_is_never_overwritten() -> None:
    elsewhere = ModelRoute(production=Deployed(version="hotfix-1", sha256="e" * 64))
    for status in ("running", "paused", "promoted", "rolled_back"):
        assert wanted_route(replace(INTENT, status=status), elsewhere) is None


def test_a_canary_never_shadows_itself() -> None:
    self_shadow = ShadowSlot(version=NEW.version, sha256=NEW.sha256, mirror_share=1.0)
    route = wanted_route(INTENT, ModelRoute(production=OLD, shadow=self_shadow))
    assert route is not None and route.shadow is None
