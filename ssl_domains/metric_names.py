"""The closed sets of the scoring vocabulary that a run config names: the validation metrics
that early stopping can monitor and the decision-threshold rules. No heavy imports: the config
check (:mod:`ssl_domains.config`) reads them when a config is loaded, before any work starts,
and :mod:`ssl_domains.scoring` computes with them."""

from __future__ import annotations

__all__ = ["LOWER_IS_BETTER", "MONITORED_METRICS", "THRESHOLD_RULES", "parse_rule"]

#: Metrics where a smaller value is better (everything else: larger is better).
LOWER_IS_BETTER = frozenset({"loss", "log_loss", "brier", "ece", "hd95", "fp_per_case"})

#: What a validation pass reports, so what ``early_stopping.metric`` may name (besides
#: ``auto``): the mean loss; for a binary task the threshold-free metrics of
#: :func:`ssl_domains.scoring.metrics.classification_metrics` (AUROC, AUPRC, sensitivity at 90 %
#: specificity); for a multi-class task its arg-max metrics; for a dense (segmentation) task the
#: mean Dice, which it always keeps the best of. Pre-training validates the loss only.
MONITORED_METRICS = ("loss", "auroc", "auprc", "sensitivity_at_specificity", "sens_at_spec90",
                     "accuracy", "balanced_accuracy", "f1", "dice")

#: The rule spellings :func:`parse_rule` accepts.
THRESHOLD_RULES = ("youden", "f1", "spec90", "sensitivity_at_specificity:<x>", "fixed:<x>")


def _rule_value(rule: str, what: str) -> float:
    text = rule.split(":", 1)[1]
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"threshold rule {rule!r}: {text!r} is not a number "
                         f"(allowed rules: {', '.join(THRESHOLD_RULES)})") from None
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"threshold rule {rule!r}: {what} must be in [0, 1]")
    return value


def parse_rule(rule: str) -> tuple[str, float | None]:
    """Split a decision-threshold rule into its kind and number.

    Args:
        rule: One of :data:`THRESHOLD_RULES`, e.g. ``"youden"`` or ``"fixed:0.3"``.

    Returns:
        ``(kind, value)`` with kind in ``youden``, ``f1``, ``spec``, ``fixed``; ``value`` is the
        target specificity or the fixed threshold (None for youden and f1).

    Raises:
        ValueError: For an unknown rule or a number that is not one, or not in [0, 1]; the
            message lists the allowed rules.
    """
    name = rule.strip().lower()
    if name in ("youden", "f1"):
        return name, None
    if name == "spec90":
        return "spec", 0.9
    if name.startswith("sensitivity_at_specificity:"):
        return "spec", _rule_value(name, "specificity")
    if name.startswith("fixed:"):
        return "fixed", _rule_value(name, "a threshold on a probability")
    raise ValueError(f"unknown threshold rule {rule!r}; allowed: {', '.join(THRESHOLD_RULES)}")
