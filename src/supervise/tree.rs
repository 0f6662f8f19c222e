//! The command's process tree as the supervisor sees it, and the signals
//! it sends to it. As a child subreaper, the supervisor inherits whatever
//! the command orphans, including processes that left its group with
//! `setsid`: its own descendants (but the hooks) are the tree. An adopted
//! command is not our child: its tree is its descendants and its group.

use crate::proc::{self, Signal};

/// Where the tree hangs from.
#[derive(Clone, Copy, Debug)]
pub enum Root {
    /// Our own child: every descendant of the supervisor.
    Own,
    /// An adopted command: its pid and start time.
    Adopted(i32, u64),
}

/// The live processes of the tree, each with its parent, leaving out the
/// subtrees of `prune` (hooks, a command just respawned).
pub fn live(root: Root, prune: &[i32]) -> Vec<(i32, i32)> {
    let me = rustix::process::getpid().as_raw_nonzero().get();
    // Another name's supervisor, started by a repair of the warden's, is
    // re-parented to us (we are a subreaper): it and its tree are not ours.
    let mut prune = prune.to_vec();
    prune.extend(
        proc::children_of(me)
            .into_iter()
            .filter(|c| proc::is_supervisor(*c)),
    );
    let prune = &prune[..];
    let mut tree = proc::descendants(&[me], prune);
    if let Root::Adopted(pid, start) = root {
        if proc::is_ours_alive(pid, start, proc::boot_id()) {
            if let Some(st) = proc::stat(pid) {
                tree.push((pid, st.ppid));
            }
            tree.extend(proc::descendants(&[pid], prune));
        }
        for m in proc::group_members(pid, start) {
            if !tree.iter().any(|(p, _)| *p == m)
                && let Some(st) = proc::stat(m)
            {
                tree.push((m, st.ppid));
            }
        }
    }
    tree
}

/// Sends `sig` (then SIGCONT, so a stopped process sees it) to each process.
pub fn signal_all(tree: &[(i32, i32)], sig: Signal) {
    for (pid, parent) in tree {
        proc::signal_if_child_of(*pid, *parent, sig);
        if sig != Signal::KILL {
            proc::signal_if_child_of(*pid, *parent, Signal::CONT);
        }
    }
}

/// SIGKILLs everything the ended command left behind, walking again while
/// anything is found (a process forking as it dies); returns how many
/// processes were left at first.
pub fn kill_leftovers(root: Root, prune: &[i32], mut reap: impl FnMut()) -> usize {
    let mut first = None;
    for _ in 0..5 {
        let tree = live(root, prune);
        first.get_or_insert(tree.len());
        if tree.is_empty() {
            break;
        }
        signal_all(&tree, Signal::KILL);
        std::thread::sleep(std::time::Duration::from_millis(2));
        reap();
    }
    first.unwrap_or(0)
}
