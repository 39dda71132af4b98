//! Placeholder: being written (connection credentials from integration.sync_connections).
