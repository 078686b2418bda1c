//! Best available: the server picks `quantity` adjacent free seats in one
//! row. This is the rule's specification; the hold script follows it
//! seat for seat (and the differential tests hold the two together).
//!
//! The ranking:
//! 1. Rows by their distance from the row two thirds of the way back (the
//!    screen is in front of row A); of two rows as near, the one further
//!    back.
//! 2. In a row, a block that leaves no single free seat stranded between
//!    it and a taken or unavailable seat or the row's end comes before one
//!    that does.
//! 3. Then the block whose middle is nearest the row's middle; of two as
//!    near, the one further left.
//!
//! The first row (in that order) with any block of `quantity` free seats
//! gives the block; a row further down the order is never preferred for
//! centring or orphans.

/// One row as a pick sees it: its label, how many seats, which of them are
/// permanently unavailable (seat numbers). A show's rows in preference
/// order are its `plan` (the scripts get the same list).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowPlan {
    pub row: String,
    pub seats: u16,
    pub unavailable: Vec<u16>,
}

impl RowPlan {
    /// Seat `k` (0-based) of the row, as an id.
    pub fn seat(&self, k: usize) -> String {
        format!("{}{}", self.row, k + 1)
    }

    /// The unavailable seat numbers as the scripts take them: "3,7" or "".
    pub fn unavailable_list(&self) -> String {
        let numbers: Vec<String> = self.unavailable.iter().map(u16::to_string).collect();
        numbers.join(",")
    }

    /// Which seats can be sold now, given which ids are free of owners.
    pub fn free(&self, unowned: impl Fn(&str) -> bool) -> Vec<bool> {
        (0..self.seats as usize)
            .map(|k| !self.unavailable.contains(&(k as u16 + 1)) && unowned(&self.seat(k)))
            .collect()
    }
}

/// Rows (in the layout's order, front first) in preference order.
pub fn plan(rows: Vec<RowPlan>) -> Vec<RowPlan> {
    let order = row_order(rows.len());
    let mut slots: Vec<Option<RowPlan>> = rows.into_iter().map(Some).collect();
    order.into_iter().filter_map(|i| slots[i].take()).collect()
}

/// The first row (of rows already in preference order) with a block of
/// `quantity`, and the block's first seat.
pub fn first_fit(rows: &[Vec<bool>], quantity: usize) -> Option<(usize, usize)> {
    rows.iter()
        .enumerate()
        .find_map(|(r, free)| best_in_row(free, quantity).map(|start| (r, start)))
}

/// Row indices (0 = the front row) in preference order.
pub fn row_order(rows: usize) -> Vec<usize> {
    if rows == 0 {
        return Vec::new();
    }
    // Twice the distance, in whole numbers: |3i - 2(n - 1)|.
    let target = 2 * (rows as i64 - 1);
    let mut order: Vec<usize> = (0..rows).collect();
    order.sort_by_key(|&i| ((3 * i as i64 - target).abs(), std::cmp::Reverse(i)));
    order
}

/// The best block of `quantity` seats in one row (`free[k]`: seat k + 1 can
/// be sold now): the index of its first seat.
pub fn best_in_row(free: &[bool], quantity: usize) -> Option<usize> {
    if quantity == 0 {
        return None;
    }
    let len = free.len();
    let mut best: Option<(bool, usize, usize)> = None; // (strands a seat, 2 × distance, start)
    let mut k = 0;
    while k < len {
        if !free[k] {
            k += 1;
            continue;
        }
        let run_start = k;
        while k < len && free[k] {
            k += 1;
        }
        let run_end = k; // exclusive
        if run_end - run_start < quantity {
            continue;
        }
        for start in run_start..=run_end - quantity {
            let left = start - run_start;
            let right = run_end - (start + quantity);
            let strands = left == 1 || right == 1;
            // Twice the distance between the block's middle and the row's.
            let distance = (2 * start + quantity - 1).abs_diff(len - 1);
            let key = (strands, distance, start);
            if best.is_none_or(|b| key < b) {
                best = Some(key);
            }
        }
    }
    best.map(|(_, _, start)| start)
}

/// The seats a waiting-list offer of `quantity` gets (rows in preference
/// order): the best adjacent block when one fits; otherwise any free seats,
/// row by row in preference order and left to right in a row, so a party
/// that cannot sit together still sits as near the best rows as it can.
/// `None` when fewer than `quantity` seats are free. (`lua/common.lua`'s
/// `pick_offer` follows this rule.)
pub fn pick_offer(rows: &[Vec<bool>], quantity: usize) -> Option<Vec<(usize, usize)>> {
    if quantity == 0 {
        return None;
    }
    if let Some((r, start)) = first_fit(rows, quantity) {
        return Some((start..start + quantity).map(|k| (r, k)).collect());
    }
    let scattered: Vec<(usize, usize)> = rows
        .iter()
        .enumerate()
        .flat_map(|(r, free)| free.iter().enumerate().filter(|(_, f)| **f).map(move |(k, _)| (r, k)))
        .take(quantity)
        .collect();
    (scattered.len() == quantity).then_some(scattered)
}

/// The longest run of free seats in any row (the answer of
/// `NOT_ENOUGH_SEATS`).
pub fn largest_block<'a>(rows: impl IntoIterator<Item = &'a [bool]>) -> usize {
    rows.into_iter()
        .map(|free| free.split(|f| !f).map(<[bool]>::len).max().unwrap_or(0))
        .max()
        .unwrap_or(0)
}

/// The best block of the show (rows front first): (row index, first seat
/// index), or `None` when no row has `quantity` adjacent free seats.
pub fn best_block(rows: &[Vec<bool>], quantity: usize) -> Option<(usize, usize)> {
    row_order(rows.len())
        .into_iter()
        .find_map(|r| best_in_row(&rows[r], quantity).map(|start| (r, start)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// `x` free, `.` taken or unavailable.
    fn row(s: &str) -> Vec<bool> {
        s.chars().map(|c| c == 'x').collect()
    }

    #[test]
    fn an_offer_takes_a_block_when_one_fits_and_scattered_seats_otherwise() {
        let rows = vec![row("x.x.."), row("..xx."), row("x....")];
        assert_eq!(pick_offer(&rows, 2), Some(vec![(1, 2), (1, 3)]), "the block in row 2");
        assert_eq!(
            pick_offer(&rows, 3),
            Some(vec![(0, 0), (0, 2), (1, 2)]),
            "no block of 3: the first free seats in preference order"
        );
        assert_eq!(pick_offer(&rows, 5), Some(vec![(0, 0), (0, 2), (1, 2), (1, 3), (2, 0)]));
        assert_eq!(pick_offer(&rows, 6), None, "only five seats are free");
        assert_eq!(pick_offer(&rows, 0), None);
    }

    #[test]
    fn rows_go_from_two_thirds_back_outwards_the_further_back_first() {
        // 10 rows (A..J): two thirds back is row index 6 (G).
        assert_eq!(row_order(10), vec![6, 7, 5, 8, 4, 9, 3, 2, 1, 0]);
        assert_eq!(row_order(1), vec![0]);
        assert_eq!(row_order(3), vec![1, 2, 0]);
    }

    #[test]
    fn a_block_sits_in_the_middle_of_an_empty_row() {
        assert_eq!(best_in_row(&row("xxxxxxxxxx"), 2), Some(4)); // seats 5-6 of 10
        assert_eq!(best_in_row(&row("xxxxxxxxx"), 3), Some(3)); // 4-6 of 9
        assert_eq!(
            best_in_row(&row("xxxxxxxxxx"), 3),
            Some(3),
            "as near either way: the left one"
        );
    }

    #[test]
    fn a_block_never_strands_a_single_seat_when_another_does_not() {
        // Free run of 5 (seats 1-5) then taken: a pair in the middle (2-3 or
        // 3-4) would strand seat 1 or 5; 1-2 leaves 3 together, 4-5 too.
        let r = row("xxxxx.....");
        let start = best_in_row(&r, 2).unwrap();
        assert!(start == 0 || start == 3, "{start}");
        // The same rule against a taken seat inside the row.
        let r = row("..xxx.xxxx");
        // Run 3-5 (len 3): a pair leaves one: strands. Run 7-10 (len 4): 7-8
        // or 9-10 leave two together; 8-9 strands two singles.
        let start = best_in_row(&r, 2).unwrap();
        assert!(start == 6 || start == 8, "{start}");
    }

    #[test]
    fn a_stranding_block_is_taken_when_it_is_the_only_one() {
        // Both pairs of seats 1-3 strand one: the nearer the middle.
        assert_eq!(best_in_row(&row("xxx......."), 2), Some(1));
        assert_eq!(best_in_row(&row("x.x.x.x.x."), 2), None);
    }

    #[test]
    fn the_best_row_wins_over_a_better_block_elsewhere() {
        let mut rows = vec![row("xxxxxxxxxx"); 10];
        // Row G (6) has only seats 1-2 free: they are still the pick.
        rows[6] = row("xx........");
        assert_eq!(best_block(&rows, 2), Some((6, 0)));
        rows[6] = row("x.........");
        assert_eq!(best_block(&rows, 2), Some((7, 4)), "the next row in the order");
    }

    #[test]
    fn a_plan_lists_rows_in_preference_order_and_knows_its_seats() {
        let rows: Vec<RowPlan> = ["A", "B", "C"]
            .iter()
            .map(|r| RowPlan {
                row: (*r).into(),
                seats: 4,
                unavailable: vec![],
            })
            .collect();
        let plan = plan(rows);
        assert_eq!(
            plan.iter().map(|r| r.row.as_str()).collect::<Vec<_>>(),
            vec!["B", "C", "A"]
        );
        let b = RowPlan {
            row: "B".into(),
            seats: 4,
            unavailable: vec![2],
        };
        assert_eq!(b.seat(0), "B1");
        assert_eq!(b.free(|id| id != "B4"), vec![true, false, true, false]);
    }

    #[test]
    fn the_largest_block_when_nothing_fits() {
        let rows = vec![row("x.xx.xxx.."), row("xx........")];
        assert_eq!(best_block(&rows, 4), None);
        assert_eq!(largest_block(rows.iter().map(Vec::as_slice)), 3);
        assert_eq!(largest_block(std::iter::empty()), 0);
    }

    proptest! {
        /// Whatever the row: the block is free seats, adjacent; and if it
        /// strands a seat, every block in the row would have.
        #[test]
        fn the_pick_is_free_adjacent_and_strands_only_when_it_must(
            free in proptest::collection::vec(any::<bool>(), 1..40),
            quantity in 1usize..6,
        ) {
            let pick = best_in_row(&free, quantity);
            let strands_at = |s: usize| {
                let run_start = (0..=s).rev().take_while(|&k| free[k]).last().unwrap_or(s);
                let run_end = (s..free.len()).take_while(|&k| free[k]).last().map_or(s, |k| k + 1);
                s - run_start == 1 || run_end - (s + quantity) == 1
            };
            let fits: Vec<usize> = (0..free.len().saturating_sub(quantity - 1))
                .filter(|&s| free[s..s + quantity].iter().all(|f| *f))
                .collect();
            match pick {
                None => prop_assert!(fits.is_empty()),
                Some(s) => {
                    prop_assert!(fits.contains(&s));
                    if strands_at(s) {
                        prop_assert!(fits.iter().all(|&o| strands_at(o)));
                    }
                }
            }
        }
    }
}
