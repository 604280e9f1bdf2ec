"""The intervention's defined components and supervision's topics: configured lists, so that
what each session covered (fidelity) and what supervision covered are recorded in the
programme's own terms (DOMAIN.md section 8)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

DEFAULT_COMPONENTS: Final[tuple[str, ...]] = (
    "emotional-support", "understanding-abuse", "safety-planning", "social-connections",
    "practical-help", "goals-and-next-steps")
"""Emotional support; understanding abuse and its effect on mental health; safety planning;
building social connections; practical help and advocacy; goals and next steps."""
DEFAULT_SUPERVISION_TOPICS: Final[tuple[str, ...]] = (
    "case-review", "safeguarding", "intervention-components", "boundaries",
    "mentor-wellbeing", "training-needs")


@dataclass(frozen=True)
class Intervention:
    """The configured components of the intervention and topics of supervision."""

    components: tuple[str, ...] = DEFAULT_COMPONENTS
    supervision_topics: tuple[str, ...] = DEFAULT_SUPERVISION_TOPICS

    def unknown_components(self, given: Iterable[str]) -> list[str]:
        """The codes in ``given`` that are not configured components."""
        return [code for code in given if code not in self.components]

    def unknown_topics(self, given: Iterable[str]) -> list[str]:
        """The codes in ``given`` that are not configured supervision topics."""
        return [code for code in given if code not in self.supervision_topics]
