"""A simulated editing session: several pycrdt editors typing into one shared text, each
update sent as a real Yjs binary update (what a browser client would POST). Used by the
demo and the tests."""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass, field

import pycrdt

TEXT = "content"
"""The name of the shared text in the Yjs document."""

WORDS = ("budget", "draft", "review", "figures", "note", "agenda", "summary", "plan")


@dataclass
class Editor:
    """One editor's replica; :attr:`outbox` collects the updates of its own edits."""

    name: str
    doc: pycrdt.Doc[pycrdt.Text] = field(default_factory=pycrdt.Doc)
    outbox: list[bytes] = field(default_factory=list)
    _receiving: bool = False

    def __post_init__(self) -> None:
        self.doc[TEXT] = pycrdt.Text()
        self.doc.observe(self._record)

    def _record(self, event: pycrdt.TransactionEvent) -> None:
        if not self._receiving:  # only this editor's own edits go out
            self.outbox.append(bytes(event.update))

    @property
    def text(self) -> pycrdt.Text:
        """The shared text."""
        text: pycrdt.Text = self.doc[TEXT]
        return text

    def type_at_random(self, rng: random.Random) -> None:
        """Insert a word somewhere, or now and then delete a little."""
        text = str(self.text)
        starts = [0] + [i + 1 for i, char in enumerate(text) if char == " "]
        words = list(itertools.pairwise(starts))
        if len(words) > 4 and rng.random() < 0.2:
            start, end = rng.choice(words)
            del self.text[start:end]
        else:
            self.text.insert(rng.choice(starts), f"{self.name}:{rng.choice(WORDS)} ")

    def receive(self, update: bytes) -> None:
        """Apply another editor's update (as the sync server would relay it)."""
        self._receiving = True
        try:
            self.doc.apply_update(update)
        finally:
            self._receiving = False


@dataclass
class Session:
    """Editors sharing one document; :meth:`round` makes each type once and relays."""

    editors: int = 3
    seed: int = 7
    people: list[Editor] = field(init=False)
    rng: random.Random = field(init=False)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        self.people = [Editor(f"editor{n + 1}") for n in range(self.editors)]

    def round(self) -> list[bytes]:
        """Every editor types, then each one's updates reach the others; the updates in
        sending order (what the server receives)."""
        for person in self.people:
            person.type_at_random(self.rng)
        sent: list[bytes] = []
        for person in self.people:
            for update in person.outbox:
                sent.append(update)
                for other in self.people:
                    if other is not person:
                        other.receive(update)
            person.outbox.clear()
        return sent

    def text(self) -> str:
        """The text every replica agrees on."""
        texts = {str(person.text) for person in self.people}
        assert len(texts) == 1, "replicas diverged"
        return texts.pop()


def session(editors: int = 3, rounds: int = 10, seed: int = 7) -> tuple[list[bytes], str]:
    """Run a session of ``rounds``: every update in sending order, and the final text."""
    running = Session(editors, seed)
    sent = [update for _ in range(rounds) for update in running.round()]
    return sent, running.text()


def text_of(state: bytes) -> str:
    """The shared text of a Yjs state (one update)."""
    doc: pycrdt.Doc[pycrdt.Text] = pycrdt.Doc()
    doc[TEXT] = text = pycrdt.Text()
    doc.apply_update(state)
    return str(text)
