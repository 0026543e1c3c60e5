"""The training schedule of one run (paper §3.3), typed: what the solver file and the
training loop read, built once from the config (``solver.*``) and the run's iteration
count, and handed as it is to ``prototxt.generate.solver_text``.

This module imports only the standard library.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass


@dataclass(frozen=True)
class Schedule:
    base_lr: float
    lr_policy: str            # Caffe's: fixed, step, multistep
    gamma: float
    stepvalues: tuple         # the multistep steps before max_iter
    max_iter: int
    test_interval: int        # validation every N iterations (driven from Python)
    snapshot: int             # snapshot every N iterations (0: at every validation point)

    @classmethod
    def from_config(cls, cfg: dict, max_iter: int | None = None) -> "Schedule":
        """``solver.*`` of the config, run for ``max_iter`` (default solver.max_iter);
        steps at or past the end are dropped."""
        s = cfg["solver"]
        mi = int(s["max_iter"] if max_iter is None else max_iter)
        return cls(float(s["base_lr"]), s["lr_policy"], float(s["gamma"]),
                   tuple(int(v) for v in s["stepvalues"] if int(v) < mi), mi,
                   int(s["test_interval"]), int(s["snapshot"]))

    def replace(self, **changes) -> "Schedule":
        return dataclasses.replace(self, **changes)

    def lr_at(self, it: int) -> float:
        """Caffe's learning rate at iteration ``it`` for fixed and multistep policies."""
        if self.lr_policy == "multistep":
            return self.base_lr * self.gamma ** sum(1 for s in self.stepvalues if it >= s)
        return self.base_lr
