"""What :func:`fwdjit.train` returns: :class:`TrainResult` (parameters, per-step losses and times)."""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

__all__ = ["TrainResult", "PHASES"]

PHASES = ("batch", "directions", "jvp", "update")


@dataclass
class TrainResult:
    """What ``fwdjit.train`` returns.

    params : the trained parameters (new arrays, same shapes and dtypes).
    losses : loss of the minibatch at each step, before that step's update.
    step_times : wall-clock seconds of each step, measured inside the compiled loop.
    times : cumulative seconds at the end of each step (``np.cumsum(step_times)``).
    phase_times : seconds per step and phase (``PHASES``: batch, directions, jvp,
        update; with one direction per step the next direction is drawn inside
        the update), or None unless ``timing="phases"``.
    lr : learning rate used at each step.
    wall_time : total seconds of the training calls, Python overhead included,
        compilation excluded (``compile_time``).
    """
    params: tuple
    losses: np.ndarray
    step_times: np.ndarray
    phase_times: np.ndarray | None
    lr: np.ndarray
    wall_time: float
    compile_time: float
    steps_done: int
    config: dict
    source: str
    evals: list = field(default_factory=list)
    stopped: str | None = None

    @property
    def times(self):
        return np.cumsum(self.step_times)

    @property
    def median_step_time(self):
        return float(np.median(self.step_times)) if len(self.step_times) else float("nan")

    def phase_share(self, skip=0):
        """Median share of each phase in the step time (dict), steps before ``skip`` ignored."""
        if self.phase_times is None or len(self.phase_times) <= skip:
            return None
        ph = self.phase_times[skip:]
        tot = ph.sum(axis=1)
        tot[tot == 0] = np.nan
        return {name: float(np.nanmedian(ph[:, k] / tot)) for k, name in enumerate(PHASES)}

    def sampling_update_share(self, skip=0):
        """Median share of direction sampling + update in the step time."""
        if self.phase_times is None or len(self.phase_times) <= skip:
            return None
        ph = self.phase_times[skip:]
        tot = ph.sum(axis=1)
        tot[tot == 0] = np.nan
        return float(np.nanmedian((ph[:, 1] + ph[:, 3]) / tot))

    def summary(self):
        n = self.steps_done
        if n == 0:
            return "no steps"
        k = max(1, min(100, n // 10))
        s = (f"{n} steps in {self.wall_time:.2f} s ({n / max(self.wall_time, 1e-12):.1f} steps/s, "
             f"median step {self.median_step_time * 1e3:.3f} ms); loss {np.mean(self.losses[:k]):.4g} -> "
             f"{np.mean(self.losses[n - k:n]):.4g} (means of {k} steps)")
        share = self.sampling_update_share()
        if share is not None:
            s += f"; sampling+update {100 * share:.1f}% of a step"
        return s
