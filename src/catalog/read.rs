//! Read queries for export, stats and tests. They run on read-only connections.
