//! Getting frames out: queueing on a connection's outbox, fan-out to a room, and handing
//! jobs to the store. The hub never blocks on a socket; a full queue marks a slow consumer.

use super::Hub;
use crate::ids::{ConnId, RoomId};
use crate::outbox::{EncodedFrame, Push};
use crate::protocol::{Ref, Rejection};
use crate::store::StoreJob;
use std::sync::Arc;

impl Hub {
    // ----- delivery -----

    /// Hands a job to the store thread. Its queue is large; only if the disk falls that far
    /// behind does the hub wait, because losing a message is worse than slowing down.
    pub(super) fn persist(&self, job: StoreJob) {
        match self.store.try_send(job) {
            Ok(()) => {}
            Err(crossbeam_channel::TrySendError::Full(job)) => {
                log::warn!("the database is falling behind; waiting for it");
                let _ = self.store.send(job);
            }
            Err(crossbeam_channel::TrySendError::Disconnected(_)) => {
                log::error!("the store thread is gone")
            }
        }
    }

    pub(super) fn reply_error(
        &mut self,
        conn: ConnId,
        rejection: &Rejection,
        reference: Option<&Ref>,
    ) {
        let json = crate::protocol::error_json(rejection, reference);
        self.send(conn, &json);
    }

    pub(super) fn send(&mut self, conn: ConnId, json: &str) {
        self.push(conn, EncodedFrame::text(json));
    }

    pub(super) fn push(&mut self, conn: ConnId, frame: Arc<EncodedFrame>) {
        if let Some(c) = self.conns.get(&conn) {
            if c.outbox.push(frame) == Push::Slow {
                self.evicted.push(conn);
            }
        }
    }

    /// Queues one shared frame for every member of a room (but `except`); returns how many
    /// connections it was queued for.
    ///
    /// Every frame is queued before any writer is woken: a woken writer tends to preempt
    /// the hub, and waking as it goes would interleave the fan-out with the writes.
    pub(super) fn broadcast(
        &mut self,
        index: RoomId,
        frame: Arc<EncodedFrame>,
        except: Option<ConnId>,
    ) -> usize {
        let members = || self.rooms[index].members().filter(|m| Some(*m) != except);
        let mut queued = 0;
        for member in members() {
            if let Some(c) = self.conns.get(&member) {
                queued += 1;
                if c.outbox.push_unwoken(frame.clone()) == Push::Slow {
                    self.evicted.push(member);
                }
            }
        }
        for member in members() {
            if let Some(c) = self.conns.get(&member) {
                c.outbox.wake();
            }
        }
        queued
    }
}
