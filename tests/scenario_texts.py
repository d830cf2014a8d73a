"""Scenario text shared by the loader and CLI tests.

Two deviations, so array paths like deviation[1].divergence are exercised. Every
"key = value" line is unique in the text, so an edit names the line it changes.
"""

AUDIT_TEMPLATE = """\
[scenario]
name = "{name}"
game = "audit"
description = "{description}"

[task]
reward = 1.0
cost_honest = 0.4
damage = 5.0

[[deviation]]
name = "weaker-model"
cost = 0.1
divergence = 0.3

[[deviation]]
name = "random-output"
cost = 0.0
divergence = 1.0

[audit]
cost = 0.25
verifiers = 1
miss_rate = 0.0
false_alarm_rate = 0.0
collusion = 0.0
bounty_share = 0.5
sampling_rate = 0.05

[stake]
slash = 20.0
total = 1000.0
capital_cost = 0.05
throughput = 100.0
settlement_latency = 60.0
"""


def audit_scenario(name: str, description: str) -> str:
    """A valid audit scenario, named for the tests that use it."""
    return AUDIT_TEMPLATE.replace("{name}", name).replace("{description}", description)
