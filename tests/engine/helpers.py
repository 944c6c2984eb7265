"""What the engine's tests share: an attempt function that fails some attempts."""

from __future__ import annotations

import threading
import time
from typing import Any

import anyio
import anyio.lowlevel

from sched_accel._engine import Slot


class Flaky:
    """An attempt function: the first ``fails`` attempts of item ``bad`` fail and ask for a retry
    after ``delay``; it records when each attempt of each item started."""

    def __init__(self, bad: int, fails: int, delay: float) -> None:
        self.bad, self.fails, self.delay = bad, fails, delay
        self.started: list[tuple[int, float]] = []
        self.lock = threading.Lock()
        self.failures = 0

    def decide(self, slot: Slot[Any]) -> float | None:
        item = slot.args[0]
        with self.lock:
            self.started.append((item, time.perf_counter()))
            failing = item == self.bad and self.failures < self.fails
            if failing:
                self.failures += 1
        if failing:
            slot.error = ConnectionResetError(f"attempt {self.failures}")
            return self.delay
        slot.value = item * 10
        slot.error = None
        return None

    async def adecide(self, slot: Slot[Any]) -> float | None:
        await anyio.lowlevel.checkpoint()
        return self.decide(slot)
