//! `nearline backfill` and `nearline reconcile` as an operator runs them, on the embedded
//! SQLite database with a directory of NDJSON (plain and gzipped) files as input.

use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Output};

const FROM: &str = "2026-11-20T00:00:00Z";
const TO: &str = "2026-11-20T02:00:00Z";

fn nearline(args: &[&str], sqlite: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_nearline"))
        .args(args)
        .env("NEARLINE__EMBEDDED__SQLITE_PATH", sqlite)
        .output()
        .expect("nearline runs")
}

fn text(output: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr))
}

fn impression(request: &str, time: &str) -> String {
    format!(
        r#"{{"type":"impression","event_id":"i-{request}","request_id":"{request}","member_id":"m1","video_id":80100172,"canvas":"row","country":"US","device":"tv","region":"us-east","event_time":"{time}"}}"#
    )
}

fn play(request: &str, time: &str) -> String {
    format!(
        r#"{{"type":"play","event_id":"p-{request}","request_id":"{request}","member_id":"m1","video_id":80100172,"country":"US","device":"tv","region":"eu-west","event_time":"{time}","watch_seconds":120}}"#
    )
}

#[test]
fn backfill_then_reconcile_agree_and_extra_input_is_reported() {
    let dir = std::env::temp_dir().join(nearline_testkit::unique_name("nearline_batch_cli"));
    let input = dir.join("input");
    std::fs::create_dir_all(&input).unwrap();
    let sqlite = dir.join("nearline.db");

    let lines = [
        impression("r1", "2026-11-20T00:05:00Z"),
        play("r1", "2026-11-20T00:20:00Z"),
        impression("r2", "2026-11-20T00:40:00Z"),
        play("r3", "2026-11-20T01:10:00Z"),
    ];
    std::fs::write(input.join("a.ndjson"), format!("{}\n{}\n", lines[0], lines[1])).unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    writeln!(gz, "{}\n{}", lines[2], lines[3]).unwrap();
    std::fs::write(input.join("b.ndjson.gz"), gz.finish().unwrap()).unwrap();
    let input_arg = input.to_str().unwrap();

    let backfill =
        nearline(&["backfill", "--embedded", "--from", FROM, "--to", TO, "--input", input_arg], &sqlite);
    assert!(backfill.status.success(), "backfill failed: {}", text(&backfill));
    assert!(
        text(&backfill).contains("backfilled 2 impression, 1 play and 1 unattributed"),
        "{}",
        text(&backfill)
    );

    let reconcile =
        nearline(&["reconcile", "--embedded", "--from", FROM, "--to", TO, "--input", input_arg], &sqlite);
    assert!(reconcile.status.success(), "reconcile failed: {}", text(&reconcile));
    assert!(text(&reconcile).contains("0 differences"), "{}", text(&reconcile));

    // One more impression in the input than was backfilled: reconcile names its cell.
    std::fs::write(input.join("c.ndjson"), format!("{}\n", impression("r4", "2026-11-20T01:35:00Z")))
        .unwrap();
    let reconcile =
        nearline(&["reconcile", "--embedded", "--from", FROM, "--to", TO, "--input", input_arg], &sqlite);
    assert_eq!(reconcile.status.code(), Some(1), "{}", text(&reconcile));
    let report = text(&reconcile);
    assert!(
        report.contains("2026-11-20T01:30:00Z") && report.contains("1/0") && report.contains("0/0"),
        "{report}"
    );
    assert!(report.contains("1 cell(s) differ"), "{report}");

    // r3's impression turns up (say, from the late topic): a new backfill attributes the
    // play and takes it out of the unattributed count, so the two agree again.
    std::fs::write(input.join("d.ndjson"), format!("{}\n", impression("r3", "2026-11-20T01:05:00Z")))
        .unwrap();
    let backfill =
        nearline(&["backfill", "--embedded", "--from", FROM, "--to", TO, "--input", input_arg], &sqlite);
    assert!(backfill.status.success(), "backfill failed: {}", text(&backfill));
    let reconcile =
        nearline(&["reconcile", "--embedded", "--from", FROM, "--to", TO, "--input", input_arg], &sqlite);
    assert!(reconcile.status.success(), "reconcile after the second backfill: {}", text(&reconcile));
    assert!(text(&reconcile).contains("0 differences"), "{}", text(&reconcile));

    let misaligned = nearline(
        &["reconcile", "--embedded", "--from", "2026-11-20T00:10:00Z", "--to", TO, "--input", input_arg],
        &sqlite,
    );
    assert!(!misaligned.status.success());
    assert!(
        text(&misaligned).contains("--from must be aligned to the 30 minute epoch"),
        "{}",
        text(&misaligned)
    );
    std::fs::remove_dir_all(dir).unwrap();
}

/// Two regions without mirroring, one directory of events each: a backfill over one
/// region alone counts its cross-region play unattributed; one over the union of both
/// attributes it, retracts the unattributed count, and then agrees with reconcile.
#[test]
fn a_backfill_over_both_regions_counts_a_cross_region_pair_once() {
    let dir = std::env::temp_dir().join(nearline_testkit::unique_name("nearline_batch_regions"));
    let (us, eu) = (dir.join("us-east"), dir.join("eu-west"));
    std::fs::create_dir_all(&us).unwrap();
    std::fs::create_dir_all(&eu).unwrap();
    let sqlite = dir.join("nearline.db");
    // r7 is shown in us-east and played in eu-west; r8 is a pair within eu-west.
    std::fs::write(us.join("a.ndjson"), format!("{}\n", impression("r7", "2026-11-20T00:05:00Z"))).unwrap();
    let eu_events = [
        play("r7", "2026-11-20T00:20:00Z"),
        impression("r8", "2026-11-20T00:30:00Z"),
        play("r8", "2026-11-20T00:40:00Z"),
    ];
    std::fs::write(eu.join("a.ndjson"), eu_events.join("\n") + "\n").unwrap();
    let (us, eu) = (us.to_str().unwrap(), eu.to_str().unwrap());
    let run = |command: &str, inputs: &[&str]| {
        let mut args = vec![command, "--embedded", "--from", FROM, "--to", TO];
        for input in inputs {
            args.extend(["--input", input]);
        }
        nearline(&args, &sqlite)
    };

    let alone = run("backfill", &[eu]);
    assert!(alone.status.success(), "backfill failed: {}", text(&alone));
    assert!(text(&alone).contains("backfilled 1 impression, 1 play and 1 unattributed"), "{}", text(&alone));
    let reconcile = run("reconcile", &[us, eu]);
    assert_eq!(reconcile.status.code(), Some(1), "the union differs: {}", text(&reconcile));
    assert!(text(&reconcile).contains("(unattributed)"), "{}", text(&reconcile));

    let union = run("backfill", &[us, eu]);
    assert!(union.status.success(), "backfill failed: {}", text(&union));
    assert!(text(&union).contains("backfilled 2 impression, 2 play and 0 unattributed"), "{}", text(&union));
    assert!(text(&union).contains("from 2 input(s)"), "{}", text(&union));
    let reconcile = run("reconcile", &[us, eu]);
    assert!(reconcile.status.success(), "reconcile over the union: {}", text(&reconcile));
    assert!(text(&reconcile).contains("0 differences"), "{}", text(&reconcile));
    // The same events in both inputs count once.
    let twice = run("reconcile", &[us, eu, us]);
    assert!(twice.status.success(), "an input given twice: {}", text(&twice));

    let bad = run("reconcile", &["kafka://nowhere"]);
    assert_eq!(bad.status.code(), Some(1), "{}", text(&bad));
    assert!(text(&bad).contains("\"nowhere\" is not HOST:PORT"), "{}", text(&bad));
    std::fs::remove_dir_all(dir).unwrap();
}

/// A database upgraded from before cells had a region holds its counts in region `''`:
/// backfill refuses to recount such a range (it would count the same requests again
/// under their regions) and says what to do; a range counted since the upgrade is fine.
#[test]
fn backfill_refuses_a_range_counted_before_cells_had_a_region() {
    let dir = std::env::temp_dir().join(nearline_testkit::unique_name("nearline_batch_legacy"));
    let input = dir.join("input");
    std::fs::create_dir_all(&input).unwrap();
    let sqlite = dir.join("nearline.db");
    let migrate = nearline(&["migrate", "--embedded"], &sqlite);
    assert!(migrate.status.success(), "migrate failed: {}", text(&migrate));
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", sqlite.display())).await.unwrap();
        // As the migration left a cell counted before it: region ''.
        sqlx::query(
            "INSERT INTO cell_counts (video_id, epoch_start_ms, country, device, canvas, impressions, plays)
             VALUES (80100172, 1795132800000, 'US', 'tv', 'row', 1, 0)",
        )
        .execute(&pool)
        .await
        .unwrap();
        pool.close().await;
    });
    std::fs::write(input.join("a.ndjson"), format!("{}\n", impression("r1", "2026-11-20T00:05:00Z")))
        .unwrap();
    let input = input.to_str().unwrap();

    let refused =
        nearline(&["backfill", "--embedded", "--from", FROM, "--to", TO, "--input", input], &sqlite);
    assert_eq!(refused.status.code(), Some(1), "{}", text(&refused));
    assert!(
        text(&refused).contains("1 stored cell(s) in the range were counted before cells had a region"),
        "{}",
        text(&refused)
    );
    let later = "2026-11-21T00:00:00Z";
    std::fs::write(dir.join("input/b.ndjson"), format!("{}\n", impression("r2", "2026-11-21T00:05:00Z")))
        .unwrap();
    let fine = nearline(
        &["backfill", "--embedded", "--from", later, "--to", "2026-11-21T01:00:00Z", "--input", input],
        &sqlite,
    );
    assert!(fine.status.success(), "a range counted since the upgrade: {}", text(&fine));
    std::fs::remove_dir_all(dir).unwrap();
}
