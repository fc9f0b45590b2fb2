//! Precise pacing: every send has a scheduled time, computed from the start of the run,
//! never from the previous send.
//!
//! A run at `R` events/s over `W` workers gives worker `w` the times
//! `start + (k + w/W) / r_w` for its `k`-th send, where `r_w` is its share of the rate:
//! the workers interleave evenly and the sum of their schedules is exactly `R`. A worker
//! wakes up (tokio timers have a 1 ms resolution), sends everything that is due, and
//! sleeps until the next due time — so the average rate is exact whatever the timer
//! resolution, and a worker that fell behind (a full window, a slow server) catches up
//! by sending what is overdue at once rather than silently lowering the rate. How late
//! each send was against its schedule is reported as the schedule lag.
//!
//! Sleeping a fixed period per message instead would drift by the cost of every send
//! and by the timer's rounding, and could never reach rates above 1000/s per task.

use std::time::{Duration, Instant};

/// What a worker should do next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Send now; the send was scheduled for this instant (`None`: as fast as possible).
    Now(Option<Instant>),
    /// Nothing is due before this instant.
    At(Instant),
    /// The worker's share is done (count reached or deadline passed).
    Done,
}

/// The schedule of one worker.
#[derive(Debug, Clone)]
pub struct Pacer {
    start: Instant,
    /// Nanoseconds between two sends; `None`: as fast as possible.
    period_ns: Option<f64>,
    /// Where in its first period this worker starts, in `[0, 1)`.
    phase: f64,
    sent: u64,
    limit: Option<u64>,
    deadline: Option<Instant>,
}

impl Pacer {
    /// A schedule starting at `start` with `rate` sends per second (`None`: as fast as
    /// possible), this worker's `phase` in `[0, 1)`, at most `limit` sends, none due at or
    /// after `deadline`.
    pub fn new(
        start: Instant,
        rate: Option<f64>,
        phase: f64,
        limit: Option<u64>,
        deadline: Option<Instant>,
    ) -> Pacer {
        Pacer {
            start,
            period_ns: rate.filter(|r| *r > 0.0).map(|r| 1e9 / r),
            phase: phase.clamp(0.0, 1.0),
            sent: 0,
            limit,
            deadline,
        }
    }

    /// When send `k` is due.
    fn due(&self, k: u64) -> Option<Instant> {
        self.period_ns.map(|period| {
            let offset = (k as f64 + self.phase) * period;
            self.start + Duration::from_nanos(offset as u64)
        })
    }

    /// What to do at `now`.
    pub fn next(&self, now: Instant) -> Next {
        if self.limit.is_some_and(|limit| self.sent >= limit) {
            return Next::Done;
        }
        match self.due(self.sent) {
            None => {
                if self.deadline.is_some_and(|d| now >= d) {
                    Next::Done
                } else {
                    Next::Now(None)
                }
            }
            Some(due) => {
                if self.deadline.is_some_and(|d| due >= d) {
                    Next::Done
                } else if due <= now {
                    Next::Now(Some(due))
                } else {
                    Next::At(due)
                }
            }
        }
    }

    /// Records that the due send happened.
    pub fn advance(&mut self) {
        self.sent += 1;
    }

    /// Sends made so far.
    pub fn sent(&self) -> u64 {
        self.sent
    }

    /// Ends the schedule early (an interrupted run).
    pub fn stop(&mut self) {
        self.limit = Some(self.sent);
    }
}

/// Splits `total` into `parts` shares proportional to `weights`, summing exactly to
/// `total` (largest remainders get the extra units, earlier parts first on ties).
pub fn split(total: u64, weights: &[usize]) -> Vec<u64> {
    let sum: u128 = weights.iter().map(|&w| w as u128).sum();
    if sum == 0 {
        return vec![0; weights.len()];
    }
    let mut shares: Vec<u64> = weights
        .iter()
        .map(|&w| (u128::from(total) * w as u128 / sum) as u64)
        .collect();
    let mut left = total - shares.iter().sum::<u64>();
    let mut order: Vec<usize> = (0..weights.len()).collect();
    order.sort_by_key(|&i| {
        std::cmp::Reverse((u128::from(total) * weights[i] as u128 % sum, usize::MAX - i))
    });
    for i in order {
        if left == 0 {
            break;
        }
        if weights[i] > 0 {
            shares[i] += 1;
            left -= 1;
        }
    }
    shares
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedules_are_exact_and_interleaved() {
        let start = Instant::now();
        let a = Pacer::new(start, Some(1000.0), 0.0, None, None);
        let b = Pacer::new(start, Some(1000.0), 0.5, None, None);
        assert_eq!(a.due(0), Some(start));
        assert_eq!(a.due(10), Some(start + Duration::from_millis(10)));
        assert_eq!(b.due(0), Some(start + Duration::from_micros(500)));
        // Nothing is due early; everything overdue is due now.
        assert_eq!(
            a.next(start + Duration::from_micros(1)),
            Next::Now(Some(start))
        );
        let mut c = Pacer::new(start, Some(1000.0), 0.0, None, None);
        c.advance();
        assert_eq!(
            c.next(start + Duration::from_micros(10)),
            Next::At(start + Duration::from_millis(1))
        );
        let late = start + Duration::from_millis(5);
        let mut due = 0;
        while let Next::Now(_) = c.next(late) {
            c.advance();
            due += 1;
        }
        assert_eq!(due, 5);
    }

    #[test]
    fn limits_and_deadlines_end_the_schedule() {
        let start = Instant::now();
        let mut p = Pacer::new(start, Some(100.0), 0.0, Some(2), None);
        p.advance();
        p.advance();
        assert_eq!(p.next(start + Duration::from_secs(9)), Next::Done);
        let p = Pacer::new(
            start,
            Some(100.0),
            0.0,
            None,
            Some(start + Duration::from_millis(5)),
        );
        assert_eq!(p.next(start), Next::Now(Some(start)));
        let mut q = p.clone();
        q.advance();
        assert_eq!(q.next(start), Next::Done);
        let max = Pacer::new(start, None, 0.0, None, Some(start + Duration::from_secs(1)));
        assert_eq!(max.next(start), Next::Now(None));
        assert_eq!(max.next(start + Duration::from_secs(1)), Next::Done);
    }

    #[test]
    fn splits_sum_to_the_total() {
        assert_eq!(split(10, &[1, 1, 1]), vec![4, 3, 3]);
        assert_eq!(split(10, &[2, 1, 1]), vec![5, 3, 2]);
        assert_eq!(split(0, &[1, 1]), vec![0, 0]);
        assert_eq!(split(5, &[0, 0]), vec![0, 0]);
        let shares = split(1_000_003, &[3, 7, 11, 0, 5]);
        assert_eq!(shares.iter().sum::<u64>(), 1_000_003);
        assert_eq!(shares[3], 0);
    }
}
