"""Shipyard evaluators: candidate vs production, with evidence.

Pure: data in, `EvaluationReport` out. Nothing here knows GitHub or Slack.
"""

__version__ = "0.1.0"
