//! Writes the simulator's default request stream (the one the `sim` example and the
//! simulator tests run) as TSV, for the peer comparison under `bench/`: one line per
//! decision with its event time, context and every candidate with its true play
//! probability.
//!
//! `cargo run --release -p nearline-billboard --example sim_stream > stream.tsv`

use std::io::{BufWriter, Write as _};

use nearline_billboard::policy::{Params, PolicyKind, Split};
use nearline_billboard::sim::{RunConfig, World, WorldConfig, stream};

fn main() -> std::io::Result<()> {
    let world = World::new(WorldConfig::default());
    let config = RunConfig::new(Split::new(&[(PolicyKind::Linear, 1.0)]), Params::default());
    let mut out = BufWriter::new(std::io::stdout().lock());
    writeln!(out, "time_ms\tcountry\tdevice\tdaypart\tcandidates")?;
    for (now, request) in stream(&world, &config) {
        let candidates: Vec<String> = request
            .candidates
            .iter()
            .map(|arm| {
                let p = world.play_probability(&request.cell, arm, now);
                format!("{}/{}={p:.6}", arm.video_id, arm.artwork_id)
            })
            .collect();
        writeln!(
            out,
            "{now}\t{}\t{}\t{}\t{}",
            request.cell.country,
            request.cell.device,
            request.cell.daypart,
            candidates.join(" ")
        )?;
    }
    out.flush()
}
