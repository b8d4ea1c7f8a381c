//! wksim: a simulated WuKongIM v2 cluster (owned by the simulator work).
