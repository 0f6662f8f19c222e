//! process-guardian: keeps long-running background processes alive.
//!
//! The library behind the binary: the command line (`cli`, `commands`), the
//! files of a workspace (`workspace`, `registry`, `state`, `logs`, `alert`),
//! the processes (`proc`, `launch`, `supervise`) and the pure decisions
//! (`policy`). Integration tests use it to read `/proc` the way the binary does.
//!
//! `unsafe` is allowed in two files only, `proc.rs` and `launch.rs`, and
//! every block there says why it is sound.

#![deny(unsafe_code)]
#![deny(clippy::undocumented_unsafe_blocks)]

pub mod alert;
pub mod cli;
pub mod cmdline;
pub mod commands;
pub mod envfile;
pub mod error;
pub mod export;
pub mod fnv;
pub mod fsutil;
pub mod import;
#[allow(unsafe_code)]
pub mod launch;
pub mod logs;
pub mod output;
pub mod policy;
pub mod probe;
#[allow(unsafe_code)]
pub mod proc;
pub mod registry;
pub mod signals;
pub mod state;
pub mod supervise;
pub mod workspace;
