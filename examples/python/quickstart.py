"""The quick start of the HumanPing docs, as written.

    pip install ./examples/python
    HUMANPING_API_KEY=hp_test_... python examples/python/quickstart.py

The client talks to a local `humanping serve` (HUMANPING_API_URL says where else); against
`humanping serve --sandbox`, a simulated worker answers within seconds.
"""

import os

from humanping import HumanPing

hp = HumanPing(api_key=os.environ.get("HUMANPING_API_KEY", "hp_live_..."))
result = hp.verify(
    "Is this restaurant still open?",
    location="245 Rue St-Paul, Montréal",
    budget=5.00,
)
print(result.answer)
