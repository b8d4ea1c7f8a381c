//! Who serves the cluster-wide view of a focused poll (issue #12.8, the ≤ 5 req/s per
//! node budget of DESIGN §5).
//!
//! A focused poll (the gate and the soak of one node) asks one *other* node for
//! `/cluster/info` and `/cluster/simpleNodes`: the controller's view "from a different,
//! healthy node" (facts §11.1 step 4, signal D). Always asking the first other node made
//! it the busiest node of the cluster on every poll. The turn now rotates over the other
//! nodes, poll after poll.
//!
//! A node whose `/cluster/info` did not answer 200 when it was asked is asked again on
//! every poll until it does, whoever's turn it is: the peer watch counts a node cut off
//! from the controller (`leader not found` while another node knows it) over polls *in a
//! row*, and a rotation must not hide that between two of its turns.

use std::collections::BTreeSet;
use std::sync::Mutex;

/// The rotation's memory across the polls of a run.
#[derive(Debug, Default)]
pub struct Turns {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    next: usize,
    recheck: BTreeSet<u64>,
}

/// The other nodes to ask `/cluster/info` of in one focused poll.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Order {
    /// Asked whatever the outcome: their last answer was not 200.
    pub recheck: Vec<u64>,
    /// Then these, in this order, until one answers (or the attempts run out).
    pub rotation: Vec<u64>,
}

impl Turns {
    /// Whose turn it is among `others` (healthy nodes other than the focus, in manifest
    /// order), and advances the turn.
    pub fn order(&self, others: &[u64]) -> Order {
        let mut s = self.lock();
        let recheck: Vec<u64> = others
            .iter()
            .copied()
            .filter(|id| s.recheck.contains(id))
            .collect();
        let rest: Vec<u64> = others
            .iter()
            .copied()
            .filter(|id| !s.recheck.contains(id))
            .collect();
        let mut rotation = rest.clone();
        if !rest.is_empty() {
            rotation.rotate_left(s.next % rest.len());
        }
        s.next = s.next.wrapping_add(1);
        Order { recheck, rotation }
    }

    /// The answer of `id`'s `/cluster/info` (200 or not) in the last poll it was asked.
    pub fn answered(&self, id: u64, ok: bool) {
        let mut s = self.lock();
        if ok {
            s.recheck.remove(&id);
        } else {
            s.recheck.insert(id);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // The state is two plain values, valid after any panic: a poisoned lock is used.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_turn_rotates_over_the_other_nodes() {
        let t = Turns::default();
        let firsts: Vec<u64> = (0..4).map(|_| t.order(&[1001, 1003]).rotation[0]).collect();
        assert_eq!(firsts, [1001, 1003, 1001, 1003]);
        let t = Turns::default();
        let o = (0..2).map(|_| t.order(&[1, 2, 3])).last().unwrap();
        assert_eq!(o.rotation, [2, 3, 1], "the others follow, as fallbacks");
        assert!(o.recheck.is_empty());
    }

    #[test]
    fn a_node_that_did_not_answer_200_is_asked_every_poll_until_it_does() {
        let t = Turns::default();
        t.answered(1003, false);
        for _ in 0..3 {
            let o = t.order(&[1001, 1003]);
            assert_eq!(o.recheck, [1003]);
            assert_eq!(o.rotation, [1001]);
        }
        t.answered(1003, true);
        let o = t.order(&[1001, 1003]);
        assert!(o.recheck.is_empty());
        assert_eq!(o.rotation.len(), 2);
    }

    #[test]
    fn no_other_node_no_turn() {
        let t = Turns::default();
        assert_eq!(
            t.order(&[]),
            Order {
                recheck: vec![],
                rotation: vec![]
            }
        );
    }
}
