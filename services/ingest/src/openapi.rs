//! The OpenAPI 3.1 document of the HTTP API, served at `/openapi.json`.
//!
//! Hand-written (`openapi.json` beside this file) so that it states the contract as
//! clients see it; a unit test keeps it valid JSON naming every route.

/// The document, as served.
pub const DOCUMENT: &str = include_str!("openapi.json");

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
}
