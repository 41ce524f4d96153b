"""Where Ray Train's workers ran: a small Ray actor they report to when they start.

Kept apart from forecaster.distributed.train so the actor's process imports
nothing heavy (no TensorFlow).
"""

from __future__ import annotations


class WorkerRegistry:
    """A Ray actor the workers tell where they run (the last start of each rank)."""

    def __init__(self):
        self.by_rank: dict[int, dict] = {}
        self.starts: dict[int, int] = {}
        self.seconds: dict[int, float] = {}

    def record(self, rank: int, info: dict) -> None:
        """Keep `info` as rank `rank`'s; count its starts."""
        self.starts[rank] = self.starts.get(rank, 0) + 1
        self.by_rank[rank] = {**info, "attempt": self.starts[rank]}

    def epoch_done(self, epoch: int, seconds: float) -> None:
        """Rank 0's wall time of `epoch` (a rerun after a restart replaces it)."""
        self.seconds[epoch] = seconds

    def epoch_seconds(self) -> list[float]:
        """The seconds of every epoch, in order."""
        return [self.seconds[epoch] for epoch in sorted(self.seconds)]

    def placements(self) -> dict[int, dict]:
        """{rank: where it ran and what it held} at its last start."""
        return dict(self.by_rank)
