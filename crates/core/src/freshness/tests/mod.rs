//! Table tests for the storage, hit and preflight rules, and property tests for the parser, by
//! topic; the receipt time and the policy they share are here.

mod hits;
mod parser;
mod storage;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use proptest::prelude::*;

use super::*;

/// Mon, 01 Jan 2024 00:00:00 GMT: the receipt time of every table case.
const T0: u64 = 1_704_067_200;

fn t0() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(T0)
}

fn policy() -> Policy {
    Policy {
        max_ttl: Some(Duration::from_secs(3600)),
        default_stale_while_revalidate: Duration::from_secs(10),
        default_stale_if_error: Duration::from_secs(60),
    }
}
