//! Generated protobuf messages and gRPC stubs for every nearline API.
//!
//! The sources live in `proto/nearline/<area>/v1/` at the workspace root; this crate
//! only includes what `build.rs` generated from them. Never edit generated code.

#![allow(unreachable_pub, missing_debug_implementations, clippy::all)]

/// Serialized `FileDescriptorSet` of every nearline proto, for gRPC reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/nearline_descriptor.bin"));

/// `nearline.events.v1`: impressions, plays, outcomes.
pub mod events {
    /// Version 1 of the event model.
    pub mod v1 {
        include!(concat!(env!("OUT_DIR"), "/nearline.events.v1.rs"));
    }
}

/// `nearline.ingest.v1`: the publishing API.
pub mod ingest {
    /// Version 1.
    pub mod v1 {
        include!(concat!(env!("OUT_DIR"), "/nearline.ingest.v1.rs"));
    }
}

/// `nearline.attribution.v1`: join progress.
pub mod attribution {
    /// Version 1.
    pub mod v1 {
        include!(concat!(env!("OUT_DIR"), "/nearline.attribution.v1.rs"));
    }
}

/// `nearline.insights.v1`: title performance queries.
pub mod insights {
    /// Version 1.
    pub mod v1 {
        include!(concat!(env!("OUT_DIR"), "/nearline.insights.v1.rs"));
    }
}

/// `nearline.billboard.v1`: bandit decisions.
pub mod billboard {
    /// Version 1.
    pub mod v1 {
        include!(concat!(env!("OUT_DIR"), "/nearline.billboard.v1.rs"));
    }
}
