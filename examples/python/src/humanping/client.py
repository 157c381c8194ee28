"""The HumanPing client: one method per task type, plus the calls that follow a task up.

Every call goes to HumanPing's REST API (`/v1`). A task method creates the task, then waits for
the human's answer through the API's own long poll (`GET /v1/tasks/{id}?wait=…`, at most 120 s
per request, repeated until `wait` seconds have passed), and returns the task as it is then.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence
from decimal import Decimal, InvalidOperation
from types import TracebackType
from typing import Any, Literal, TypeAlias, TypedDict, Unpack
from urllib.parse import quote

import httpx

from .errors import HumanPingError
from .models import Balance, Task, TaskPage

#: Where the client sends requests unless told otherwise: a local `humanping serve`.
DEFAULT_BASE_URL = "http://127.0.0.1:8787"
#: How long a task method waits for the human's answer by default, in seconds.
DEFAULT_WAIT_SECONDS = 600.0
#: The longest wait the API grants one request; longer waits are made of several requests.
MAX_WAIT_PER_REQUEST = 120

Money: TypeAlias = "Decimal | int | float | str"
"""Dollars: 5, 5.0, "5.00" or Decimal("5.00"). Sent as exact decimal text."""

Location: TypeAlias = "str | Mapping[str, Any]"
"""An address, or {"address", "lat", "lng", "radius_m"}."""

ResponseFormat: TypeAlias = "Literal['yes_no', 'rating', 'number', 'text'] | Mapping[str, Any]"
""""yes_no", "rating", "number", "text", or e.g. {"type": "choice", "options": ["A", "B"]}."""

ProofKind: TypeAlias = "Literal['text', 'photo', 'gps']"


def _segment(text: str) -> str:
    """An id as one URL path segment, whatever it holds."""
    return quote(text, safe="")


class TaskOptions(TypedDict, total=False):
    """What every task method takes besides its own fields."""

    #: Background the human needs: who is asking, why, what matters.
    context: str
    #: Where the task happens: an address, or {"address", "lat", "lng", "radius_m"}.
    location: Location
    #: A language the worker must speak, e.g. "en" or "fr".
    language: str
    #: Dollars per human; defaults to the task type's standard budget.
    budget: Money
    #: When the task must be done: an RFC 3339 time, or "30m", "2h", "3d" from now.
    deadline: str
    #: The form of the answer: "yes_no", "rating", "number", "text", or a choice object.
    response: ResponseFormat
    #: Proof the worker must send: any of "text", "photo", "gps".
    proof: Sequence[ProofKind] | ProofKind
    #: Your own key-value data, returned with the task (at most 16 KB).
    metadata: Mapping[str, Any]
    #: A public URL that receives a signed POST each time the task changes state.
    callback_url: str
    #: Makes retries safe: the same key returns the first task and never charges twice.
    idempotency_key: str
    #: Seconds to wait for the human's answer (default: the client's `wait`; 0 returns at once).
    wait: float


_OPTION_NAMES = frozenset(TaskOptions.__annotations__)


def _dollars(value: Money) -> str:
    """Exact decimal text for a money amount; floats are read from their shortest form."""
    try:
        amount = value if isinstance(value, Decimal) else Decimal(str(value))
    except InvalidOperation:
        raise ValueError(
            f"budget {value!r} is not an amount of dollars; give e.g. 5 or '5.00'"
        ) from None
    if not amount.is_finite():
        raise ValueError(f"budget {value!r} is not an amount of dollars; give e.g. 5 or '5.00'")
    return str(amount)


# Limitation: synchronous only; there is no asyncio client yet.
class HumanPing:
    """A client for one agent of a HumanPing server.

    >>> hp = HumanPing(api_key="hp_test_…")
    >>> result = hp.verify("Is this restaurant still open?",
    ...                    location="245 Rue St-Paul, Montréal", budget=5.00)
    >>> print(result.answer)

    `api_key` defaults to the HUMANPING_API_KEY environment variable and `base_url` to
    HUMANPING_API_URL, else a local server at http://127.0.0.1:8787.
    """

    def __init__(
        self,
        api_key: str | None = None,
        *,
        base_url: str | None = None,
        wait: float = DEFAULT_WAIT_SECONDS,
        timeout: float = 30.0,
        http_client: httpx.Client | None = None,
    ) -> None:
        key = api_key if api_key is not None else os.environ.get("HUMANPING_API_KEY")
        if not key or not key.strip():
            raise ValueError(
                "no API key: pass HumanPing(api_key='hp_test_…') or set HUMANPING_API_KEY; "
                "`humanping agent create --name NAME` makes one, and `humanping serve --sandbox` "
                "prints a sandbox key"
            )
        self.base_url = (
            base_url or os.environ.get("HUMANPING_API_URL") or DEFAULT_BASE_URL
        ).rstrip("/")
        self.wait = wait
        self._timeout = timeout
        self._owns_client = http_client is None
        self._http = http_client or httpx.Client(timeout=timeout)
        self._headers = {"Authorization": f"Bearer {key.strip()}", "Accept": "application/json"}

    # -- the context manager and cleanup --------------------------------------------------

    def close(self) -> None:
        """Closes the HTTP connections this client opened."""
        if self._owns_client:
            self._http.close()

    def __enter__(self) -> HumanPing:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- the seven task types ---------------------------------------------------------------

    def verify(self, question: str, **options: Unpack[TaskOptions]) -> Task:
        """A real-world fact check ($5 by default), e.g. "Is this restaurant still open?"."""
        return self._create("verify", {"question": question}, options)

    def call(self, phone: str, goal: str, **options: Unpack[TaskOptions]) -> Task:
        """A phone call made by a human ($10 by default): the number and what it must achieve."""
        return self._create("call", {"phone": phone, "goal": goal}, options)

    def gut_check(
        self, question: str, options: Sequence[str] | None = None, **more: Unpack[TaskOptions]
    ) -> Task:
        """A human's gut feeling ($3 by default): yes or no, or one of `options`."""
        body: dict[str, Any] = {"question": question}
        if options is not None:
            body["options"] = list(options)
        return self._create("gut_check", body, more)

    def field(self, mission: str, **options: Unpack[TaskOptions]) -> Task:
        """A human on site ($15 by default); photo and GPS proof unless `proof` says otherwise."""
        return self._create("field", {"mission": mission}, options)

    def escalate(
        self, situation: str, contact: str | None = None, **options: Unpack[TaskOptions]
    ) -> Task:
        """An empathy handoff to a person in distress ($20 by default)."""
        body: dict[str, Any] = {"situation": situation}
        if contact is not None:
            body["contact"] = contact
        return self._create("escalate", body, options)

    def vibe(
        self, content: str, question: str | None = None, **options: Unpack[TaskOptions]
    ) -> Task:
        """A human's read of the mood of `content` ($8 by default)."""
        body: dict[str, Any] = {"content": content}
        if question is not None:
            body["question"] = question
        return self._create("vibe", body, options)

    def reality_check(
        self, work: str, question: str | None = None, **options: Unpack[TaskOptions]
    ) -> Task:
        """A human's check of the agent's own `work` ($3 by default)."""
        body: dict[str, Any] = {"work": work}
        if question is not None:
            body["question"] = question
        return self._create("reality_check", body, options)

    # -- following a task up -----------------------------------------------------------------

    def get_task(self, task_id: str, wait: float = 0) -> Task:
        """The task now, or once its result is in when `wait` (seconds) is above zero."""
        if wait <= 0:
            return Task.from_json(self._request("GET", f"/v1/tasks/{_segment(task_id)}"))
        return self._wait_for(task_id, wait)

    def wait_for(self, task_id: str, wait: float | None = None) -> Task:
        """Waits up to `wait` seconds (default: the client's `wait`) for the task's result."""
        return self._wait_for(task_id, self.wait if wait is None else wait)

    def approve(self, task_id: str, *, idempotency_key: str | None = None) -> Task:
        """Approves the result: the worker is paid, the platform takes its fee."""
        return Task.from_json(
            self._request(
                "POST", f"/v1/tasks/{_segment(task_id)}/approve", idempotency_key=idempotency_key
            )
        )

    def dispute(self, task_id: str, reason: str, *, idempotency_key: str | None = None) -> Task:
        """Disputes the result: the budget comes back to you. Say what was wrong in `reason`."""
        return Task.from_json(
            self._request(
                "POST",
                f"/v1/tasks/{_segment(task_id)}/dispute",
                json={"reason": reason},
                idempotency_key=idempotency_key,
            )
        )

    def cancel(self, task_id: str, *, idempotency_key: str | None = None) -> Task:
        """Cancels a task nobody has claimed; its whole budget comes back."""
        return Task.from_json(
            self._request(
                "POST", f"/v1/tasks/{_segment(task_id)}/cancel", idempotency_key=idempotency_key
            )
        )

    def list_tasks(
        self, *, status: str | None = None, limit: int | None = None, before: str | None = None
    ) -> TaskPage:
        """Your tasks, newest first; pass the page's `next_cursor` as `before` for the next."""
        params = {
            k: str(v)
            for k, v in {"status": status, "limit": limit, "before": before}.items()
            if v is not None
        }
        return TaskPage.from_json(self._request("GET", "/v1/tasks", params=params))

    def balance(self) -> Balance:
        """Available, held and spent money."""
        return Balance.from_json(self._request("GET", "/v1/balance"))

    def block_worker(self, worker_id: str) -> None:
        """Keeps a worker off your tasks."""
        self._request("POST", "/v1/blocks", json={"worker_id": worker_id})

    def unblock_worker(self, worker_id: str) -> None:
        """Lets a blocked worker take your tasks again."""
        self._request("DELETE", f"/v1/blocks/{_segment(worker_id)}")

    # -- the plumbing -----------------------------------------------------------------------

    def _create(self, kind: str, body: dict[str, Any], given: TaskOptions) -> Task:
        options: dict[str, Any] = dict(given)
        unknown = sorted(set(options) - _OPTION_NAMES)
        if unknown:
            raise TypeError(
                f"{kind}() got unknown option(s) {', '.join(unknown)}; the options are "
                f"{', '.join(sorted(_OPTION_NAMES))}"
            )
        wait = options.pop("wait", self.wait)
        payload: dict[str, Any] = {"kind": kind, **body}
        for name, value in options.items():
            if value is None:
                continue
            payload[name] = _dollars(value) if name == "budget" else value
        if "proof" in payload and isinstance(payload["proof"], str):
            payload["proof"] = [payload["proof"]]
        first = min(int(wait), MAX_WAIT_PER_REQUEST) if wait and wait > 0 else 0
        payload["wait_seconds"] = first
        started = time.monotonic()
        task = Task.from_json(self._request("POST", "/v1/tasks", json=payload, read_wait=first))
        left = float(wait or 0) - (time.monotonic() - started)
        if task.has_result or task.is_final or left <= 0:
            return task
        return self._wait_for(task.task_id, left)

    def _wait_for(self, task_id: str, wait: float) -> Task:
        deadline = time.monotonic() + max(wait, 0)
        while True:
            left = deadline - time.monotonic()
            step = max(0, min(int(left), MAX_WAIT_PER_REQUEST))
            task = Task.from_json(
                self._request(
                    "GET",
                    f"/v1/tasks/{_segment(task_id)}",
                    params={"wait": str(step)},
                    read_wait=step,
                )
            )
            if task.has_result or task.is_final or deadline - time.monotonic() < 1:
                return task

    def _request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, str] | None = None,
        idempotency_key: str | None = None,
        read_wait: float = 0,
    ) -> Any:
        headers = dict(self._headers)
        if idempotency_key is not None:
            headers["Idempotency-Key"] = idempotency_key
        timeout = httpx.Timeout(self._timeout, read=self._timeout + read_wait)
        url = self.base_url + path
        try:
            response = self._http.request(
                method, url, json=json, params=params, headers=headers, timeout=timeout
            )
        except httpx.TransportError as error:
            raise HumanPingError(
                "unreachable",
                f"could not reach HumanPing at {self.base_url} ({error!r}); is `humanping serve` "
                "running there? Set base_url= or HUMANPING_API_URL to where it listens",
            ) from error
        if response.status_code == 204:
            return None
        try:
            data = response.json()
        except ValueError:
            data = None
        if response.is_error:
            problem = data.get("error") if isinstance(data, dict) else None
            if isinstance(problem, dict):
                raise HumanPingError(
                    str(problem.get("code", "error")),
                    str(problem.get("message", response.text)),
                    status=response.status_code,
                )
            raise HumanPingError(
                "http_error",
                f"{method} {path} answered {response.status_code}: {response.text[:500]}",
                status=response.status_code,
            )
        if data is None:
            raise HumanPingError(
                "bad_response", f"{method} {path} answered {response.status_code} without JSON"
            )
        return data
