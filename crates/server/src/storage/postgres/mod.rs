//! The PostgreSQL back-end (for deployments larger than one machine's SQLite).
