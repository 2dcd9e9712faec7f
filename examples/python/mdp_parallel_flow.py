"""MDP's ParallelFlow, PCA then SFA2, as flowmpi runs it: every rank reads its shards, the
statistics are joined over all ranks, the model is the same everywhere.

    mpirun -n 4 .venv/bin/python examples/python/mdp_parallel_flow.py [DATA_GLOB]

MDP would have been:  flow = mdp.parallel.ParallelFlow([PCANode(output_dim=4), SFA2Node(output_dim=3)])
                      flow.train([[chunk] for chunk in shards], scheduler=scheduler)
"""

import os
import sys

import numpy as np

import flowmpi

here = os.path.dirname(os.path.abspath(__file__))
data = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "..", "..", "data", "example", "part*.csv")

with flowmpi.Context() as ctx:
    model = flowmpi.train("pca(n=4) | sfa2(n=3)", data=data)
    pca, sfa2 = model.nodes
    # The slow features' delta values rise: the slowest signal first.
    delta = sfa2.sfa.delta if hasattr(sfa2, "sfa") else sfa2.delta
    assert np.all(np.diff(delta) >= 0), delta
    if ctx.rank == 0:
        print(f"{model}: explained variance {np.round(pca.explained_variance_ratio, 4)}, delta {np.round(delta, 5)}")
