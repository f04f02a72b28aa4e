//! Ward's ACL policies: Vault's HCL/JSON policy language and path matching.
