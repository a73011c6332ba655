//! Error reporting shared by the services.

/// An error with its whole cause chain, `error: cause: cause ...`, for logging
/// internal errors (clients get a generic message instead).
pub fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    #[derive(Debug, thiserror::Error)]
    #[error("writing counts")]
    struct Outer(#[source] std::io::Error);

    #[test]
    fn names_every_cause() {
        let error = Outer(std::io::Error::other("connection reset"));
        assert_eq!(super::chain(&error), "writing counts: connection reset");
    }
}
