//! The Redis protocol (RESP2 and RESP3), without I/O.
