//! The one way the bench turns rounds into a figure: the median of the
//! per-round values with the smallest and the largest ([`Spread`]).
//!
//! Every comparison runs its sides interleaved in rounds (payhost, baseline,
//! payhost, baseline, ...) and takes the ratio within each round, so that
//! both sides of a ratio saw the same moment of this shared machine; the
//! figure is the median of those per-round ratios ([`Spread::ratios`]), never
//! the best round of each side, whose pairing would depend on which round
//! was picked. A disturbed round widens the spread instead of moving the
//! result, and the spread is what the regression guard (`crate::check`)
//! allows a figure to move by.

use serde_json::{Value, json};

/// The median of some per-round values, with the smallest and the largest.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Spread {
    pub median: f64,
    pub min: f64,
    pub max: f64,
}

impl Spread {
    /// The spread of `values` (NaN throughout when there are none).
    pub fn of(values: &[f64]) -> Spread {
        let mut sorted = values.to_vec();
        let median = median(&mut sorted);
        Spread {
            median,
            min: sorted.first().copied().unwrap_or(f64::NAN),
            max: sorted.last().copied().unwrap_or(f64::NAN),
        }
    }

    /// The spread of one figure of each item (each round, say).
    pub fn of_each<T>(items: &[T], figure: impl Fn(&T) -> f64) -> Spread {
        Spread::of(&items.iter().map(figure).collect::<Vec<_>>())
    }

    /// The spread of `numerator[i] / denominator[i]`, round by round.
    pub fn ratios(numerator: &[f64], denominator: &[f64]) -> Spread {
        let ratios: Vec<f64> = numerator
            .iter()
            .zip(denominator)
            .map(|(n, d)| n / d)
            .collect();
        Spread::of(&ratios)
    }

    /// `max - min`: how far the rounds themselves moved.
    pub fn width(&self) -> f64 {
        self.max - self.min
    }

    /// Each of the three scaled by `factor` (units, percentages).
    pub fn scaled(&self, factor: f64) -> Spread {
        Spread {
            median: self.median * factor,
            min: self.min * factor,
            max: self.max * factor,
        }
    }

    /// `{"median": .., "min": .., "max": ..}`, the form results.json uses
    /// for every spread (and the one [`Spread::from_json`] reads back).
    pub fn json(&self) -> Value {
        json!({ "median": self.median, "min": self.min, "max": self.max })
    }

    /// Reads [`Spread::json`]'s form; `None` for anything else.
    pub fn from_json(value: &Value) -> Option<Spread> {
        let field = |name: &str| value.get(name)?.as_f64();
        Some(Spread {
            median: field("median")?,
            min: field("min")?,
            max: field("max")?,
        })
    }

    /// `median (min-max)`, each written by `f`.
    pub fn show(&self, f: impl Fn(f64) -> String) -> String {
        format!("{} ({}-{})", f(self.median), f(self.min), f(self.max))
    }

    /// `median unit (min-max)`: the unit once, after the median.
    pub fn show_in(&self, f: impl Fn(f64) -> String, unit: &str) -> String {
        format!(
            "{} {unit} ({}-{})",
            f(self.median),
            f(self.min),
            f(self.max)
        )
    }
}

/// Percentile (0..=100) of sorted samples, nearest rank.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Median of unsorted samples (sorts them): the middle one, or the mean of
/// the two middle ones for an even count (with two rounds, the lower one
/// alone would be the min).
pub fn median(samples: &mut [f64]) -> f64 {
    samples.sort_by(f64::total_cmp);
    let n = samples.len();
    match n {
        0 => f64::NAN,
        _ if n % 2 == 1 => samples[n / 2],
        _ => (samples[n / 2 - 1] + samples[n / 2]) / 2.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_spread_is_the_median_with_the_extremes() {
        let s = Spread::of(&[0.5, 0.9, 0.7, 0.6, 0.8]);
        assert_eq!((s.median, s.min, s.max), (0.7, 0.5, 0.9));
        assert!((s.width() - 0.4).abs() < 1e-12);
    }

    #[test]
    fn an_even_count_takes_the_mean_of_the_middle_two() {
        assert_eq!(Spread::of(&[4.0, 1.0, 2.0, 3.0]).median, 2.5);
        assert!(Spread::of(&[]).median.is_nan());
    }

    #[test]
    fn ratios_are_taken_round_by_round() {
        // Best-of-each-side would say 40 / 10 = 4; the rounds say 2 to 3.
        let s = Spread::ratios(&[20.0, 40.0, 30.0], &[10.0, 20.0, 10.0]);
        assert_eq!((s.median, s.min, s.max), (2.0, 2.0, 3.0));
    }

    #[test]
    fn a_spread_reads_back_from_its_json() {
        let s = Spread::of(&[3.0, 1.0, 2.0]);
        assert_eq!(Spread::from_json(&s.json()), Some(s));
        assert_eq!(Spread::from_json(&json!(2.0)), None);
    }
}
