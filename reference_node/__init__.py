"""The reference staked-inference network (ledger, providers, verifiers, arbiter, clients).

It executes deployment parameters exported by mira_theory (``mira-theory export``) and never
re-derives theory. Modules:

* :mod:`reference_node.params`: reads and validates the params file;
* :mod:`reference_node.models`: the digits models (integer inference, bit-exact; weights identified by
  sha256), the workload's inputs, how δ_j, α, β are realised; :mod:`reference_node.train_models`
  trains them and :mod:`reference_node.calibrate` measures them into a scenario (``mira-node calibrate``);
* :mod:`reference_node.ledger`: the staking contract on SQLite (invariant, idempotency, group commit);
* :mod:`reference_node.provider`, :mod:`~reference_node.verifier`, :mod:`~reference_node.arbiter`,
  :mod:`~reference_node.client`, :mod:`~reference_node.strategies`: the node classes;
* :mod:`reference_node.services`: thin ASGI wrappers (FastAPI under uvicorn);
* :mod:`reference_node.inprocess`: the same classes wired in one process;
* :mod:`reference_node.parallel`: Ed25519 batches on a thread pool (libsodium releases the GIL; identical results);
* :mod:`reference_node.events`: the event-log schema and the statistics read from it;
* :mod:`reference_node.committee`: the consensus game (commit-then-reveal committee votes on
  multiple-choice claims, windowed slashing; its event kinds are documented there), in-process;
  :mod:`reference_node.committee_services` serves it over HTTP (committee nodes, the coordinator);
* :mod:`reference_node.cli`: ``mira-node``.
"""

import os
import sys

# The models multiply small matrices (≤ 512×256): one BLAS thread is fastest, and OpenBLAS
# threads spinning on a shared 2-core machine made inference ~5× slower in measurement.
# Only effective before numpy loads, so only set then (a user's own setting wins, and a
# process that already loaded numpy, e.g. a test session, is left as it is).
if "numpy" not in sys.modules:
    for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(_var, "1")
