//! The estimate's rules, each on its own.

use super::*;
use proptest::prelude::*;

/// Every pending admission's expected buyers, as shoppers of the sale's kind.
fn pending_all(m: &Model) -> f64 {
    m.pending.iter().sum::<f64>() / (1.0 - m.dist[0])
}

fn sale(sellable: u64, booked: u64, bought: &[u64], walked: u64) -> Observations {
    Observations {
        at_ms: 1_800_000_000_000,
        sellable,
        booked,
        bought: bought.to_vec(),
        walked,
        // Paused: shoppers buy in queue order, nobody races (the race
        // has its own test).
        rate: 0.0,
        queue_length: 1_000,
        ..Observations::default()
    }
}

#[test]
fn before_any_data_the_prior_is_used_and_said() {
    let m = Model::prior(0, 100, 0.0, 500);
    assert_eq!(m.basis, Basis::Prior);
    let mean: f64 = PRIOR_SEATS.iter().enumerate().map(|(n, p)| n as f64 * p).sum();
    assert!((m.mean() - mean).abs() < 1e-9);
    // 100 seats at ~1.9 a shopper, 10 % give up: ~58 places are safe.
    assert!(m.chance(0) > 0.999);
    assert!(m.chance(20) > 0.99, "{}", m.chance(20));
    assert!(m.chance(120) < 0.01, "{}", m.chance(120));
}

#[test]
fn the_sale_own_buyers_replace_the_prior() {
    // Everyone buys exactly one seat: 100 seats last 100 shoppers.
    let m = Model::new(&sale(100, 0, &[0, 2_000], 0));
    assert_eq!(m.basis, Basis::Observed);
    assert!(m.dist[1] > 0.98, "{:?}", m.dist);
    let stay = m.stay;
    let safe = (95.0 / stay) as u64;
    let gone = (106.0 / stay) as u64;
    assert!(m.chance(safe) > 0.9, "{}", m.chance(safe));
    assert!(m.chance(gone) < 0.1, "{}", m.chance(gone));
}

#[test]
fn walkers_and_lapsed_admissions_make_seats_last_longer() {
    let buyers = Model::new(&sale(100, 0, &[0, 0, 500], 0));
    let half_walk = Model::new(&sale(100, 0, &[0, 0, 500], 500));
    assert!(half_walk.chance(60) > buyers.chance(60) + 0.5);
    // 100 admitted this second, 500 admitted ten minutes ago who never
    // bought: the old ones count as walkers, the young ones as buyers
    // as likely as any.
    let mut censored = sale(100, 0, &[0, 0, 500], 0);
    censored.pending_by_age = vec![0; AGE_BUCKETS];
    censored.pending_by_age[0] = 100;
    censored.pending_by_age[AGE_BUCKETS - 1] = 500;
    let m = Model::new(&censored);
    assert!((pending_all(&m) - 100.0).abs() < 2.0, "{}", pending_all(&m));
    assert!(
        (m.dist[0] - half_walk.dist[0]).abs() < 0.01,
        "{} vs {}",
        m.dist[0],
        half_walk.dist[0]
    );
}

#[test]
fn a_sale_whose_buyers_are_quick_discounts_its_slow_pending_admissions() {
    // Buyers buy within two seconds; 15 % walk away. Of 100 admitted in
    // the last 16 s and not settled, those older than a few seconds are
    // walkers, however few lapses the sale has seen yet.
    let mut o = sale(1_000, 0, &[0, 0, 0, 850], 20);
    o.buy_times = vec![0; AGE_BUCKETS];
    o.buy_times[age_bucket(1_500)] = 850;
    o.pending_by_age = vec![0; AGE_BUCKETS];
    o.pending_by_age[age_bucket(500)] = 30;
    o.pending_by_age[age_bucket(10_000)] = 70;
    let m = Model::new(&o);
    assert!(
        pending_all(&m) < 50.0,
        "the 70 slow ones are mostly walkers: {}",
        pending_all(&m)
    );
    let q = 1.0 - m.dist[0];
    assert!((0.8..0.95).contains(&q), "about 85 % buy: {q}");
    // The prior's slow buyers would have counted them all.
    let mut slow = o.clone();
    slow.buy_times = vec![];
    assert!(pending_all(&Model::new(&slow)) > 90.0);
}

#[test]
fn shoppers_admitted_just_before_you_race_you_for_the_seats() {
    // Everyone buys one seat in about 1.5 s; 10 admitted a second.
    let mut o = sale(100, 0, &[0, 1_000], 0);
    o.buy_times = vec![0; AGE_BUCKETS];
    o.buy_times[age_bucket(1_500)] = 1_000;
    o.rate = 10.0;
    let m = Model::new(&o);
    // The one right before you started 100 ms earlier: about even.
    let stay = m.stay;
    let next = m.shoppers_before(1) / stay;
    assert!((0.4..0.8).contains(&next), "{next}");
    // Far enough back, each one ahead is done first.
    let far = (m.shoppers_before(2_000) - m.shoppers_before(1_980)) / stay / 20.0;
    assert!(far > 0.98, "{far}");
    assert!(m.shoppers_before(2_000) < 2_000.0 * stay);
    // Paused: nobody races, everyone ahead comes first.
    o.rate = 0.0;
    let paused = Model::new(&o);
    assert!((paused.shoppers_before(5) - 5.0 * stay).abs() < 1e-9);
    assert!((paused.shoppers_before(5_000) - 5_000.0 * stay).abs() < 1e-6);
}

#[test]
fn ages_fall_in_their_buckets() {
    assert_eq!(age_bucket(0), 0);
    assert_eq!(age_bucket(999), 0);
    assert_eq!(age_bucket(1_000), 1);
    assert_eq!(age_bucket(600_000), AGE_BUCKETS - 1);
}

#[test]
fn booked_seats_are_gone_and_held_ones_may_come_back() {
    // 100 buyers of one seat; 10 left, 30 held.
    let mut o = sale(140, 100, &[0, 100], 0);
    o.held = 30;
    o.held_seats_total = 130;
    let kept = Model::new(&o);
    assert_eq!((kept.left, kept.held), (10, 30));
    assert!(kept.returns < 0.05, "every hold so far was booked: {}", kept.returns);
    // The same, but half of all held seats so far came back.
    o.held_seats_total = 230;
    let back = Model::new(&o);
    assert!((0.35..0.5).contains(&back.returns), "{}", back.returns);
    assert!(
        back.chance(20) > kept.chance(20) + 0.5,
        "{} vs {}",
        back.chance(20),
        kept.chance(20)
    );
    assert!(kept.chance(3) > 0.9, "seats left before the queue: {}", kept.chance(3));
    // With nothing left and nothing held, nothing can come back.
    o.booked = 140;
    o.held = 0;
    assert_eq!(Model::new(&o).chance(0), 0.0);
}

#[test]
fn pending_shoppers_come_first() {
    let mut o = sale(10, 0, &[0, 100], 0);
    let none = Model::new(&o);
    o.pending_by_age = vec![5];
    let five = Model::new(&o);
    assert!((pending_all(&five) - 5.0).abs() < 0.01, "{}", pending_all(&five));
    assert!(five.chance(3) < none.chance(3) - 0.2);
    assert!(five.chance(0) > 0.9, "{}", five.chance(0));
}

#[test]
fn exact_and_normal_agree_where_they_meet() {
    let m = Model::new(&sale(400, 0, &[0, 300, 500, 100], 300));
    let at = EXACT_UP_TO as f64;
    let exact = m.chance_after(at);
    let (mean, var) = (at * m.mean(), at * m.variance());
    let z = (m.left as f64 - 0.5 - mean) / var.sqrt();
    let normal = 0.5 * libm::erfc(-z / std::f64::consts::SQRT_2);
    assert!((exact - normal).abs() < 0.02, "exact {exact} normal {normal}");
}

#[test]
fn bands_follow_the_contract() {
    assert_eq!(Band::of(0.7), Band::Likely);
    assert_eq!(Band::of(0.69), Band::Possible);
    assert_eq!(Band::of(0.2), Band::Possible);
    assert_eq!(Band::of(0.19), Band::Unlikely);
    let mut o = sale(10, 10, &[0, 10], 0);
    o.sold_out = true;
    let m = Model::new(&o);
    let v = m.queued(3);
    assert_eq!(
        (v.band, v.chance, v.seats_left, v.sold_out_at),
        (Band::SoldOut, 0.0, 0, None)
    );
    let a = m.admitted();
    assert_eq!((a.band, a.chance), (Band::Likely, 1.0));
}

#[test]
fn the_sell_out_is_projected_from_the_rate() {
    // 200 seats, 2 a shopper, all stay: 100 shoppers at 10/s = 10 s.
    let mut o = sale(200, 0, &[0, 0, 1_000], 0);
    o.admitted_total = 1_000;
    o.rate = 10.0;
    let m = Model::new(&o);
    let at = m.sold_out_at_ms().unwrap() - o.at_ms;
    assert!((9_000..=11_000).contains(&at), "{at}");
    o.queue_length = 50;
    assert_eq!(
        Model::new(&o).sold_out_at_ms(),
        None,
        "the queue is too short to sell out"
    );
    o.queue_length = 1_000;
    o.rate = 0.0;
    assert_eq!(Model::new(&o).sold_out_at_ms(), None, "paused");
}

#[test]
fn shares_split_the_queue_at_the_band_edges() {
    let m = Model::new(&sale(100, 0, &[0, 1_000], 0));
    let s = m.shares(300);
    assert!((s.likely + s.possible + s.unlikely - 1.0).abs() < 1e-9);
    let likely = (s.likely * 300.0).round() as u64;
    assert!(m.chance(likely - 1) >= LIKELY_FROM && m.chance(likely) < LIKELY_FROM);
    assert!(s.unlikely > 0.5);
}

#[test]
fn the_pre_queue_averages_over_the_lottery() {
    let m = Model::new(&sale(100, 0, &[0, 1_000], 0));
    let all = m.pre_queued(200).chance;
    assert!(
        (0.4..0.6).contains(&all),
        "about half of 200 get one of 100 seats: {all}"
    );
    assert_eq!(m.pre_queued(10).ahead_of_you, None);
}

#[test]
fn a_shopper_is_told_what_changes_enough_to_matter() {
    let m = Model::new(&sale(1_000, 0, &[0, 1_000], 0));
    let base = m.queued(10);
    let same = Outlook {
        chance: base.chance - 0.01,
        ..base.clone()
    };
    assert!(!base.worth_telling(&same), "a point of chance is noise");
    for changed in [
        Outlook {
            chance: base.chance - 0.03,
            ..base.clone()
        },
        Outlook {
            band: Band::Possible,
            ..base.clone()
        },
        Outlook {
            seats_left: base.seats_left - 20,
            ..base.clone()
        },
        Outlook {
            sold_out_at: Some("2026-12-08T20:41:00Z".into()),
            ..base.clone()
        },
    ] {
        assert!(base.worth_telling(&changed), "{changed:?}");
    }
    let projected = Outlook {
        sold_out_at: Some("2026-12-08T20:41:00Z".into()),
        ..base.clone()
    };
    let seconds_later = Outlook {
        sold_out_at: Some("2026-12-08T20:41:20Z".into()),
        ..base.clone()
    };
    assert!(!projected.worth_telling(&seconds_later));
    assert!(projected.worth_telling(&base), "the projection dropped");
}

#[test]
fn the_model_travels_as_json() {
    let m = Model::new(&sale(100, 5, &[0, 30, 20], 7));
    let back: Model = serde_json::from_str(&serde_json::to_string(&m).unwrap()).unwrap();
    assert_eq!(back, m);
    assert_eq!(back.chance(40), m.chance(40));
}

proptest! {
    #[test]
    fn the_chance_never_rises_further_back(
        free in 0u64..2_000, held in 0u64..300, pending in 0u64..50,
        ones in 0u64..500, twos in 0u64..500, fours in 0u64..200, walked in 0u64..500,
        a in 0u64..3_000, b in 0u64..3_000,
    ) {
        let mut o = sale(free + held, 0, &[0, ones, twos, 0, fours], walked);
        o.held = held;
        o.held_seats_total = held * 2 + ones + twos * 2 + fours * 4;
        o.pending_by_age = vec![pending];
        let m = Model::new(&o);
        let (near, far) = (a.min(b), a.max(b));
        let (cn, cf) = (m.chance(near), m.chance(far));
        prop_assert!((0.0..=1.0).contains(&cn));
        prop_assert!(cf <= cn + 1e-9, "{} at {} > {} at {}", cf, far, cn, near);
    }
}
