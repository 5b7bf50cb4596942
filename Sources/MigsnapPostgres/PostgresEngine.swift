// The PostgreSQL engine.
