//! No code: this package holds the whole-system tests in `tests/`, which start every service
//! as its own process (as Kubernetes runs them) from the workspace's debug binaries.
