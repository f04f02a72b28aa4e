//! Helpers shared by the integration tests.

pub(crate) mod accuracy;
pub(crate) mod corpus;
