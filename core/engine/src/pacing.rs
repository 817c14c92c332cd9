//! Per-SIM pacing, counted in parts: a minimum spacing between hand-overs, jittered without
//! slowing the pace, a daily cap, and a separate daily cap for the expedited lane. Pure: the
//! caller loads and stores [`SimPace`] rows and passes `now`.
//!
//! Jitter is pace-neutral. Hand-overs keep the schedule they would keep with no jitter: each
//! one books a slot of one interval per part, and `next_free_at` is where the next slot starts.
//! A hand-over is released at its slot's start plus an offset in `0..=span`, where the span is
//! `jitter × interval`. So the gaps vary around the nominal spacing (from `parts × interval −
//! span` to `parts × interval + span`), the mean pace is the configured pace whatever the
//! jitter, and a slot never drifts more than the span from the nominal schedule. The offset is
//! a hash of the slot's start, the SIM and the seed: it needs no stored state.
//!
//! Rolling minute: a hand-over at `t` fills a slot that starts within `[t − span, t]`, and
//! slots never overlap, so the hand-overs in any minute (both ends included, as Android counts)
//! hold at most `60 s + span` of slots. The span is kept under `(pace + 1) × interval − 60 s`,
//! so that is at most `pace` parts plus the hand-over at the minute's end: the same bound as
//! with no jitter. At 29 parts/min, the highest pace whose schedule stays within Android's 30
//! parts per rolling minute (`reference/android-sms.md` section 1), single-part hand-overs
//! therefore never exceed 30 in a minute, at any jitter. The expedited lane skips the offset
//! and keeps the spacing (Android counts every part).

use simrelay_protocol::Millis;

use crate::config::{DAY, EngineConfig, MINUTE};

/// Pacing state of one SIM.
#[derive(Debug, Clone, PartialEq)]
pub struct SimPace {
    pub sub_id: i32,
    pub parts_per_minute: u32,
    pub daily_cap: u32,
    /// Start of the next free slot on the nominal (unjittered) schedule.
    pub next_free_at: Millis,
    /// UTC day number the counters belong to.
    pub day: i64,
    pub sent_today: u32,
    pub expedited_today: u32,
}

/// Why a SIM cannot take a hand-over now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    /// Try again at this instant.
    Until(Millis),
}

impl SimPace {
    /// Milliseconds one part occupies the SIM (0 above 60,000 parts/min: unpaced).
    pub fn interval(&self) -> Millis {
        MINUTE / Millis::from(self.parts_per_minute.max(1))
    }

    /// The longest release offset of a normal hand-over: `jitter × interval`, kept short
    /// enough that a minute never holds one more slot than with no jitter (module comment).
    pub fn jitter_span(&self, config: &EngineConfig) -> Millis {
        let interval = self.interval();
        let span = (interval as f64 * config.jitter.clamp(0.0, 1.0)) as Millis;
        let room = (Millis::from(self.parts_per_minute.max(1)) + 1) * interval - MINUTE - 1;
        span.min(room).max(0)
    }

    /// When the next hand-over may go: the next slot's start, plus its offset unless it is
    /// expedited.
    pub fn release_at(&self, expedited: bool, config: &EngineConfig) -> Millis {
        let span = if expedited {
            0
        } else {
            self.jitter_span(config)
        };
        if span == 0 {
            return self.next_free_at;
        }
        let key = (self.next_free_at as u64)
            ^ (u64::from(self.sub_id as u32) << 40)
            ^ config.seed.unwrap_or(0).rotate_left(17);
        let offset = mix(key) % (span as u64 + 1);
        self.next_free_at.saturating_add(offset as Millis)
    }

    fn roll_day(&mut self, now: Millis) {
        let today = now.div_euclid(DAY);
        if today != self.day {
            self.day = today;
            self.sent_today = 0;
            self.expedited_today = 0;
        }
    }

    /// Whether `parts` may go now; the first message of a day may exceed the cap so that a
    /// long text cannot starve.
    pub fn check(
        &mut self,
        parts: u32,
        expedited: bool,
        now: Millis,
        config: &EngineConfig,
    ) -> Result<(), Wait> {
        self.roll_day(now);
        let release = self.release_at(expedited, config);
        if now < release {
            return Err(Wait::Until(release));
        }
        let (used, cap) = if expedited {
            (self.expedited_today, config.expedited_daily_cap)
        } else {
            (self.sent_today, self.daily_cap)
        };
        if used > 0 && used.saturating_add(parts) > cap {
            return Err(Wait::Until((self.day + 1) * DAY));
        }
        Ok(())
    }

    /// Books `parts` on this SIM for a hand-over at `now`. The hand-over fills the booked slot
    /// when it goes within that slot's jitter span (a late tick does not slow the pace), else
    /// the slot starting one span before `now` (the SIM was idle). With no jitter that is
    /// `max(next_free_at, now)`, as it always was.
    pub fn charge(&mut self, parts: u32, expedited: bool, now: Millis, config: &EngineConfig) {
        self.roll_day(now);
        let span = if expedited {
            0
        } else {
            self.jitter_span(config)
        };
        let slot = self.next_free_at.max(now.saturating_sub(span));
        self.next_free_at = slot.saturating_add(self.interval() * Millis::from(parts.max(1)));
        if expedited {
            self.expedited_today = self.expedited_today.saturating_add(parts);
        } else {
            self.sent_today = self.sent_today.saturating_add(parts);
        }
    }
}

/// splitmix64's finaliser: spreads the slot's bits over the whole word.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sim(ppm: u32, cap: u32) -> SimPace {
        SimPace {
            sub_id: 1,
            parts_per_minute: ppm,
            daily_cap: cap,
            next_free_at: 0,
            day: 0,
            sent_today: 0,
            expedited_today: 0,
        }
    }

    fn jittered(jitter: f64, seed: u64) -> EngineConfig {
        EngineConfig {
            jitter,
            seed: Some(seed),
            ..EngineConfig::default()
        }
    }

    /// A SIM that always has work, on virtual time: each hand-over goes at the first `tick`
    /// at or after its release. Returns (time, parts) per hand-over.
    fn saturated(
        s: &mut SimPace,
        config: &EngineConfig,
        parts: impl Fn(usize) -> u32,
        n: usize,
        tick: Millis,
    ) -> Vec<(Millis, u32)> {
        let mut now = DAY;
        let mut log = Vec::with_capacity(n);
        for i in 0..n {
            let p = parts(i);
            while let Err(Wait::Until(t)) = s.check(p, false, now, config) {
                assert!(t > now, "a wait lies in the future");
                now = (t + tick - 1).div_euclid(tick) * tick;
            }
            s.charge(p, false, now, config);
            log.push((now, p));
        }
        log
    }

    /// Virtual time per part over a saturated run, against the interval.
    fn pace_ratio(log: &[(Millis, u32)], interval: Millis) -> f64 {
        let (first, last) = (log[0].0, log[log.len() - 1].0);
        let parts: u32 = log[..log.len() - 1].iter().map(|(_, p)| p).sum();
        (last - first) as f64 / f64::from(parts) / interval as f64
    }

    #[test]
    fn spacing_is_per_part() {
        let config = jittered(0.0, 1);
        let mut s = sim(20, 1000);
        let now = 10 * DAY;
        assert_eq!(s.check(3, false, now, &config), Ok(()));
        s.charge(3, false, now, &config);
        assert_eq!(s.next_free_at, now + 9_000);
        assert_eq!(
            s.check(1, false, now + 8_999, &config),
            Err(Wait::Until(now + 9_000))
        );
        assert_eq!(s.check(1, false, now + 9_000, &config), Ok(()));
    }

    #[test]
    fn jitter_keeps_the_mean_pace_at_the_nominal_pace() {
        for ppm in [1, 7, 20, 29, 30, 600] {
            for jitter in [0.1, 0.25, 0.5, 1.0] {
                for seed in [1, 2, 3] {
                    let config = jittered(jitter, seed);
                    let mut s = sim(ppm, u32::MAX);
                    let log = saturated(&mut s, &config, |_| 1, 2_000, 1);
                    let ratio = pace_ratio(&log, s.interval());
                    assert!(
                        (ratio - 1.0).abs() <= 0.01,
                        "{ppm}/min, jitter {jitter}: {ratio:.4} of the interval per part"
                    );
                    // The gaps do vary around the interval.
                    let gaps: Vec<Millis> = log.windows(2).map(|w| w[1].0 - w[0].0).collect();
                    let (min, max) = (gaps.iter().min(), gaps.iter().max());
                    assert!(
                        min < Some(&s.interval()) && max > Some(&s.interval()),
                        "{ppm}/min, jitter {jitter}: gaps {min:?}..{max:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn the_mean_pace_holds_for_long_texts_and_a_coarse_tick() {
        let config = jittered(0.25, 9);
        let mut s = sim(20, u32::MAX);
        let log = saturated(&mut s, &config, |i| 1 + (i % 4) as u32, 2_000, 1);
        let ratio = pace_ratio(&log, s.interval());
        assert!((ratio - 1.0).abs() <= 0.01, "multipart: {ratio:.4}");
        // The rack simulator steps every 250 ms: a hand-over that goes late by less than
        // the span keeps its slot, so the schedule does not drift.
        let mut s = sim(20, u32::MAX);
        let log = saturated(&mut s, &config, |_| 1, 2_000, 250);
        let ratio = pace_ratio(&log, s.interval());
        assert!((ratio - 1.0).abs() <= 0.01, "250 ms tick: {ratio:.4}");
    }

    #[test]
    fn offsets_spread_over_the_whole_span() {
        let config = jittered(0.25, 4);
        let mut s = sim(20, u32::MAX);
        let span = s.jitter_span(&config);
        assert_eq!(span, 750);
        let mut offsets = Vec::new();
        let mut now = DAY;
        for _ in 0..4_000 {
            let release = s.release_at(false, &config);
            offsets.push(release - s.next_free_at);
            now = now.max(release);
            s.charge(1, false, now, &config);
        }
        let mean = offsets.iter().sum::<Millis>() as f64 / offsets.len() as f64;
        assert!(
            (mean / span as f64 - 0.5).abs() < 0.03,
            "mean offset {mean}"
        );
        assert!(offsets.iter().all(|o| (0..=span).contains(o)));
        assert!(offsets.iter().any(|o| *o < span / 20));
        assert!(offsets.iter().any(|o| *o > span - span / 20));
    }

    #[test]
    fn at_29_per_minute_no_rolling_minute_exceeds_androids_30() {
        for jitter in [0.25, 1.0] {
            for seed in 0..20 {
                let config = jittered(jitter, seed);
                let mut s = sim(29, u32::MAX);
                let log = saturated(&mut s, &config, |_| 1, 600, 1);
                for &(start, _) in &log {
                    // Android keeps a part for 60 s and counts both ends (SmsUsageMonitor).
                    let n = log
                        .iter()
                        .filter(|(t, _)| *t >= start && *t <= start + MINUTE)
                        .count();
                    assert!(
                        n <= 30,
                        "jitter {jitter}, seed {seed}: {n} parts in a minute"
                    );
                }
            }
        }
    }

    #[test]
    fn the_span_never_adds_a_slot_to_a_minute() {
        // 7/min: 8,571 ms, 3 ms short of a whole minute in 7 slots, so jitter 1.0 is trimmed.
        let s = sim(7, 1);
        assert_eq!(s.jitter_span(&jittered(1.0, 0)), 8 * 8_571 - MINUTE - 1);
        assert_eq!(s.jitter_span(&jittered(0.25, 0)), 2_142);
        // Unpaced SIMs have nothing to jitter.
        assert_eq!(sim(100_000, 1).jitter_span(&jittered(1.0, 0)), 0);
        assert_eq!(sim(u32::MAX, 1).jitter_span(&jittered(1.0, 0)), 0);
    }

    #[test]
    fn expedited_skips_the_offset_but_keeps_the_spacing() {
        let config = jittered(1.0, 5);
        let mut s = sim(20, u32::MAX);
        // A slot whose offset is not zero.
        s.next_free_at = (DAY..)
            .step_by(1_000)
            .find(|t| {
                let probe = SimPace {
                    next_free_at: *t,
                    ..s.clone()
                };
                probe.release_at(false, &config) > *t + 100
            })
            .expect("some slot has an offset");
        let slot = s.next_free_at;
        let release = s.release_at(false, &config);
        assert_eq!(s.check(1, false, slot, &config), Err(Wait::Until(release)));
        assert_eq!(s.check(1, true, slot, &config), Ok(()));
        s.charge(1, true, slot, &config);
        assert_eq!(s.next_free_at, slot + 3_000, "the spacing holds");
        assert_eq!(s.release_at(true, &config), slot + 3_000);
    }

    #[test]
    fn daily_cap_waits_for_the_next_day_and_resets() {
        let config = EngineConfig::default();
        let mut s = sim(60_000, 5);
        let now = 3 * DAY + 100;
        s.check(4, false, now, &config).expect("room");
        s.charge(4, false, now, &config);
        assert_eq!(
            s.check(2, false, now + 10, &config),
            Err(Wait::Until(4 * DAY))
        );
        // The expedited lane has its own cap.
        assert_eq!(s.check(2, true, now + 10, &config), Ok(()));
        assert_eq!(s.check(2, false, 4 * DAY, &config), Ok(()));
        assert_eq!(s.sent_today, 0);
    }

    #[test]
    fn both_daily_caps_hold_with_jitter() {
        let config = EngineConfig {
            expedited_daily_cap: 3,
            ..jittered(0.25, 6)
        };
        let mut s = sim(20, 5);
        let mut now = 5 * DAY;
        for expedited in [false, true] {
            let mut sent = 0;
            loop {
                match s.check(1, expedited, now, &config) {
                    Ok(()) => {
                        s.charge(1, expedited, now, &config);
                        sent += 1;
                    }
                    Err(Wait::Until(t)) if t == 6 * DAY => break,
                    Err(Wait::Until(t)) => now = t,
                }
            }
            assert_eq!(sent, if expedited { 3 } else { 5 });
        }
        assert_eq!((s.sent_today, s.expedited_today), (5, 3));
    }

    #[test]
    fn one_long_message_may_exceed_an_untouched_cap() {
        let config = EngineConfig::default();
        let mut s = sim(20, 2);
        assert_eq!(s.check(5, false, DAY, &config), Ok(()));
    }

    proptest! {
        /// With no jitter the schedule is the plain one: each hand-over books its parts'
        /// intervals from `max(next_free_at, now)` and may go from `next_free_at`.
        #[test]
        fn no_jitter_is_the_plain_schedule(
            ppm in 1u32..=120,
            sends in proptest::collection::vec((1u32..=4, any::<bool>(), 0i64..10_000), 1..60),
        ) {
            // No daily cap of either lane here (60 expedited hand-overs can pass the lane's 100).
            let config = EngineConfig {
                expedited_daily_cap: u32::MAX / 2,
                ..jittered(0.0, 3)
            };
            let mut s = sim(ppm, u32::MAX);
            let mut now = DAY;
            for (parts, expedited, gap) in sends {
                now += gap;
                let free = s.next_free_at;
                prop_assert_eq!(s.release_at(expedited, &config), free);
                let expected = if now < free { Err(Wait::Until(free)) } else { Ok(()) };
                prop_assert_eq!(s.check(parts, expedited, now, &config), expected);
                now = now.max(free);
                s.charge(parts, expedited, now, &config);
                prop_assert_eq!(s.next_free_at, now + s.interval() * Millis::from(parts));
            }
        }

        /// Over any run of hand-overs, at any jitter and any mix of lanes: no gap is shorter
        /// than the last hand-over's intervals less its span, and no minute (both ends
        /// included) holds more parts than the pace allows plus the one hand-over that may
        /// start at the minute's end.
        #[test]
        fn never_more_than_the_pace_per_minute(
            ppm in 1u32..=60,
            jitter in 0f64..=1.0,
            seed in any::<u64>(),
            sends in proptest::collection::vec(
                (1u32..=4, proptest::bool::weighted(0.1), 0i64..5_000),
                1..80,
            ),
        ) {
            let config = jittered(jitter, seed);
            let mut s = sim(ppm, u32::MAX);
            let span = s.jitter_span(&config);
            let mut now = DAY;
            let mut log: Vec<(Millis, u32, bool)> = Vec::new();
            for (parts, expedited, gap) in sends {
                now += gap;
                if let Err(Wait::Until(t)) = s.check(parts, expedited, now, &config) {
                    prop_assert!(t > now);
                    now = t;
                    prop_assert_eq!(s.check(parts, expedited, now, &config), Ok(()));
                }
                s.charge(parts, expedited, now, &config);
                log.push((now, parts, expedited));
            }
            for w in log.windows(2) {
                let (t0, parts, expedited) = w[0];
                let slack = if expedited { 0 } else { span };
                prop_assert!(w[1].0 - t0 >= s.interval() * Millis::from(parts) - slack);
            }
            for &(start, _, _) in &log {
                let inside = |t: Millis| t >= start && t <= start + MINUTE;
                let in_window: u32 = log.iter().filter(|e| inside(e.0)).map(|e| e.1).sum();
                let last = log.iter().rfind(|e| inside(e.0)).map_or(0, |e| e.1);
                prop_assert!(in_window <= ppm + last, "{in_window} parts in a minute at pace {ppm}");
            }
        }
    }
}
