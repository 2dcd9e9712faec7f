//! Helpers shared by the unit tests.

/// Every number of a JSON value (a model, a node), in order.
pub(crate) fn numbers(v: &serde_json::Value, out: &mut Vec<f64>) {
    match v {
        serde_json::Value::Number(n) => out.push(n.as_f64().unwrap()),
        serde_json::Value::Array(a) => a.iter().for_each(|x| numbers(x, out)),
        serde_json::Value::Object(m) => m.values().for_each(|x| numbers(x, out)),
        _ => {}
    }
}
