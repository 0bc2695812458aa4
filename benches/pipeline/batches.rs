//! How many messages a stage's batches held between two snapshots of its batch histogram.

/// Mean messages per batch of each worker between two snapshots of (worker, messages,
/// batches) (`before` empty: since the start); a worker that handled no batch in between is
/// left out.
pub fn mean_batches(
    after: &[(String, f64, f64)],
    before: &[(String, f64, f64)],
) -> Vec<(String, f64)> {
    after
        .iter()
        .filter_map(|(name, messages, batches)| {
            let (earlier_messages, earlier_batches) = before
                .iter()
                .find(|(earlier, ..)| earlier == name)
                .map_or((0.0, 0.0), |(_, messages, batches)| (*messages, *batches));
            let batches = batches - earlier_batches;
            (batches > 0.0).then(|| (name.clone(), (messages - earlier_messages) / batches))
        })
        .collect()
}
