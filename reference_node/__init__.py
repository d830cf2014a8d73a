"""The reference staked-inference network (ledger, providers, verifiers, arbiter, clients).

It executes deployment parameters exported by mira_theory; its services arrive with the
reference-network issue.
"""
