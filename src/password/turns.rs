//! Whose password job runs next: one queue per client address, served in turns, one job
//! per address per turn.
//!
//! A connection has at most one check in flight (its later commands wait behind it), so a
//! plain FIFO would already be fair between connections. It is not fair between people:
//! one address with a hundred connections would get a hundred turns for everyone else's
//! one. Taking turns by address means a legitimate join waits behind at most one job of
//! each other address with work waiting, however many connections they open. Within an
//! address jobs keep their order.
//!
//! Memory: the hub puts at most one check per connection here, and one hash per protected
//! room created (which the room-creation limits bound), so the queues are bounded by
//! connections and rooms.

use super::ClientAddress;
use std::collections::{HashMap, VecDeque};

/// Jobs waiting for a free pool thread, in fair turns between addresses.
#[derive(Debug)]
pub struct Turns<J> {
    /// Each address's waiting jobs, oldest first. An address is here only while it has
    /// some, so the table is as small as the set of addresses waiting.
    queues: HashMap<ClientAddress, VecDeque<J>>,
    /// Addresses with jobs waiting, in the order of their next turn.
    order: VecDeque<ClientAddress>,
    /// Jobs waiting in all queues.
    len: usize,
}

impl<J> Default for Turns<J> {
    fn default() -> Self {
        Turns {
            queues: HashMap::new(),
            order: VecDeque::new(),
            len: 0,
        }
    }
}

impl<J> Turns<J> {
    /// Queues a job at the back of its address's queue; an address that had nothing
    /// waiting takes its turn after every address waiting already.
    pub fn push(&mut self, address: ClientAddress, job: J) {
        let queue = self.queues.entry(address).or_default();
        if queue.is_empty() {
            self.order.push_back(address);
        }
        queue.push_back(job);
        self.len += 1;
    }

    /// The next job: the oldest of the address whose turn it is.
    pub fn pop(&mut self) -> Option<J> {
        let address = self.order.pop_front()?;
        let queue = self.queues.get_mut(&address)?;
        let job = queue.pop_front();
        if queue.is_empty() {
            self.queues.remove(&address);
        } else {
            self.order.push_back(address);
        }
        self.len -= usize::from(job.is_some());
        job
    }

    /// Jobs waiting.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Takes every waiting job out, in turn order (a stopping server hashes what is left).
    pub fn drain(&mut self) -> Vec<J> {
        std::iter::from_fn(|| self.pop()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::IpAddr;

    fn key(last: u8) -> ClientAddress {
        ClientAddress::of(IpAddr::from([10, 0, 0, last]))
    }

    #[test]
    fn addresses_take_turns_and_keep_their_own_order() {
        let mut turns = Turns::default();
        for i in 0..5 {
            turns.push(key(1), format!("a{i}"));
        }
        turns.push(key(2), "b0".to_string());
        turns.push(key(3), "c0".to_string());
        turns.push(key(2), "b1".to_string());
        assert_eq!(turns.len(), 8);
        let order: Vec<String> = turns.drain();
        assert_eq!(order, ["a0", "b0", "c0", "a1", "b1", "a2", "a3", "a4"]);
        assert!(turns.is_empty());
        assert!(turns.queues.is_empty() && turns.order.is_empty());
    }

    #[test]
    fn a_newcomer_waits_behind_one_job_per_busy_address() {
        let mut turns = Turns::default();
        // Many connections from one address, each with its one check.
        for i in 0..100 {
            turns.push(key(1), i);
        }
        turns.pop();
        turns.push(key(9), 1000);
        let before: Vec<i32> = std::iter::from_fn(|| turns.pop())
            .take_while(|&j| j != 1000)
            .collect();
        assert_eq!(
            before,
            [1],
            "one job of the busy address, then the newcomer"
        );
    }
}
