//! The bodies of keyseal's fuzz targets, shared with the replay tests of the main crate.
pub mod bodies;
