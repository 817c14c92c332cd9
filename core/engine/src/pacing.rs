//! Per-SIM pacing, counted in parts: a minimum spacing between hand-overs (with jitter), a
//! daily cap, and a separate daily cap for the expedited lane. Pure: the caller loads and
//! stores [`SimPace`] rows and passes `now`.

use simrelay_protocol::Millis;

use crate::config::{DAY, EngineConfig, MINUTE};

/// Pacing state of one SIM.
#[derive(Debug, Clone, PartialEq)]
pub struct SimPace {
    pub sub_id: i32,
    pub parts_per_minute: u32,
    pub daily_cap: u32,
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
        if now < self.next_free_at {
            return Err(Wait::Until(self.next_free_at));
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

    /// Books `parts` on this SIM. `jitter` is a uniform draw in 0..=1 scaled by the config.
    /// Expedited parts skip the jitter but keep the spacing (Android counts every part).
    pub fn charge(
        &mut self,
        parts: u32,
        expedited: bool,
        now: Millis,
        jitter: f64,
        config: &EngineConfig,
    ) {
        self.roll_day(now);
        let base = self.interval() * Millis::from(parts.max(1));
        let extra = if expedited {
            0
        } else {
            (base as f64 * config.jitter * jitter.clamp(0.0, 1.0)) as Millis
        };
        self.next_free_at = self.next_free_at.max(now) + base + extra;
        if expedited {
            self.expedited_today = self.expedited_today.saturating_add(parts);
        } else {
            self.sent_today = self.sent_today.saturating_add(parts);
        }
    }
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

    #[test]
    fn spacing_is_per_part() {
        let config = EngineConfig::default();
        let mut s = sim(20, 1000);
        let now = 10 * DAY;
        assert_eq!(s.check(3, false, now, &config), Ok(()));
        s.charge(3, false, now, 0.0, &config);
        assert_eq!(s.next_free_at, now + 9_000);
        assert_eq!(
            s.check(1, false, now + 8_999, &config),
            Err(Wait::Until(now + 9_000))
        );
        assert_eq!(s.check(1, false, now + 9_000, &config), Ok(()));
    }

    #[test]
    fn daily_cap_waits_for_the_next_day_and_resets() {
        let config = EngineConfig::default();
        let mut s = sim(60_000, 5);
        let now = 3 * DAY + 100;
        s.check(4, false, now, &config).expect("room");
        s.charge(4, false, now, 0.0, &config);
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
    fn one_long_message_may_exceed_an_untouched_cap() {
        let config = EngineConfig::default();
        let mut s = sim(20, 2);
        assert_eq!(s.check(5, false, DAY, &config), Ok(()));
    }

    proptest! {
        /// Over any run of hand-overs, no window of one minute holds more parts than the pace
        /// allows (plus the one hand-over that may start at the window's edge).
        #[test]
        fn never_more_than_the_pace_per_minute(
            ppm in 1u32..=30,
            sends in proptest::collection::vec((1u32..=4, 0f64..=1.0, 0i64..5_000), 1..60),
        ) {
            let config = EngineConfig::default();
            let mut s = sim(ppm, u32::MAX);
            let mut now = DAY;
            let mut log = Vec::new();
            for (parts, jitter, gap) in sends {
                now += gap;
                if let Err(Wait::Until(t)) = s.check(parts, false, now, &config) {
                    prop_assert!(t > now);
                    now = t;
                    prop_assert_eq!(s.check(parts, false, now, &config), Ok(()));
                }
                s.charge(parts, false, now, jitter, &config);
                log.push((now, parts));
            }
            for &(start, _) in &log {
                let in_window: u32 = log
                    .iter()
                    .filter(|(t, _)| *t >= start && *t < start + MINUTE)
                    .map(|(_, p)| p)
                    .sum();
                let last = log
                    .iter()
                    .rfind(|(t, _)| *t >= start && *t < start + MINUTE)
                    .map_or(0, |(_, p)| *p);
                prop_assert!(in_window <= ppm + last, "{in_window} parts in a minute at pace {ppm}");
            }
        }
    }
}
