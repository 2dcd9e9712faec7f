"""daal4py's SPMD k-means, the flowmpi way: each rank reads the file named by its rank.

    mpirun -n 4 .venv/bin/python examples/python/daal4py_kmeans.py

daal4py would have been:  daalinit()
                          init = kmeans_init(3, method="plusPlusDense", distributed=True)
                          centroids = init.compute("part{}.csv".format(my_procid())).centroids
                          result = kmeans(3, 20, distributed=True).compute(file, centroids)
                          daalfini()
"""

import os

import numpy as np

import flowmpi

here = os.path.dirname(os.path.abspath(__file__))
data = os.path.join(here, "..", "..", "data", "example", "part*.csv")

with flowmpi.Context() as ctx:
    model = flowmpi.train("kmeans(k=3, init=++, max_iter=20, seed=1)", data=data, reproducible=True)
    km = model.nodes[-1]
    # Every row's cluster, for this rank's share of a small sample: the nearest centroid.
    X = np.array([km.centroids[0] + 0.01, km.centroids[2] - 0.01])
    cluster = model.predict(X)[:, model.output_columns.index("cluster")]
    assert list(cluster) == [0, 2], cluster
    if ctx.rank == 0:
        print(f"{model}: inertia {km.inertia:.6e} after {km.n_iter} iterations; centroids\n{np.round(km.centroids, 3)}")
