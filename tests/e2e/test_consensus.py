"""End to end: a consensus task through the official Python MCP client over stdio.

Three humans answer one question through `humanping serve`'s worker REST API, each writing the
same answer differently; the agent, through `humanping mcp`, gets back one agreed answer with
the votes and a confidence, partners with one worker, and disputes one result alone.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from mcp import ClientSession
from mcp.client.stdio import stdio_client


def structured(result: Any) -> dict[str, Any]:
    text = "\n".join(b.text for b in result.content if getattr(b, "text", None))
    assert not result.is_error, f"tool failed: {text}"
    assert isinstance(result.structured_content, dict), result
    assert json.loads(text) == result.structured_content
    return result.structured_content


@pytest.mark.anyio
async def test_three_humans_agree_through_mcp(
    create_agent, create_worker, server, stdio_params, humanping, tmp_path
) -> None:
    agent = create_agent("consensus", dollars="20.00")
    workers = [create_worker(f"w{n}") for n in range(3)]
    params = stdio_params(api_key=agent["api_key"])
    with open(tmp_path / "mcp-stderr.log", "w") as errlog:
        async with stdio_client(params, errlog=errlog) as (read, write):
            async with ClientSession(read, write) as session:
                await session.initialize()
                task = structured(
                    await session.call_tool(
                        "gut_check",
                        {
                            "question": "Does this apology sound sincere?",
                            "workers": 3,
                            "agreement": 3,
                            "budget": 2,
                            "wait_seconds": 0,
                        },
                    )
                )
                assert task["held_cents"] == 600, task
                task_id = task["task_id"]

                for worker, said in zip(workers, ["Yes", " yes ", "ｙｅｓ"]):
                    http = server.http(worker["api_key"])
                    claim = http.post(f"/v1/worker/tasks/{task_id}/claim")
                    assert claim.status_code == 201, claim.text
                    assignment = claim.json()["assignment_id"]
                    sent = http.post(
                        f"/v1/worker/assignments/{assignment}/submit", json={"answer": said}
                    )
                    assert sent.status_code == 200, sent.text

                done = structured(
                    await session.call_tool("get_task", {"task_id": task_id, "wait_seconds": 5})
                )
                assert done["status"] == "completed", done
                consensus = done["consensus"]
                assert consensus["outcome"] == "agreed", consensus
                assert consensus["answer"] == "yes"
                assert consensus["confidence"] == 1.0
                assert consensus["votes"] == [{"answer": "yes", "votes": 3, "weight": 3.0}]
                assert len(done["results"]) == 3

                # One result disputed alone; the others are paid on approval.
                lazy = done["results"][2]["assignment_id"]
                disputed = structured(
                    await session.call_tool(
                        "dispute",
                        {"task_id": task_id, "assignment_id": lazy, "reason": "copied"},
                    )
                )
                assert disputed["status"] == "completed", disputed
                approved = structured(await session.call_tool("approve", {"task_id": task_id}))
                assert approved["status"] == "approved", approved
                balance = structured(await session.call_tool("balance", {}))
                assert balance["spent_cents"] == 400, balance

                partner = structured(
                    await session.call_tool(
                        "partner_add",
                        {
                            "worker_id": done["results"][0]["worker_id"],
                            "notes": "Thanks for the careful read.",
                            "bonus_bps": 500,
                        },
                    )
                )
                assert partner["bonus_bps"] == 500, partner
                listed = structured(await session.call_tool("partners", {}))
                assert [p["worker_id"] for p in listed["partners"]] == [partner["worker_id"]]

    books = humanping("ledger", "verify", check=False)
    assert books.returncode == 0, books.stdout + books.stderr
