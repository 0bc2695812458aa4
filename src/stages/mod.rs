//! The pipeline stages, one module each, all with the same shape: `<Name>Deps`, `handle`
//! (decide and perform the effect) and `run` (hand `handle` to the shared consume loop).

pub mod admission;
pub mod approvals;
pub mod approvals_bot;
pub mod authority;
pub mod gateway;
pub mod intake;
pub mod recorder;
pub mod validator;
pub mod watcher;
