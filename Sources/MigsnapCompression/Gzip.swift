// Streaming gzip.
