//! Management thread: manifests from files and the HTTP API, compile, publish.
