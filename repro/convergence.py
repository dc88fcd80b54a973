"""Convergence, measured: did a training run stop improving before its budget ran out?

The rule (stated in every record): the monitored curve (a loss, lower is better; pass ``higher=True``
for an accuracy) improved by less than ``tol`` (relative to the curve's total improvement) over the
last ``tail`` share of the budget. A curve still falling at the end is not evidence either way: a claim
about trained models whose runs did not converge is ``inconclusive`` (unless the claim is about a
budget), and the estimate says what budget would settle it.
"""
from __future__ import annotations

import math
from typing import Sequence


def check(curve: Sequence[float], *, budget: str, tail: float = 0.2, tol: float = 0.05,
          higher: bool = False, unit_per_point: float | None = None, unit: str = "") -> dict:
    """Judge one training curve (one value per epoch or per check, in order).

    ``budget`` says what was spent ('40 epochs', '6000 G steps'); ``unit_per_point`` and ``unit``
    turn the estimate into that unit (e.g. 150 steps per point, 'steps')."""
    ys = [float(y) for y in curve if y is not None and math.isfinite(float(y))]
    rule = (f"converged when the last {tail:.0%} of the budget improved the monitored value by less "
            f"than {tol:.0%} of its total improvement")
    if len(ys) < 3:
        return {"converged": False, "rule": rule, "budget": budget, "tail_change": None,
                "estimate": "too few points on the curve to tell"}
    if higher:
        ys = [-y for y in ys]
    k = max(1, int(round(len(ys) * tail)))
    total = ys[0] - min(ys)
    recent = ys[-k - 1] - min(ys[-k - 1:])
    share = 0.0 if total <= 0 else max(0.0, recent) / total
    converged = share < tol
    estimate = ""
    if not converged:
        # the tail's improvement share halves with each doubling of a geometrically settling curve
        doublings = max(1, math.ceil(math.log2(share / tol))) if share > 0 else 1
        factor = 2 ** doublings
        if unit_per_point:
            estimate = f"about {factor}x the budget (~{factor * len(curve) * unit_per_point:g} {unit})".strip()
        else:
            estimate = f"about {factor}x the budget"
    return {"converged": converged, "rule": rule, "budget": budget, "tail_change": round(share, 4),
            "estimate": estimate}


def from_history(history, *, monitor: str = "loss", budget: str | None = None, **kw) -> dict:
    """The same check on a Keras ``History`` (``fit``'s return value)."""
    curve = history.history.get(monitor, [])
    higher = kw.pop("higher", "acc" in monitor)
    return check(curve, budget=budget or f"{len(curve)} epochs", higher=higher, **kw)


def from_early_stopping(history, stop, *, patience: int, epochs: int) -> dict:
    """A model trained with early stopping on ``val_loss``: converged when the stop fired; otherwise
    the same rule on the validation loss it watches (a training loss still falls when it stops)."""
    ran = len(history.history["loss"])
    if stop.stopped_epoch > 0:
        return {"converged": True, "rule": f"early stopping fired: val_loss did not improve for {patience} epochs",
                "budget": f"{ran} of at most {epochs} epochs", "tail_change": None, "estimate": ""}
    conv = from_history(history, monitor="val_loss", budget=f"{ran} of at most {epochs} epochs")
    conv["rule"] = "val_loss (what early stopping watches): " + conv["rule"]
    return conv
