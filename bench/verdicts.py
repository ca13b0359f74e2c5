"""PASS/FAIL lines for the served benchmarks' goals, and a summary at the end."""

from __future__ import annotations

import operator
import os

_COMPARISONS = {">=": operator.ge, "<=": operator.le}


def load_average() -> str:
    """The machine's 1, 5 and 15 minute load averages: it is shared, and its load moves the figures."""
    return ", ".join(f"{value:.2f}" for value in os.getloadavg())


def extra_env(pairs: list[str]) -> dict[str, str]:
    """--env NAME=VALUE options as a dict; figures measured with any are not the default deployment's."""
    settings = dict(pair.split("=", 1) for pair in pairs)
    if settings:
        print(f"NOT the default deployment: with {settings}")
    return settings


class Verdicts:
    def __init__(self) -> None:
        self.failed: list[str] = []
        self.passed = 0

    def check(self, name: str, value: float, comparison: str, goal: float, style: str = "{:.2f}") -> bool:
        met = _COMPARISONS[comparison](value, goal)
        print(
            f"  {'PASS' if met else 'FAIL'}  {name}: {style.format(value)} (goal {comparison} {style.format(goal)})"
        )
        if met:
            self.passed += 1
        else:
            self.failed.append(name)
        return met

    def summary(self) -> int:
        """Prints the tally; the exit status: 0 when every goal was met."""
        print(
            f"\n{self.passed} goals met, {len(self.failed)} missed"
            + (f": {', '.join(self.failed)}" if self.failed else "")
        )
        return 1 if self.failed else 0
