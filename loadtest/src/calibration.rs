//! Scoring an outlook: what shoppers were told against what they got.
//! Pure: the sale simulation (`outlook.rs`) feeds it one `Told` per buyer.

/// What one buyer was last told before admission (or before the sale ended
/// for them), and whether they got a seat.
#[derive(Debug, Clone, PartialEq)]
pub struct Told {
    pub chance: f64,
    pub band: String,
    pub seats_left: i64,
    /// `None` in the pre-queue.
    pub ahead: Option<u64>,
    pub got: bool,
}

/// One row of a calibration table.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub label: String,
    pub n: usize,
    pub mean_told: f64,
    pub share_got: f64,
}

/// The bands' promises: the share who get a seat should lie in these.
pub fn band_range(band: &str) -> Option<(f64, f64)> {
    match band {
        "LIKELY" => Some((0.7, 1.0)),
        "POSSIBLE" => Some((0.2, 0.7)),
        "UNLIKELY" => Some((0.0, 0.2)),
        _ => None,
    }
}

fn row(label: String, of: &[&Told]) -> Row {
    let n = of.len();
    let mean = |f: &dyn Fn(&Told) -> f64| {
        if n == 0 {
            0.0
        } else {
            of.iter().map(|t| f(t)).sum::<f64>() / n as f64
        }
    };
    Row {
        label,
        n,
        mean_told: mean(&|t| t.chance),
        share_got: mean(&|t| if t.got { 1.0 } else { 0.0 }),
    }
}

/// Per band, in the contract's order.
pub fn by_band(told: &[Told]) -> Vec<Row> {
    ["LIKELY", "POSSIBLE", "UNLIKELY", "SOLD_OUT"]
        .iter()
        .map(|b| {
            let of: Vec<&Told> = told.iter().filter(|t| t.band == *b).collect();
            row((*b).to_owned(), &of)
        })
        .collect()
}

/// Per tenth of the told chance ([0, 0.1), …, [0.9, 1.0]).
pub fn by_decile(told: &[Told]) -> Vec<Row> {
    (0..10)
        .map(|d| {
            let of: Vec<&Told> = told
                .iter()
                .filter(|t| ((t.chance * 10.0).floor() as usize).min(9) == d)
                .collect();
            row(format!("{:.1}–{:.1}", d as f64 / 10.0, (d + 1) as f64 / 10.0), &of)
        })
        .collect()
}

/// Expected calibration error over the deciles: each decile's gap between
/// told and got, weighed by its share of buyers.
pub fn ece(told: &[Told]) -> f64 {
    let n = told.len().max(1) as f64;
    by_decile(told)
        .iter()
        .map(|r| r.n as f64 / n * (r.mean_told - r.share_got).abs())
        .sum()
}

/// Mean squared error of a forecast against the outcomes.
pub fn brier(told: &[Told], forecast: impl Fn(&Told) -> f64) -> f64 {
    if told.is_empty() {
        return 0.0;
    }
    told.iter()
        .map(|t| {
            let o = if t.got { 1.0 } else { 0.0 };
            (forecast(t) - o).powi(2)
        })
        .sum::<f64>()
        / told.len() as f64
}

/// Baseline: "a seat if seats left ≥ people ahead × 2".
pub fn rule_of_two(t: &Told) -> f64 {
    match t.ahead {
        Some(ahead) if t.seats_left >= ahead as i64 * 2 && t.seats_left > 0 => 1.0,
        None if t.seats_left > 0 => 0.5,
        _ => 0.0,
    }
}

/// Baseline: everyone told the sale's base rate (known only afterwards).
pub fn base_rate(told: &[Told]) -> f64 {
    if told.is_empty() {
        return 0.0;
    }
    told.iter().filter(|t| t.got).count() as f64 / told.len() as f64
}

/// The targets a sale's calibration must meet; each failure named.
pub fn failures(told: &[Told], undersubscribed: bool) -> Vec<String> {
    let mut out = Vec::new();
    for r in by_band(told) {
        if let Some((lo, hi)) = band_range(&r.label)
            && r.n >= 50
            && !(lo..=hi).contains(&r.share_got)
        {
            out.push(format!(
                "{}: {} buyers, {:.0} % got a seat, outside {:.0}–{:.0} %",
                r.label,
                r.n,
                r.share_got * 100.0,
                lo * 100.0,
                hi * 100.0
            ));
        }
    }
    let e = ece(told);
    if e > 0.1 {
        out.push(format!("expected calibration error {e:.3} > 0.1"));
    }
    if undersubscribed {
        let likely = told.iter().filter(|t| t.band == "LIKELY").count() as f64 / told.len().max(1) as f64;
        if likely < 0.95 {
            out.push(format!(
                "undersubscribed: {:.1} % told LIKELY, not ≥ 95 %",
                likely * 100.0
            ));
        }
    } else {
        let ours = brier(told, |t| t.chance);
        let rule = brier(told, rule_of_two);
        let rate = base_rate(told);
        let constant = brier(told, |_| rate);
        if ours >= rule || ours >= constant {
            out.push(format!(
                "Brier {ours:.4} does not beat both baselines (seats ≥ 2 × ahead {rule:.4}, base rate {constant:.4})"
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(chance: f64, band: &str, got: bool) -> Told {
        Told {
            chance,
            band: band.into(),
            seats_left: 10,
            ahead: Some(3),
            got,
        }
    }

    #[test]
    fn a_calibrated_forecast_passes_and_a_confident_wrong_one_fails() {
        // 100 told 0.9 (90 got), 100 told 0.1 (10 got).
        let mut told = Vec::new();
        for i in 0..100 {
            told.push(t(0.9, "LIKELY", i < 90));
            told.push(t(0.1, "UNLIKELY", i < 10));
        }
        assert!(ece(&told) < 1e-9);
        assert!(failures(&told, false).is_empty(), "{:?}", failures(&told, false));
        // The same outcomes told the other way round.
        let wrong: Vec<Told> = told
            .iter()
            .map(|x| Told {
                chance: 1.0 - x.chance,
                band: if x.chance > 0.5 { "UNLIKELY" } else { "LIKELY" }.into(),
                ..x.clone()
            })
            .collect();
        let f = failures(&wrong, false);
        assert!(f.iter().any(|m| m.starts_with("LIKELY")), "{f:?}");
        assert!(f.iter().any(|m| m.contains("calibration error")), "{f:?}");
        assert!(f.iter().any(|m| m.contains("Brier")), "{f:?}");
    }

    #[test]
    fn bands_with_few_buyers_are_not_judged() {
        let told: Vec<Told> = (0..49).map(|_| t(0.9, "LIKELY", false)).collect();
        assert!(!failures(&told, false).iter().any(|m| m.starts_with("LIKELY")));
    }

    #[test]
    fn the_baselines_score_as_defined() {
        let told = vec![t(0.5, "POSSIBLE", true), t(0.5, "POSSIBLE", false)];
        assert_eq!(base_rate(&told), 0.5);
        assert!((brier(&told, |_| 0.5) - 0.25).abs() < 1e-12);
        // 10 seats left, 3 ahead: the rule says yes.
        assert_eq!(rule_of_two(&told[0]), 1.0);
        assert!((brier(&told, rule_of_two) - 0.5).abs() < 1e-12);
        let deciles = by_decile(&[t(1.0, "LIKELY", true), t(0.0, "UNLIKELY", false)]);
        assert_eq!((deciles[9].n, deciles[0].n), (1, 1));
    }

    #[test]
    fn an_undersubscribed_sale_must_tell_nearly_everyone_likely() {
        let mut told: Vec<Told> = (0..94).map(|_| t(0.95, "LIKELY", true)).collect();
        told.extend((0..6).map(|_| t(0.6, "POSSIBLE", true)));
        let f = failures(&told, true);
        assert!(f.iter().any(|m| m.starts_with("undersubscribed")), "{f:?}");
    }
}
