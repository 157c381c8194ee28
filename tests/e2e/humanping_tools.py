"""The MCP tools HumanPing offers an agent, for the end-to-end tests that list them."""

TOOLS = frozenset(
    {
        "verify",
        "call",
        "gut_check",
        "field",
        "escalate",
        "vibe",
        "reality_check",
        "get_task",
        "approve",
        "dispute",
        "cancel_task",
        "list_tasks",
        "balance",
        "topup",
        "block_worker",
        "unblock_worker",
        "partner_add",
        "partner_remove",
        "partners",
    }
)
