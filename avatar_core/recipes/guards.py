"""Non-finite steps: a NaN or infinite loss or gradient norm skips the update instead of poisoning the weights.

A step whose loss or (pre-clipping) gradient norm is not finite changes nothing: the optimiser does
not step, the gradients are dropped, and the step is logged with `skipped: true`. The step counter
and the learning-rate schedule still advance, so a resumed run and an uninterrupted one stay step
for step identical. `optim.max_nonfinite_steps` such steps in a row stop the stage with a
`NonFiniteError` naming the key, the steps and the last checkpoint, which was written before the
streak and is left as it was (the loops write no periodic checkpoint while a streak lasts): a rerun
(with, say, a lower learning rate) resumes from it.
"""

from __future__ import annotations

import logging
import math
import re
import warnings
from dataclasses import dataclass

log = logging.getLogger(__name__)


class NonFiniteError(RuntimeError):
    """Too many consecutive non-finite steps; the message names the params key that sets the limit."""


@dataclass
class NonFiniteGuard:
    key: str  # params key of the limit, e.g. "rl.s1.optim.max_nonfinite_steps"
    limit: int
    streak: int = 0  # consecutive non-finite steps up to now
    skipped: int = 0  # all skipped steps of the run

    def admit(self, step: int, loss: float, grad_norm: float) -> bool:
        """True if the step may update the weights; counts and logs it otherwise."""
        if math.isfinite(loss) and math.isfinite(grad_norm):
            self.streak = 0
            return True
        self.streak += 1
        self.skipped += 1
        log.warning(
            "step %d skipped: non-finite %s (loss %s, gradient norm %s); %d of %d allowed in a row",
            step,
            "loss" if not math.isfinite(loss) else "gradient",
            loss,
            grad_norm,
            self.streak,
            self.limit,
        )
        return False

    def check(self, step: int, checkpoint: str) -> None:
        """Raise NonFiniteError once `limit` steps in a row were skipped; `checkpoint` says which
        checkpoint a rerun resumes from."""
        if self.streak < self.limit:
            return
        first = step - self.streak + 1
        raise NonFiniteError(
            f"{self.key}: {self.streak} steps in a row ({first}-{step}) had a non-finite loss or "
            f"gradient norm and were skipped; the stage stopped without applying them. {checkpoint} "
            "Lower the learning rate, or check the starting checkpoint and the data, then run again."
        )

    def state_dict(self) -> dict[str, int]:
        return {"streak": self.streak, "skipped": self.skipped}

    def load_state_dict(self, state: dict[str, int] | None) -> None:
        state = state or {}
        self.streak, self.skipped = int(state.get("streak", 0)), int(state.get("skipped", 0))


def advance_schedule(scheduler) -> None:
    """scheduler.step() after a step that may have been skipped: torch warns when the optimiser did
    not step first, which is exactly what a skipped step means here."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=re.escape("Detected call of `lr_scheduler.step()`"))
        scheduler.step()


def checkpoint_note(run_dir, saved_step: int, start: str) -> str:
    """Where a rerun would start: the last run checkpoint, or the stage's starting model."""
    if saved_step > 0:
        return f"The last checkpoint ({run_dir}/state, step {saved_step}) is intact."
    return f"No checkpoint was written yet; a rerun starts again from {start}."
