//! Realtime: the run feeds in ElectricSQL's long-poll protocol and run streams over SSE, woken
//! by the engine's [`taskgate_engine::Watchers`].

pub mod run_feed;
pub mod run_sets;
pub mod shape;
pub mod streams;
pub mod working_sets;
