"""Policies: findings in, verdict out."""

from adapterscan.policy.policy import Policy, load_policy

__all__ = ["Policy", "load_policy"]
