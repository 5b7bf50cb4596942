// The SQLite engine.
