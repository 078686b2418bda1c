//! What an operation costs each party, measured over its own phase of one
//! run: the gateway's CPU from `/proc/<pid>/stat`, Redis's from `INFO cpu`.
//! On two shared cores a throughput ratio measures the box; a cost per
//! operation against its floor (the gateway's own `/healthz`, the raw
//! Redis command) does not.

/// A process's CPU time so far, (user, kernel) seconds.
pub fn process_cpu(pid: u32) -> (f64, f64) {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| cpu_of_stat(&s))
        .unwrap_or((0.0, 0.0))
}

/// utime and stime of a `/proc/<pid>/stat` line, in seconds (clock ticks
/// of 1/100 s, as on Linux).
fn cpu_of_stat(stat: &str) -> Option<(f64, f64)> {
    // Fields after the command name, which may hold spaces and parentheses.
    let rest = stat.rsplit_once(')')?.1.split_whitespace().collect::<Vec<_>>();
    let ticks = |i: usize| rest.get(i)?.parse::<u64>().ok();
    Some((ticks(11)? as f64 / 100.0, ticks(12)? as f64 / 100.0))
}

/// Redis's CPU time so far (user + system, all threads), from `INFO cpu`.
pub fn redis_cpu_of(info: &str) -> f64 {
    info.lines()
        .filter_map(|l| l.split_once(':'))
        .filter(|(k, _)| *k == "used_cpu_sys" || *k == "used_cpu_user")
        .filter_map(|(_, v)| v.trim().parse::<f64>().ok())
        .sum()
}

/// Both parties' CPU at one moment.
#[derive(Debug, Clone, Copy)]
pub struct Reading {
    gateway: f64,
    redis: f64,
}

/// Reads the gateway's and Redis's CPU.
pub struct Meter {
    pid: Option<u32>,
    redis: redis::aio::MultiplexedConnection,
}

/// CPU per operation, in microseconds.
#[derive(Debug, Clone, Copy)]
pub struct Cost {
    pub gateway_us: f64,
    pub redis_us: f64,
}

impl Meter {
    /// `pid`: the gateway (None when only Redis is measured).
    pub async fn new(redis_url: &str, pid: Option<u32>) -> Result<Self, String> {
        let redis = redis::Client::open(redis_url)
            .map_err(|e| e.to_string())?
            .get_multiplexed_async_connection()
            .await
            .map_err(|e| e.to_string())?;
        Ok(Self { pid, redis })
    }

    pub async fn read(&mut self) -> Result<Reading, String> {
        let info: String = redis::cmd("INFO")
            .arg("cpu")
            .query_async(&mut self.redis)
            .await
            .map_err(|e| e.to_string())?;
        let gateway = self.pid.map(process_cpu).map(|(u, s)| u + s).unwrap_or_default();
        Ok(Reading {
            gateway,
            redis: redis_cpu_of(&info),
        })
    }
}

/// The cost of `ops` operations done between two readings.
pub fn per_op(before: Reading, after: Reading, ops: u64) -> Cost {
    let ops = ops.max(1) as f64;
    Cost {
        gateway_us: (after.gateway - before.gateway) * 1e6 / ops,
        redis_us: (after.redis - before.redis) * 1e6 / ops,
    }
}

/// `x` against its floor, as "12.3 µs = 1.8×".
pub fn against(us: f64, floor_us: f64) -> String {
    if floor_us > 0.0 {
        format!("{us:.1} µs = {:.2}×", us / floor_us)
    } else {
        format!("{us:.1} µs")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redis_cpu_is_user_and_system_of_all_threads() {
        let info = "# CPU\r\nused_cpu_sys:1.500000\r\nused_cpu_user:2.250000\r\nused_cpu_sys_children:9.0\r\nused_cpu_sys_main_thread:1.0\r\n";
        assert!((redis_cpu_of(info) - 3.75).abs() < 1e-9);
    }

    #[test]
    fn a_cost_is_cpu_per_operation_in_microseconds() {
        let before = Reading {
            gateway: 1.0,
            redis: 2.0,
        };
        let after = Reading {
            gateway: 1.5,
            redis: 2.1,
        };
        let c = per_op(before, after, 10_000);
        assert!((c.gateway_us - 50.0).abs() < 1e-6);
        assert!((c.redis_us - 10.0).abs() < 1e-6);
        assert_eq!(against(50.0, 20.0), "50.0 µs = 2.50×");
    }

    #[test]
    fn a_stat_line_gives_user_and_kernel_seconds_whatever_the_command_is_called() {
        let stat = "4242 (show (gate) x) S 1 4242 4242 0 -1 4194560 2113 0 0 0 1234 56 0 0 20 0 9 0 100 0 0";
        assert_eq!(cpu_of_stat(stat), Some((12.34, 0.56)));
        assert_eq!(cpu_of_stat("garbage"), None);
    }
}
