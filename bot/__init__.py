"""Shipyard bot: GitHub App + ChatOps for model promotion."""

__version__ = "0.1.0"
