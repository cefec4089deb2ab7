//! What the operating system lets papo hold. Each WebSocket connection costs its reader
//! thread (a process id, and four memory mappings: the thread's stack and signal stack,
//! each with a guard page) and one file descriptor; a connection whose socket is full has
//! a second thread while it drains, and at most one connection in `BACKLOG_SHARE` may. The
//! kernel's limits on those bound the connections a server can really keep, so the
//! configured limit is checked against them at start rather than discovered as failed
//! thread spawns under load (a thread whose signal stack cannot be mapped aborts the
//! process).

/// Memory mappings one thread takes.
const MAPS_PER_THREAD: usize = 4;
/// One connection in this many may have a writer thread of its own at once. A socket stays
/// full only while its client is not reading; threads kept for more stalled clients would
/// cost connections the machine could otherwise hold. Past the budget, a client whose
/// socket is full is dropped as a slow consumer.
pub const BACKLOG_SHARE: usize = 8;
/// Left for everything else the process and the machine need.
const RESERVE: usize = 2_000;

/// How many connections may have a writer thread of their own at once.
pub fn backlog_threads(connections: usize) -> usize {
    connections.div_ceil(BACKLOG_SHARE)
}

/// The most connections whose threads fit in `threads`.
fn connections_within(threads: usize) -> usize {
    threads * BACKLOG_SHARE / (BACKLOG_SHARE + 1)
}

/// The most WebSocket connections this machine allows, and the limit that decides it.
pub fn websocket_capacity() -> Option<(usize, String)> {
    let mut limits = Vec::new();
    if let Some(maps) = read_number("/proc/sys/vm/max_map_count") {
        let room = connections_within(maps.saturating_sub(RESERVE) / MAPS_PER_THREAD);
        limits.push((room, format!("vm.max_map_count is {maps}")));
    }
    if let Some(pids) = read_number("/proc/sys/kernel/pid_max") {
        let room = connections_within(pids.saturating_sub(RESERVE));
        limits.push((room, format!("kernel.pid_max is {pids}")));
    }
    if let Ok((soft, _)) = rlimit::Resource::NOFILE.get() {
        let fds = usize::try_from(soft).unwrap_or(usize::MAX);
        limits.push((
            fds.saturating_sub(256),
            format!("the open file limit is {fds}"),
        ));
    }
    limits.into_iter().min_by_key(|(room, _)| *room)
}

fn read_number(path: &str) -> Option<usize> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_machine_has_a_capacity_with_a_reason() {
        let (room, why) = websocket_capacity().expect("Linux exposes its limits");
        assert!(room > 0, "{why}");
        assert!(why.contains(" is "), "{why}");
    }

    /// Threads that `connections` connections may need at once.
    fn threads_for(connections: usize) -> usize {
        connections + backlog_threads(connections)
    }

    #[test]
    fn connections_and_their_threads_fit_the_budget() {
        for threads in [5, 1_000, 15_883, 30_768] {
            let connections = connections_within(threads);
            assert!(threads_for(connections) <= threads, "{threads}");
            assert!(threads_for(connections + 2) > threads, "{threads}");
        }
    }
}
