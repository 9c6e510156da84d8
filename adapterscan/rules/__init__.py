"""Detection rules: data in signatures/, validated and bound to the checks that implement them."""

from adapterscan.rules.loader import default_signatures_dir, load_ruleset
from adapterscan.rules.model import Rule, RuleDocs, RuleSet

__all__ = ["Rule", "RuleDocs", "RuleSet", "default_signatures_dir", "load_ruleset"]
