"""What the API returns, as typed objects. Each keeps the JSON it was read from in `raw`."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

#: What every result made by the sandbox's simulated workers says first in its notes.
SIMULATED_MARK = "SIMULATED:"

#: Task states after which nothing changes any more.
FINAL_STATUSES = frozenset({"approved", "refunded", "cancelled", "expired"})


@dataclass(frozen=True)
class TaskResult:
    """One human's result for a task."""

    assignment_id: str
    worker_id: str
    status: str
    #: The answer as the worker wrote it.
    answer: str
    #: The answer read in the task's response format: "yes", an option, a number…
    structured: Any
    notes: str | None
    #: Proof sent with the answer: text, photo links, GPS position.
    proof: dict[str, Any] | None
    submitted_at: str
    paid_cents: int
    #: Reasons to doubt the result (too fast, a reused photo …), each {"rule", "detail"}.
    flags: list[dict[str, Any]]
    raw: dict[str, Any] = field(repr=False)

    @property
    def simulated(self) -> bool:
        """True when a simulated worker of the sandbox made this result, not a person."""
        return (self.notes or "").startswith(SIMULATED_MARK)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TaskResult:
        return cls(
            assignment_id=data["assignment_id"],
            worker_id=data["worker_id"],
            status=data["status"],
            answer=data["answer"],
            structured=data.get("structured"),
            notes=data.get("notes"),
            proof=data.get("proof"),
            submitted_at=data["submitted_at"],
            paid_cents=int(data.get("paid_cents", 0)),
            flags=list(data.get("flags", [])),
            raw=data,
        )


@dataclass(frozen=True)
class Task:
    """A task as its agent sees it."""

    task_id: str
    kind: str
    #: open, in_progress, completed, approved, refunded, cancelled or expired.
    status: str
    instruction: str
    #: Budget per human, in dollars.
    budget: Decimal
    budget_cents: int
    held_cents: int
    #: The human's answer once a result is in, else None.
    answer: str | None
    results: list[TaskResult]
    deadline: str
    review_deadline: str | None
    #: The resource that always holds the task's latest state (for MCP clients).
    resource_uri: str
    #: What you can do next, in plain words.
    next_step: str
    raw: dict[str, Any] = field(repr=False)

    @property
    def has_result(self) -> bool:
        """Whether a human's answer is in."""
        return self.answer is not None or bool(self.results)

    @property
    def is_final(self) -> bool:
        """Whether the task has ended (approved, refunded, cancelled or expired)."""
        return self.status in FINAL_STATUSES

    @property
    def structured(self) -> Any:
        """The first result's answer read in the task's response format, if any."""
        return self.results[0].structured if self.results else None

    @property
    def simulated(self) -> bool:
        """True when the answer came from a simulated worker of the sandbox."""
        return any(result.simulated for result in self.results)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Task:
        return cls(
            task_id=data["task_id"],
            kind=data["kind"],
            status=data["status"],
            instruction=data["instruction"],
            budget=Decimal(str(data["budget"])),
            budget_cents=int(data["budget_cents"]),
            held_cents=int(data.get("held_cents", 0)),
            answer=data.get("answer"),
            results=[TaskResult.from_json(r) for r in data.get("results", [])],
            deadline=data["deadline"],
            review_deadline=data.get("review_deadline"),
            resource_uri=data.get("resource_uri", ""),
            next_step=data.get("next_step", ""),
            raw=data,
        )


@dataclass(frozen=True)
class TaskPage:
    """A page of tasks, newest first."""

    tasks: list[Task]
    #: Pass as `before` to `list_tasks` for the next page; None on the last page.
    next_cursor: str | None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TaskPage:
        return cls(
            tasks=[Task.from_json(t) for t in data.get("tasks", [])],
            next_cursor=data.get("next_cursor"),
        )


@dataclass(frozen=True)
class Balance:
    """An agent's money."""

    agent_id: str
    #: What new tasks can use, in dollars.
    available: Decimal
    available_cents: int
    held_cents: int
    spent_cents: int
    currency: str
    raw: dict[str, Any] = field(repr=False)

    @property
    def held(self) -> Decimal:
        """What is held in escrow for unfinished tasks, in dollars."""
        return Decimal(self.held_cents) / 100

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Balance:
        return cls(
            agent_id=data["agent_id"],
            available=Decimal(str(data["available"])),
            available_cents=int(data["available_cents"]),
            held_cents=int(data["held_cents"]),
            spent_cents=int(data["spent_cents"]),
            currency=data.get("currency", "USD"),
            raw=data,
        )
