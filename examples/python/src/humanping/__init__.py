"""HumanPing for Python: send tasks to real humans from your AI agent.

from humanping import HumanPing

hp = HumanPing(api_key="hp_live_...")
result = hp.verify(
    "Is this restaurant still open?",
    location="245 Rue St-Paul, Montréal",
    budget=5.00,
)
print(result.answer)
"""

from .client import DEFAULT_BASE_URL, HumanPing
from .errors import HumanPingError
from .models import Balance, Task, TaskPage, TaskResult

__all__ = [
    "DEFAULT_BASE_URL",
    "Balance",
    "HumanPing",
    "HumanPingError",
    "Task",
    "TaskPage",
    "TaskResult",
]
__version__ = "0.1.0"
