//! Checkpoints: rank 0 writes centroids and iteration atomically; `--resume` reads them back.

use super::*;

impl Trainer<'_> {
    /// Rank 0 writes centroids `c` after `iteration` steps, and the `initial` centroids the
    /// start began from (collective).
    pub(super) fn write_checkpoint(&self, comm: &dyn Comm, c: &Array2<f64>, iteration: usize, initial: &Array2<f64>) -> Result<()> {
        let Some(path) = &self.p.checkpoint else { return Ok(()) };
        let local = if comm.rank() == 0 {
            let rows = |m: &Array2<f64>| -> Vec<Vec<f64>> { m.rows().into_iter().map(|r| r.to_vec()).collect() };
            let body = serde_json::json!({"format": "flowmpi-kmeans-checkpoint", "iteration": iteration, "k": c.nrows(), "columns": self.columns, "centroids": rows(c), "initial_centroids": rows(initial)});
            crate::io::write_atomic(path, &serde_json::to_vec_pretty(&body).unwrap(), 0)
        } else {
            Ok(())
        };
        crate::comm::agree(comm, local)
    }
}

impl KmeansParams {
    /// The centroids and iteration of the checkpoint to resume from.
    pub(super) fn read_checkpoint(&self, d: usize) -> Result<(Array2<f64>, usize, Option<Array2<f64>>)> {
        let path = self.checkpoint.as_ref().ok_or_else(|| Error::Param("kmeans: --resume needs --checkpoint FILE".into()))?;
        let text = std::fs::read(path).map_err(|e| Error::Param(format!("kmeans: cannot resume from {}: {e}", path.display())))?;
        let v: serde_json::Value = serde_json::from_slice(&text).map_err(|e| Error::Param(format!("kmeans: {} is not a checkpoint: {e}", path.display())))?;
        let rows: Vec<Vec<f64>> = serde_json::from_value(v["centroids"].clone()).map_err(|e| Error::Param(format!("kmeans checkpoint: {e}")))?;
        if rows.len() != self.k || rows.iter().any(|r| r.len() != d) {
            return Err(Error::Param(format!("kmeans: checkpoint {} holds {} centroids of another shape", path.display(), rows.len())));
        }
        let initial = serde_json::from_value::<Vec<Vec<f64>>>(v["initial_centroids"].clone())
            .ok()
            .filter(|r| r.len() == self.k && r.iter().all(|r| r.len() == d))
            .map(|r| Array2::from_shape_vec((self.k, d), r.concat()).expect("k x d"));
        Ok((Array2::from_shape_vec((self.k, d), rows.concat()).unwrap(), v["iteration"].as_u64().unwrap_or(0) as usize, initial))
    }
}
