//! Ward's engines, authentication, policy and audit: everything but the transport.
