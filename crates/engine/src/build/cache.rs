//! The build cache: step results by cache key, persisted so that a rebuild after a daemon
//! restart is still instant.
