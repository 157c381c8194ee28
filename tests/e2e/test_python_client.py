"""The Python client in examples/python against a live `humanping serve`.

The quick start of the product docs runs as written (against the sandbox, whose simulated
workers answer), then every task type and every follow-up call. scripts/test.sh installs the
client into the test virtualenv from its folder with pip.
"""

from __future__ import annotations

import threading
import time
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

humanping = pytest.importorskip(
    "humanping",
    reason="the Python client is not installed: pip install --no-build-isolation ./examples/python",
)
from humanping import HumanPing, HumanPingError  # noqa: E402


def sandbox_key(keys_file: Path) -> str:
    for line in keys_file.read_text().splitlines():
        if line.startswith("HUMANPING_API_KEY="):
            return line.split("=", 1)[1].strip()
    raise AssertionError(f"no key in {keys_file}")


@pytest.fixture
def sandbox(start_server, tmp_path: Path):
    """`humanping serve --sandbox` on a database of this test, and its agent's key."""
    server = start_server(
        extra_args=["--sandbox", "--sandbox-delay", "300ms"],
        database_url=f"sqlite://{tmp_path / 'sandbox.db'}",
    )
    return server, sandbox_key(tmp_path / "sandbox.keys.env")


def test_the_quick_start_works_as_written(sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    server, key = sandbox
    monkeypatch.setenv("HUMANPING_API_URL", server.base_url)

    hp = HumanPing(api_key=key)
    result = hp.verify(
        "Is this restaurant still open?",
        location="245 Rue St-Paul, Montréal",
        budget=5.00,
    )
    print(result.answer)

    assert result.status == "completed", result
    assert result.answer and "simulated" in result.answer.lower(), result.answer
    assert result.simulated and result.results[0].simulated
    assert result.budget == Decimal("5.00") and result.budget_cents == 500
    assert result.results[0].flags, "the fraud checks ran on the simulated result"
    hp.close()


def test_every_task_type_and_follow_up(sandbox) -> None:
    server, key = sandbox
    with HumanPing(api_key=key, base_url=server.base_url, wait=30) as hp:
        start = hp.balance()
        assert start.available == Decimal("100.00") and start.held_cents == 0

        made = [
            hp.verify("Is the shop open?", response="yes_no"),
            hp.call("+1 514 555 0100", "Book a table for 4 at 7pm", budget="12.50"),
            hp.gut_check("Which logo?", options=["A", "B"]),
            hp.field(
                "Count the queue",
                location={"lat": 45.5, "lng": -73.55, "radius_m": 500},
                response={"type": "number", "unit": "people"},
            ),
            hp.escalate("An upset customer", contact="+1 514 555 0199", language="fr"),
            hp.vibe(
                "We need to talk.",
                question="How worried should I be?",
                response={"type": "rating", "min": 1, "max": 10},
            ),
            hp.reality_check("2 + 2 = 4", budget=Decimal("3")),
        ]
        kinds = [task.kind for task in made]
        assert kinds == [
            "verification",
            "voice_proxy",
            "gut_check",
            "field_mission",
            "escalation",
            "vibe_read",
            "reality_check",
        ]
        for task in made:
            assert task.status == "completed" and task.answer is not None, task
            assert task.simulated, task
        assert made[0].answer == "yes" and made[2].answer in {"A", "B"}
        assert isinstance(made[3].structured, float)
        assert made[1].budget == Decimal("12.50")

        # Follow-ups: read, wait, approve, dispute, list, block and unblock.
        again = hp.get_task(made[0].task_id)
        assert again.task_id == made[0].task_id and again.answer == "yes"
        assert hp.wait_for(made[0].task_id, wait=5).status == "completed"
        assert hp.get_task(made[0].task_id, wait=2).status == "completed"
        assert hp.approve(made[0].task_id, idempotency_key="approve-1").status == "approved"
        # A retry with the same key is answered with the first result, and pays nothing twice.
        assert hp.approve(made[0].task_id, idempotency_key="approve-1").status == "approved"
        refunded = hp.dispute(made[1].task_id, "The booking was for the wrong day")
        assert refunded.status == "refunded", refunded

        page = hp.list_tasks(limit=3)
        assert len(page.tasks) == 3 and page.next_cursor
        rest = hp.list_tasks(limit=100, before=page.next_cursor)
        assert len(rest.tasks) == 4 and rest.next_cursor is None
        assert [t.task_id for t in hp.list_tasks(status="approved").tasks] == [made[0].task_id]

        worker = made[2].results[0].worker_id
        hp.block_worker(worker)
        hp.unblock_worker(worker)

        spent = hp.balance()
        assert spent.spent_cents == 500, spent
        assert spent.held_cents == sum(t.budget_cents for t in made[2:]), spent

        with pytest.raises(HumanPingError) as refused:
            hp.verify("q", budget="5.001")
        assert refused.value.code == "invalid_input" and "decimal" in refused.value.message
        with pytest.raises(HumanPingError) as missing:
            hp.get_task("task_doesnotexist")
        assert missing.value.code == "not_found" and missing.value.status == 404
        with pytest.raises(TypeError, match="budgett"):
            hp.verify("q", budgett=5)


def test_waiting_and_cancelling_against_real_workers(server, create_agent, create_worker) -> None:
    """Without the sandbox: the task waits for a person, who answers through the worker API."""
    agent = create_agent(dollars="20")
    worker = create_worker(languages="en")
    with HumanPing(api_key=agent["api_key"], base_url=server.base_url) as hp:
        quick = hp.verify("Nobody will answer this in time", wait=0)
        assert quick.status == "open" and quick.answer is None
        assert hp.get_task(quick.task_id, wait=1).answer is None
        cancelled = hp.cancel(quick.task_id)
        assert cancelled.status == "cancelled" and cancelled.held_cents == 0

        def answer_as_a_person() -> None:
            http = httpx.Client(
                base_url=server.base_url,
                trust_env=False,
                timeout=10,
                headers={"Authorization": f"Bearer {worker['api_key']}"},
            )
            with http:
                for _ in range(100):
                    offers = http.get("/v1/worker/tasks").json()["tasks"]
                    if offers:
                        break
                    time.sleep(0.1)
                claim = http.post(f"/v1/worker/tasks/{offers[0]['task_id']}/claim").json()
                time.sleep(1)
                http.post(
                    f"/v1/worker/assignments/{claim['assignment_id']}/submit",
                    json={"answer": "Yes, open until 22:00"},
                ).raise_for_status()

        person = threading.Thread(target=answer_as_a_person)
        person.start()
        result = hp.verify(
            "Is this restaurant still open?",
            location="245 Rue St-Paul, Montréal",
            budget=5.00,
            wait=60,
        )
        person.join(timeout=30)
        assert result.answer == "Yes, open until 22:00", result
        assert not result.simulated

    with pytest.raises(HumanPingError) as unknown:
        HumanPing(api_key="hp_test_unknownkey", base_url=server.base_url).balance()
    assert unknown.value.code == "unauthorized" and unknown.value.status == 401
    with pytest.raises(HumanPingError) as unreachable:
        HumanPing(api_key="hp_test_x", base_url="http://127.0.0.1:9").balance()
    assert (
        unreachable.value.code == "unreachable" and "humanping serve" in unreachable.value.message
    )
    with pytest.raises(ValueError, match="HUMANPING_API_KEY"):
        HumanPing(api_key="")
