//! The thread pool gnno owns.
//!
//! A private rayon pool (never the global one, so gnno neither fights the
//! caller's rayon use nor inherits it) with a settable size. It survives
//! `fork()`: DataLoader workers fork the training process, the child has
//! none of the parent's threads, so a child that finds a pool made by another
//! process builds its own and leaks the dead one instead of waiting on it.
//! Results never depend on the pool's size (see [`crate::rng`]).

use rayon::{ThreadPool, ThreadPoolBuilder};
use std::sync::{Arc, Mutex};

use crate::error::{Error, Result};

struct PoolState {
    pid: u32,
    threads: usize,
    pool: Arc<ThreadPool>,
}

static POOL: Mutex<Option<PoolState>> = Mutex::new(None);
static REQUESTED: Mutex<Option<usize>> = Mutex::new(None);

/// The most worker threads gnno runs. More than this is a mistake (a
/// typo'd environment variable, `10**5`): each thread costs a stack and a
/// wake-up, and the results are the same at any count.
pub const MAX_THREADS: usize = 1024;

/// Checks a requested thread count: `1..=MAX_THREADS`.
pub fn check_num_threads(n: i128, source: &str) -> Result<usize> {
    if n < 1 || n > MAX_THREADS as i128 {
        return Err(Error::value(format!(
            "{source}={n} is not a valid number of threads: it must be at least 1 and at most {MAX_THREADS}"
        )));
    }
    Ok(n as usize)
}

/// `GNNO_NUM_THREADS`, parsed and checked: `Ok(None)` when unset or empty,
/// an error naming the value when it is not an integer in `1..=MAX_THREADS`.
pub fn env_num_threads() -> Result<Option<usize>> {
    let Ok(raw) = std::env::var("GNNO_NUM_THREADS") else {
        return Ok(None);
    };
    let v = raw.trim();
    if v.is_empty() {
        return Ok(None);
    }
    match v.parse::<i128>() {
        Ok(n) => check_num_threads(n, "GNNO_NUM_THREADS").map(Some),
        Err(_) => Err(Error::value(format!(
            "GNNO_NUM_THREADS={raw:?} is not an integer between 1 and {MAX_THREADS}"
        ))),
    }
}

fn available() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .min(MAX_THREADS)
}

/// Without `set_num_threads`: a valid `GNNO_NUM_THREADS`, else the number
/// of available cores (an invalid variable is reported by
/// [`env_num_threads`]; the Python package warns about it on import).
fn default_threads() -> usize {
    env_num_threads().ok().flatten().unwrap_or_else(available)
}

fn wanted_threads() -> usize {
    let requested = REQUESTED.lock().map(|g| *g).unwrap_or(None);
    requested.unwrap_or_else(default_threads)
}

/// Sets the number of worker threads (takes effect on the next call):
/// `1..=MAX_THREADS`.
pub fn set_num_threads(n: usize) -> Result<()> {
    let n = check_num_threads(n as i128, "num_threads")?;
    if let Ok(mut g) = REQUESTED.lock() {
        *g = Some(n);
    }
    Ok(())
}

/// The number of worker threads the next call will use.
pub fn num_threads() -> usize {
    wanted_threads()
}

fn pool() -> Arc<ThreadPool> {
    let pid = std::process::id();
    let threads = wanted_threads();
    let mut guard = match POOL.lock() {
        Ok(g) => g,
        Err(poisoned) => poisoned.into_inner(),
    };
    if let Some(state) = guard.as_ref() {
        if state.pid == pid && state.threads == threads {
            return state.pool.clone();
        }
    }
    if let Some(old) = guard.take() {
        if old.pid != pid {
            // Forked child: the old pool's threads do not exist here, and
            // dropping it would signal threads that never answer.
            std::mem::forget(old);
        }
    }
    // If the system refuses threads, fall back to fewer, down to one
    // (the caller's results do not depend on the count).
    let build = |n: usize| {
        ThreadPoolBuilder::new()
            .num_threads(n)
            .thread_name(|i| format!("gnno-{i}"))
            .build()
    };
    let pool = Arc::new(
        build(threads)
            .or_else(|_| build(available().min(threads)))
            .or_else(|_| build(1))
            .expect("a one-thread pool can always be built"),
    );
    *guard = Some(PoolState {
        pid,
        threads,
        pool: pool.clone(),
    });
    pool
}

/// Runs `f` inside gnno's pool; rayon's parallel iterators in `f` use it.
pub fn install<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    pool().install(f)
}

/// Work below this many elementary draws runs on the calling thread: waking
/// the pool costs more than it saves, and far more on a busy machine.
pub const PARALLEL_MIN_WORK: usize = 32 * 1024;

/// Calls `f(i, chunk)` for each `data.chunks_mut(chunk_len)`, on gnno's pool
/// when `work >= PARALLEL_MIN_WORK`, else in order on this thread. Results
/// must not depend on which: each chunk gets its index, and callers key
/// their random streams by it.
pub fn for_each_chunk_mut<T, F>(data: &mut [T], chunk_len: usize, work: usize, f: F)
where
    T: Send,
    F: Fn(usize, &mut [T]) + Send + Sync,
{
    use rayon::prelude::*;
    let chunk_len = chunk_len.max(1);
    if work < PARALLEL_MIN_WORK {
        for (i, chunk) in data.chunks_mut(chunk_len).enumerate() {
            f(i, chunk);
        }
    } else {
        install(|| {
            // A few tasks per thread, each running whole chunks in order:
            // thousands of tiny tasks cost more in scheduling than they do.
            let chunks = data.len().div_ceil(chunk_len);
            let per_task = chunks.div_ceil(4 * rayon::current_num_threads()).max(1);
            data.par_chunks_mut(chunk_len * per_task)
                .enumerate()
                .for_each(|(t, group)| {
                    for (j, chunk) in group.chunks_mut(chunk_len).enumerate() {
                        f(t * per_task + j, chunk);
                    }
                })
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thread_counts_are_checked() {
        assert!(set_num_threads(0).is_err());
        let e = set_num_threads(100_000).unwrap_err();
        assert!(
            e.message.contains("100000") && e.message.contains("at most 1024"),
            "{e}"
        );
        assert!(check_num_threads(-1, "n").is_err());
        assert!(check_num_threads(999_999_999_999, "GNNO_NUM_THREADS").is_err());
        assert_eq!(
            check_num_threads(MAX_THREADS as i128, "n").unwrap(),
            MAX_THREADS
        );
    }
}
