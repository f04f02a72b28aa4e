//! Ward's storage layer: the Storage trait, the encryption barrier and the SQLite backend.
