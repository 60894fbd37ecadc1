//! The run over time, for the HTML report's charts and the JSON `timeline`: each worker
//! adds its responses to the point of the current interval and hands the point over to
//! a shared timeline when the interval ends (one lock per worker per interval).

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// A latency histogram with 8 log-linear sub-buckets per power of two (about 12%
/// resolution), cheap enough to keep one per interval.
#[derive(Clone)]
pub(crate) struct LogHistogram {
    counts: Box<[u32; BUCKETS]>,
}

const BUCKETS: usize = 512;

/// The bucket of a value in microseconds.
fn bucket(micros: u64) -> usize {
    let value = micros.max(1);
    let exponent = 63 - value.leading_zeros();
    if exponent < 3 {
        value as usize
    } else {
        ((exponent - 2) * 8) as usize + ((value >> (exponent - 3)) & 7) as usize
    }
}

/// The smallest value and the width of a bucket.
fn bucket_range(index: usize) -> (u64, u64) {
    if index < 8 {
        return (index as u64, 1);
    }
    let exponent = (index / 8 + 2) as u32;
    let sub = (index % 8) as u64;
    let width = 1u64 << (exponent - 3);
    ((8 + sub) * width, width)
}

impl LogHistogram {
    pub fn new() -> Self {
        LogHistogram {
            counts: Box::new([0; BUCKETS]),
        }
    }

    pub fn record(&mut self, micros: u64) {
        if let Some(count) = self.counts.get_mut(bucket(micros)) {
            *count = count.saturating_add(1);
        }
    }

    pub fn add(&mut self, other: &LogHistogram) {
        for (mine, theirs) in self.counts.iter_mut().zip(other.counts.iter()) {
            *mine = mine.saturating_add(*theirs);
        }
    }

    pub fn total(&self) -> u64 {
        self.counts.iter().map(|count| u64::from(*count)).sum()
    }

    /// The value at `quantile` (0–1): the middle of the bucket holding it.
    pub fn quantile(&self, quantile: f64) -> Option<u64> {
        let total = self.total();
        if total == 0 {
            return None;
        }
        let rank = ((quantile * total as f64).ceil() as u64).clamp(1, total);
        let mut seen = 0;
        for (index, count) in self.counts.iter().enumerate() {
            seen += u64::from(*count);
            if seen >= rank {
                let (low, width) = bucket_range(index);
                return Some(low + width / 2);
            }
        }
        None
    }

    /// Non-empty buckets, in order.
    pub fn buckets(&self) -> Vec<HistogramBucket> {
        self.counts
            .iter()
            .enumerate()
            .filter(|(_, count)| **count > 0)
            .map(|(index, count)| {
                let (low, width) = bucket_range(index);
                HistogramBucket {
                    from_us: low,
                    to_us: low + width,
                    count: u64::from(*count),
                }
            })
            .collect()
    }
}

/// One bar of the latency histogram: `from_us` ≤ latency < `to_us`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistogramBucket {
    pub from_us: u64,
    pub to_us: u64,
    pub count: u64,
}

/// One interval's counts while the run goes on.
#[derive(Clone)]
pub(crate) struct Point {
    requests: u64,
    responses: u64,
    errors: u64,
    leaks: u64,
    hits: u64,
    with_cache_status: u64,
    latency: LogHistogram,
}

impl Point {
    fn new() -> Self {
        Point {
            requests: 0,
            responses: 0,
            errors: 0,
            leaks: 0,
            hits: 0,
            with_cache_status: 0,
            latency: LogHistogram::new(),
        }
    }

    fn add(&mut self, other: &Point) {
        self.requests += other.requests;
        self.responses += other.responses;
        self.errors += other.errors;
        self.leaks += other.leaks;
        self.hits += other.hits;
        self.with_cache_status += other.with_cache_status;
        self.latency.add(&other.latency);
    }
}

/// The points of all workers, by interval number.
pub(crate) struct Timeline {
    interval: Duration,
    points: Mutex<BTreeMap<u64, Point>>,
}

/// A worker's view: the point of its current interval.
pub(crate) struct SeriesRecorder {
    interval_nanos: u128,
    index: u64,
    current: Point,
}

/// What one completed request adds to its interval.
pub(crate) enum Outcome {
    Response {
        latency_us: u64,
        hit: bool,
        with_cache_status: bool,
        leak: bool,
    },
    Error,
}

impl SeriesRecorder {
    pub fn new(interval: Duration) -> Self {
        SeriesRecorder {
            interval_nanos: interval.as_nanos().max(1),
            index: 0,
            current: Point::new(),
        }
    }

    /// Counts one request that completed `at` after the start.
    pub fn record(&mut self, timeline: &Timeline, at: Duration, outcome: Outcome) {
        let index = u64::try_from(at.as_nanos() / self.interval_nanos).unwrap_or(u64::MAX);
        if index != self.index {
            self.flush(timeline);
            self.index = index;
        }
        let point = &mut self.current;
        point.requests += 1;
        match outcome {
            Outcome::Response {
                latency_us,
                hit,
                with_cache_status,
                leak,
            } => {
                point.responses += 1;
                point.latency.record(latency_us);
                point.hits += u64::from(hit);
                point.with_cache_status += u64::from(with_cache_status);
                point.leaks += u64::from(leak);
            }
            Outcome::Error => point.errors += 1,
        }
    }

    /// Hands the current point to the timeline.
    pub fn flush(&mut self, timeline: &Timeline) {
        if self.current.requests == 0 {
            return;
        }
        if let Ok(mut points) = timeline.points.lock() {
            points
                .entry(self.index)
                .or_insert_with(Point::new)
                .add(&self.current);
        }
        self.current = Point::new();
    }
}

/// One point of the report's time series.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeriesPoint {
    /// Seconds since the start at the end of the interval (the run's end for the last).
    pub end_seconds: f64,
    pub requests: u64,
    pub responses: u64,
    pub errors: u64,
    pub leaks: u64,
    pub hits: u64,
    pub with_cache_status: u64,
    pub requests_per_second: f64,
    pub p50_us: Option<u64>,
    pub p99_us: Option<u64>,
    /// `hits / with_cache_status`; `None` when no response in the interval said.
    pub hit_ratio: Option<f64>,
}

impl Timeline {
    pub fn new(interval: Duration) -> Self {
        Timeline {
            interval,
            points: Mutex::new(BTreeMap::new()),
        }
    }

    /// The series over `elapsed`, every interval present (empty ones as zeros), and the
    /// latency histogram of the whole run.
    pub fn finish(&self, elapsed: Duration) -> (Vec<SeriesPoint>, Vec<HistogramBucket>) {
        let points = match self.points.lock() {
            Ok(points) => points.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        };
        let width = self.interval.as_secs_f64();
        let total = elapsed.as_secs_f64();
        let last = points.keys().next_back().copied().unwrap_or(0);
        let intervals = ((total / width).ceil() as u64).max(last + 1);
        let mut overall = LogHistogram::new();
        let mut merged: Vec<(f64, f64, Point)> = Vec::new();
        for index in 0..intervals {
            let point = points.get(&index).cloned().unwrap_or_else(Point::new);
            overall.add(&point.latency);
            let start = index as f64 * width;
            let end = ((index + 1) as f64 * width).min(total.max(start));
            match merged.last_mut() {
                // A last sliver of an interval would show a rate over a few microseconds:
                // it joins the point before it.
                Some((_, previous_end, previous))
                    if end - start < width / 2.0 && index + 1 == intervals =>
                {
                    previous.add(&point);
                    *previous_end = end;
                }
                _ => merged.push((start, end, point)),
            }
        }
        let series = merged
            .into_iter()
            .map(|(start, end, point)| {
                let span = end - start;
                SeriesPoint {
                    end_seconds: end,
                    requests: point.requests,
                    responses: point.responses,
                    errors: point.errors,
                    leaks: point.leaks,
                    hits: point.hits,
                    with_cache_status: point.with_cache_status,
                    requests_per_second: if span > 0.0 {
                        point.requests as f64 / span
                    } else {
                        0.0
                    },
                    p50_us: point.latency.quantile(0.50),
                    p99_us: point.latency.quantile(0.99),
                    hit_ratio: (point.with_cache_status > 0)
                        .then(|| point.hits as f64 / point.with_cache_status as f64),
                }
            })
            .collect();
        (series, overall.buckets())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_cover_every_value_in_order() {
        let mut previous = 0;
        for value in [1u64, 2, 7, 8, 9, 15, 16, 17, 100, 1000, 65_535, 1 << 40] {
            let index = bucket(value);
            assert!(index >= previous, "{value}");
            let (low, width) = bucket_range(index);
            assert!(
                low <= value && value < low + width,
                "{value}: {low}+{width}"
            );
            previous = index;
        }
        assert!(bucket(u64::MAX) < BUCKETS);
    }

    #[test]
    fn quantiles_land_within_a_bucket() {
        let mut histogram = LogHistogram::new();
        for micros in 1..=1000 {
            histogram.record(micros);
        }
        let p50 = histogram.quantile(0.5).expect("p50");
        assert!((440..=560).contains(&p50), "{p50}");
        let p99 = histogram.quantile(0.99).expect("p99");
        assert!((900..=1100).contains(&p99), "{p99}");
        assert_eq!(histogram.total(), 1000);
        assert_eq!(
            histogram.buckets().iter().map(|b| b.count).sum::<u64>(),
            1000
        );
        assert_eq!(LogHistogram::new().quantile(0.5), None);
    }

    #[test]
    fn workers_points_merge_into_one_series() {
        let timeline = Timeline::new(Duration::from_millis(100));
        let mut one = SeriesRecorder::new(Duration::from_millis(100));
        let mut two = SeriesRecorder::new(Duration::from_millis(100));
        let response = |leak| Outcome::Response {
            latency_us: 500,
            hit: true,
            with_cache_status: true,
            leak,
        };
        one.record(&timeline, Duration::from_millis(10), response(false));
        two.record(&timeline, Duration::from_millis(20), response(true));
        one.record(&timeline, Duration::from_millis(250), Outcome::Error);
        one.flush(&timeline);
        two.flush(&timeline);
        let (series, histogram) = timeline.finish(Duration::from_millis(280));
        assert_eq!(series.len(), 3);
        assert_eq!(
            (series[0].requests, series[0].leaks, series[0].hits),
            (2, 1, 2)
        );
        assert_eq!(series[0].hit_ratio, Some(1.0));
        assert_eq!(
            series[1].requests, 0,
            "an empty interval is a zero, not a gap"
        );
        assert_eq!((series[2].requests, series[2].errors), (1, 1));
        assert!((series[2].end_seconds - 0.28).abs() < 1e-9);
        // A last sliver (here 10ms of a 100ms interval) joins the point before it.
        let sliver = Timeline::new(Duration::from_millis(100));
        let mut one = SeriesRecorder::new(Duration::from_millis(100));
        one.record(&sliver, Duration::from_millis(50), response(false));
        one.record(&sliver, Duration::from_millis(105), response(false));
        one.flush(&sliver);
        let (joined, _) = sliver.finish(Duration::from_millis(110));
        assert_eq!(joined.len(), 1);
        assert_eq!(joined[0].requests, 2);
        assert!((joined[0].requests_per_second - 2.0 / 0.11).abs() < 1e-6);
        assert!((series[0].requests_per_second - 20.0).abs() < 1e-6);
        assert_eq!(histogram.iter().map(|b| b.count).sum::<u64>(), 2);
    }
}
