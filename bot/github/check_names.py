"""The names of Shipyard's check runs; branch protection requires the gate's."""

CANDIDATE_CHECK = "Shipyard / candidate"
EVALUATION_CHECK = "Shipyard / evaluation"
GATE_CHECK = "Shipyard / promotion-gate"


def candidate_check_name(model: str) -> str:
    """One candidate check per model directory."""
    return f"{CANDIDATE_CHECK} ({model})"


def evaluation_check_name(model: str) -> str:
    return f"{EVALUATION_CHECK} ({model})"
