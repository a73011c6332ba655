//! The OpenAPI 3.1 document of the HTTP API, served at `/openapi.json`.
//!
//! Hand-written (`openapi.json` beside this file) so that it states the contract as
//! clients see it; a unit test keeps it valid JSON naming every route.

/// The document as written; its examples carry placeholder event times.
pub const DOCUMENT: &str = include_str!("openapi.json");

/// Example event times in [`DOCUMENT`], replaced when it is served.
const EXAMPLE_TIME_RFC3339: &str = "2026-11-22T10:00:00Z";
const EXAMPLE_TIME_MS: &str = "1795340000000";

/// The document as served at `now_ms`: its examples' event times a minute before now,
/// so that an example posted as it is passes the 7-day age check.
pub(crate) fn served(now_ms: i64) -> String {
    let at = now_ms - 60_000;
    let rfc3339 = chrono::DateTime::from_timestamp_millis(at)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_else(|| EXAMPLE_TIME_RFC3339.to_owned());
    DOCUMENT.replace(EXAMPLE_TIME_RFC3339, &rfc3339).replace(EXAMPLE_TIME_MS, &at.to_string())
}

#[cfg(test)]
mod tests {
    #[test]
    fn document_is_json_and_names_every_route() {
        let doc: serde_json::Value = serde_json::from_str(super::DOCUMENT).expect("openapi.json is JSON");
        assert_eq!(doc["openapi"], "3.1.0");
        for route in ["/v1/events", "/v1/videos/{id}"] {
            assert!(doc["paths"][route].is_object(), "openapi.json does not describe {route}");
        }
    }

    #[test]
    fn served_examples_are_recent_enough_to_be_accepted() {
        let now = 1_900_000_000_000;
        let served: serde_json::Value = serde_json::from_str(&super::served(now)).expect("still JSON");
        let schemas = &served["components"]["schemas"];
        assert_eq!(schemas["Play"]["example"]["event_time"], now - 60_000);
        let impression_time = schemas["Impression"]["example"]["event_time"].as_str().expect("RFC 3339");
        assert_eq!(
            chrono::DateTime::parse_from_rfc3339(impression_time).unwrap().timestamp_millis(),
            now - 60_000
        );
    }
}
