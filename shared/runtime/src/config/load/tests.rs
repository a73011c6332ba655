// figment::Jail fixes the closures' error type to figment::Error; its size is not ours to choose.
#![allow(clippy::result_large_err)]

use std::path::Path;

use figment::Jail;

use super::load;
use crate::config::Config;

#[test]
fn defaults_are_valid() {
    Jail::expect_with(|_| {
        assert_eq!(load(None).expect("defaults load"), Config::default());
        Ok(())
    });
}

#[test]
fn file_then_environment_override_defaults() {
    Jail::expect_with(|jail| {
        jail.create_file(
            "nearline.toml",
            "[ingest]\nhttp_port = 9000\ngrpc_port = 9001\n[attribution]\nepoch_len = \"15m\"\n",
        )?;
        jail.set_env("NEARLINE__INGEST__HTTP_PORT", "9100");
        let config = load(Some(Path::new("nearline.toml"))).expect("valid");
        assert_eq!(config.ingest.http_port, 9100, "environment wins over the file");
        assert_eq!(config.ingest.grpc_port, 9001, "file wins over defaults");
        assert_eq!(config.attribution.epoch_len, std::time::Duration::from_secs(900));
        Ok(())
    });
}

#[test]
fn every_bad_key_is_reported_with_its_origin() {
    Jail::expect_with(|jail| {
        jail.create_file("nearline.toml", "[kafka]\npartitions = \"many\"\n[insights]\nbogus = 1\n")?;
        jail.set_env("NEARLINE__INGEST__HTTP_PORT", "abc");
        jail.set_env("NEARLINE__ATTRIBUTION__SKEW", "soon");
        let error = load(Some(Path::new("nearline.toml"))).expect_err("invalid");
        let keys: Vec<&str> = error.problems.iter().map(|p| p.key.as_str()).collect();
        for key in ["ingest.http_port", "attribution.skew", "kafka.partitions", "insights.bogus"] {
            assert!(keys.contains(&key), "{key} not reported in {error}");
        }
        let text = error.to_string();
        assert!(text.contains("NEARLINE__INGEST__HTTP_PORT"), "{text}");
        assert!(text.contains("nearline.toml"), "{text}");
        Ok(())
    });
}

#[test]
fn semantic_problems_are_reported_after_types() {
    Jail::expect_with(|jail| {
        jail.set_env("NEARLINE__KAFKA__PARTITIONS", "0");
        jail.set_env("NEARLINE__INGEST__GRPC_PORT", "7000");
        jail.set_env("NEARLINE__INGEST__HTTP_PORT", "7000");
        let error = load(None).expect_err("invalid");
        let keys: Vec<&str> = error.problems.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(keys, ["kafka.partitions", "ingest.http_port"], "{error}");
        Ok(())
    });
}

#[test]
fn mirrored_regions_are_read_and_checked() {
    Jail::expect_with(|jail| {
        jail.create_file("nearline.toml", "[kafka]\nmirrored_regions = [\"eu-west\", \"ap_south\"]\n")?;
        let config = load(Some(Path::new("nearline.toml"))).expect("valid");
        assert_eq!(config.kafka.mirrored_regions, ["eu-west", "ap_south"]);

        jail.set_env("NEARLINE__KAFKA__MIRRORED_REGIONS", r#"["eu.west", "", "us-east", "us-east"]"#);
        let error = load(Some(Path::new("nearline.toml"))).expect_err("invalid regions");
        let problems: Vec<String> =
            error.problems.iter().map(|p| format!("{}: {}", p.key, p.reason)).collect();
        assert_eq!(problems.len(), 3, "{error}");
        assert!(problems.iter().all(|p| p.starts_with("kafka.mirrored_regions")), "{error}");
        let text = error.to_string();
        for expected in ["\"eu.west\" contains '.'", "must not be empty", "\"us-east\" is named twice"] {
            assert!(text.contains(expected), "{expected:?} not in {text}");
        }
        Ok(())
    });
}

#[test]
fn missing_file_is_a_problem() {
    Jail::expect_with(|_| {
        let error = load(Some(Path::new("nope.toml"))).expect_err("missing file");
        assert!(error.to_string().contains("nope.toml"), "{error}");
        Ok(())
    });
}
