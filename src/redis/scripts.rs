//! The seat scripts, loaded in one place. Each is `lua/common.lua` followed
//! by its own file, so each is one atomic script with the shared helpers.

use redis::Script;

macro_rules! seat_script {
    ($file:literal) => {
        Script::new(concat!(
            include_str!("../../lua/common.lua"),
            include_str!(concat!("../../lua/", $file))
        ))
    };
}

/// A waiting-room script that decides the pre-queue: `lua/wr_opening.lua`
/// followed by its own file.
macro_rules! opening_script {
    ($file:literal) => {
        Script::new(concat!(
            include_str!("../../lua/wr_opening.lua"),
            include_str!(concat!("../../lua/", $file))
        ))
    };
}

/// The waiting-room scripts (`join` and `open_begin` share the opening's rule).
pub struct RoomScripts {
    pub join: Script,
    pub leave: Script,
    pub admit: Script,
    pub lease: Script,
    pub open_begin: Script,
    pub open: Script,
    pub ranks: Script,
    pub settle: Script,
    pub observe: Script,
    /// Shared with the seat sweeper's lease (`lua/lease_release.lua`).
    pub lease_release: Script,
}

/// `lua/lease_release.lua`.
pub fn lease_release() -> Script {
    Script::new(include_str!("../../lua/lease_release.lua"))
}

impl RoomScripts {
    pub fn load() -> Self {
        Self {
            join: opening_script!("wr_join.lua"),
            leave: Script::new(include_str!("../../lua/wr_leave.lua")),
            admit: Script::new(include_str!("../../lua/wr_admit.lua")),
            lease: Script::new(include_str!("../../lua/wr_lease.lua")),
            open_begin: opening_script!("wr_open_begin.lua"),
            open: Script::new(include_str!("../../lua/wr_open.lua")),
            ranks: Script::new(include_str!("../../lua/wr_ranks.lua")),
            settle: Script::new(include_str!("../../lua/wr_settle.lua")),
            observe: Script::new(include_str!("../../lua/wr_observe.lua")),
            lease_release: lease_release(),
        }
    }
}

/// The compiled-in scripts. `redis::Script` runs EVALSHA and falls back to
/// EVAL (loading the script) when Redis answers NOSCRIPT.
pub struct Scripts {
    pub hold: Script,
    pub hold_best: Script,
    pub release: Script,
    pub extend_for_order: Script,
    pub book: Script,
    pub release_order: Script,
    pub expire: Script,
    pub snapshot: Script,
    pub rebuild: Script,
    pub wait_join: Script,
    pub wait_leave: Script,
    pub wait_standing: Script,
}

impl Scripts {
    pub fn load() -> Self {
        Self {
            hold: seat_script!("seats_hold.lua"),
            hold_best: seat_script!("seats_hold_best.lua"),
            release: seat_script!("seats_release.lua"),
            extend_for_order: seat_script!("seats_extend_for_order.lua"),
            book: seat_script!("seats_book.lua"),
            release_order: seat_script!("seats_release_order.lua"),
            expire: seat_script!("seats_expire.lua"),
            snapshot: seat_script!("seats_snapshot.lua"),
            rebuild: seat_script!("seats_rebuild.lua"),
            wait_join: seat_script!("waitlist_join.lua"),
            wait_leave: seat_script!("waitlist_leave.lua"),
            wait_standing: seat_script!("waitlist_standing.lua"),
        }
    }
}
