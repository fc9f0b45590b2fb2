//! (SQLite backend: in progress)
