//! What the operating system lets papo hold. Each WebSocket connection costs two threads
//! (so two process ids), about eight memory mappings (each thread's stack and signal stack,
//! with their guard pages) and one file descriptor; the kernel's limits on those bound the
//! connections a server can really keep, so the configured limit is checked against them
//! at start rather than discovered as failed thread spawns under load.

/// Memory mappings one connection's two threads take.
const MAPS_PER_CONNECTION: usize = 8;
/// Threads (process ids) one connection takes.
const THREADS_PER_CONNECTION: usize = 2;
/// Left for everything else the process and the machine need.
const RESERVE: usize = 2_000;

/// The most WebSocket connections this machine allows, and the limit that decides it.
pub fn websocket_capacity() -> Option<(usize, String)> {
    let mut limits = Vec::new();
    if let Some(maps) = read_number("/proc/sys/vm/max_map_count") {
        let room = maps.saturating_sub(RESERVE) / MAPS_PER_CONNECTION;
        limits.push((room, format!("vm.max_map_count is {maps}")));
    }
    if let Some(pids) = read_number("/proc/sys/kernel/pid_max") {
        let room = pids.saturating_sub(RESERVE) / THREADS_PER_CONNECTION;
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
}
