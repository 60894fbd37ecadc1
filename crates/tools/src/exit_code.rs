//! Process exit codes shared by every cors-edge command.

/// Everything went as it should: all probe checks passed (warnings allowed), or the
/// load test finished without errors and without cross-origin leaks.
pub const OK: i32 = 0;
/// A check failed or the input was bad: a probe check FAILed, the load test saw a
/// leak or a request error, or an input file or the target could not be used.
pub const FAILED: i32 = 1;
/// The command line itself was wrong (missing bound, share outside 0–1, …).
pub const USAGE: i32 = 2;
