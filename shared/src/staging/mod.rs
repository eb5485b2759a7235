//! The product: a photo in, a staged photo out. The room/style vocabulary, staging requests and the
//! image JSON, the job queue, live status events, the prompt library, image checks and re-encoding,
//! the worker that runs a job, and the reconciler that leaves nothing stuck. docs/worker.md.

pub mod create;
pub mod events;
pub mod imaging;
pub mod prompts;
pub mod queue;
pub mod reconcile;
pub mod renditions;
pub mod requests;
pub mod restage;
pub mod uploads;
pub mod views;
pub mod vocabulary;
pub mod worker;
