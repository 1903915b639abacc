//! The executor's own process hygiene, through `/proc` and `prctl`.
//!
//! The executor makes itself a *child subreaper*: a task's grandchild
//! whose parent dies is re-parented to the executor instead of init, so it
//! can still be found. Before exiting, [`kill_all_children`] SIGKILLs and
//! reaps every child, again and again as killed children's own children
//! are re-parented, until none is left: nothing outlives the executor.

use std::fs;
use std::io;
use std::time::Duration;

use crate::RuntimeError;

/// Makes the calling process a child subreaper (`PR_SET_CHILD_SUBREAPER`).
pub fn set_child_subreaper() -> Result<(), RuntimeError> {
    // SAFETY: prctl with PR_SET_CHILD_SUBREAPER takes plain integers and
    // touches no memory of ours.
    if unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1 as libc::c_ulong, 0, 0, 0) } == -1 {
        return Err(RuntimeError::System {
            call: "prctl(PR_SET_CHILD_SUBREAPER)",
            source: io::Error::last_os_error(),
        });
    }
    Ok(())
}

/// The state letter and parent pid of `pid`, from `/proc/<pid>/stat`.
fn stat(pid: u32) -> Option<(char, u32)> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // `pid (comm) S ppid ...`; comm may contain spaces and parentheses.
    let rest = &text[text.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let ppid = fields.next()?.parse().ok()?;
    Some((state, ppid))
}

/// When `pid` started, in clock ticks since boot (`/proc/<pid>/stat` field
/// 22): with the pid, it identifies a process across pid reuse.
pub fn start_time(pid: u32) -> Option<u64> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &text[text.rfind(')')? + 1..];
    // Field 3 (the state) is the first after the command name.
    rest.split_whitespace().nth(22 - 3)?.parse().ok()
}

/// This process' pid namespace, e.g. `pid:[4026531836]`: pids mean the
/// same process only within one namespace.
pub fn pid_namespace() -> Option<String> {
    fs::read_link("/proc/self/ns/pid").ok().map(|p| p.display().to_string())
}

/// True while the process `pid` that started at `start` (see
/// [`start_time`]) lives.
pub fn is_same_process_alive(pid: u32, start: u64) -> bool {
    is_alive(pid) && start_time(pid) == Some(start)
}

fn all_pids() -> Vec<u32> {
    let Ok(dir) = fs::read_dir("/proc") else { return Vec::new() };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok()).collect()
}

/// The pids whose parent is `parent` (zombies included).
pub fn children_of(parent: u32) -> Vec<u32> {
    all_pids()
        .into_iter()
        .filter(|&pid| stat(pid).is_some_and(|(_, ppid)| ppid == parent))
        .collect()
}

/// True while `pid` exists and is not a zombie.
pub fn is_alive(pid: u32) -> bool {
    stat(pid).is_some_and(|(state, _)| state != 'Z' && state != 'X')
}

/// The live (non-zombie) processes whose environment contains exactly
/// `entry` (`NAME=value`). Tests use it to find what a task left behind.
pub fn live_with_env(entry: &str) -> Vec<u32> {
    all_pids()
        .into_iter()
        .filter(|&pid| {
            fs::read(format!("/proc/{pid}/environ"))
                .is_ok_and(|env| env.split(|b| *b == 0).any(|e| e == entry.as_bytes()))
                && is_alive(pid)
        })
        .collect()
}

/// SIGKILLs and reaps every child of this process, repeatedly, until none
/// is left or `timeout` has passed. Blocking: call it after the async
/// runtime has stopped. Returns how many processes were killed.
pub fn kill_all_children(timeout: Duration) -> usize {
    const STEP: Duration = Duration::from_millis(10);
    let me = std::process::id();
    let mut killed = 0;
    let rounds = (timeout.as_millis() / STEP.as_millis()).max(1);
    for _ in 0..rounds {
        let children = children_of(me);
        if children.is_empty() {
            break;
        }
        for child in children {
            let Ok(pid) = libc::pid_t::try_from(child) else { continue };
            // SAFETY: kill and waitpid take plain integers (a null status
            // pointer is allowed); pid is a positive child pid of ours.
            unsafe {
                if libc::kill(pid, libc::SIGKILL) == 0 {
                    killed += 1;
                }
                libc::waitpid(pid, std::ptr::null_mut(), libc::WNOHANG);
            }
        }
        std::thread::sleep(STEP);
    }
    killed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_reads_this_process() {
        let me = std::process::id();
        let (state, ppid) = stat(me).unwrap();
        assert!(state != 'Z');
        assert!(ppid > 0);
        assert!(is_alive(me));
        assert!(children_of(ppid).contains(&me));
        assert!(!is_alive(u32::MAX));
        let start = start_time(me).unwrap();
        assert!(is_same_process_alive(me, start));
        assert!(!is_same_process_alive(me, start + 1));
        assert!(pid_namespace().unwrap().starts_with("pid:["));
    }
}
