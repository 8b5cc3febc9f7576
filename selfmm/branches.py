"""Each branch at its own best validation epoch: our extension for a model trained on sources that each inform one
channel (MOSI the words, the speech corpora the voice, the face corpora the face).

Why: one epoch for the whole model trades the branches against each other. In the default model's multi-source
run the text branch peaks in the first epochs while the voice and face branches still improve, so any single
epoch over-trains one side or under-trains the other (docs/experiments.md). The text, audio and vision branches
(encoder and unimodal head) share no weights, so each can be kept from the epoch where its own validation score
was lowest; the fusion head, which reads all three, is taken from one of those epochs. Which assembly ships is
decided by the run's selection score on the validation split, against the best single epoch, so the assembly
is kept only where it is better as a whole.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

# The parameters and buffers of each branch, by name prefix in SelfMM's state dict.
BRANCHES = {"text": ("text_model.", "post_text."),
            "audio": ("audio_model.", "post_audio.", "audio_mean", "audio_std"),
            "vision": ("video_model.", "post_video.", "vision_mean", "vision_std")}
FUSION = ("post_fusion.",)
State = dict[str, Any]  # parameter or buffer name -> tensor, as in a state dict
# Per-branch validation scores from (outputs per head, labels, ids), lower being better; a branch left out of the
# returned dict (e.g. no validation rows inform it) stays at the best single epoch.
BranchScore = Callable[[dict[str, np.ndarray], np.ndarray, np.ndarray], dict[str, float]]


def part(state: State, prefixes: tuple[str, ...]) -> State:
    """A detached CPU copy of the entries of `state` whose names start with one of `prefixes`."""
    return {k: v.detach().cpu().clone() for k, v in state.items() if k.startswith(prefixes)}


@dataclass
class BranchBest:
    """The best epoch of each branch so far, with that epoch's branch weights and fusion head."""
    scores: dict[str, float] = field(default_factory=dict)
    epochs: dict[str, int] = field(default_factory=dict)
    states: dict[str, State] = field(default_factory=dict)

    def update(self, epoch: int, scores: dict[str, float], state: State) -> None:
        for name, score in scores.items():
            if np.isfinite(score) and score <= self.scores.get(name, float("inf")) - 1e-6:
                self.scores[name], self.epochs[name] = score, epoch
                self.states[name] = part(state, BRANCHES[name] + FUSION)

    @property
    def last_gain(self) -> int:
        """The latest epoch at which some branch improved (0 before any)."""
        return max(self.epochs.values(), default=0)

    def candidates(self, base: State) -> list[tuple[dict[str, int], State]]:
        """Assemblies of `base` (the best single epoch) with every recorded branch at its own best epoch, one per
        choice of the epoch the fusion head comes from. Empty when no branch was recorded."""
        if not self.states:
            return []
        branches = {k: v for name, s in self.states.items() for k, v in s.items() if not k.startswith(FUSION)}
        out = []
        for source in sorted(self.states, key=lambda name: self.epochs[name]):
            fusion = {k: v for k, v in self.states[source].items() if k.startswith(FUSION)}
            chosen = {**self.epochs, "fusion": self.epochs[source]}
            if any(c[0] == chosen for c in out):
                continue
            out.append((chosen, {**base, **branches, **fusion}))
        return out
