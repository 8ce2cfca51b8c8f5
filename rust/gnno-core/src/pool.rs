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

fn default_threads() -> usize {
    if let Ok(v) = std::env::var("GNNO_NUM_THREADS") {
        if let Ok(n) = v.trim().parse::<usize>() {
            if n > 0 {
                return n;
            }
        }
    }
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

fn wanted_threads() -> usize {
    let requested = REQUESTED.lock().map(|g| *g).unwrap_or(None);
    requested.unwrap_or_else(default_threads)
}

/// Sets the number of worker threads (takes effect on the next call).
pub fn set_num_threads(n: usize) -> Result<()> {
    if n == 0 {
        return Err(Error::value("num_threads must be at least 1, got 0"));
    }
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
    let pool = Arc::new(
        ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|i| format!("gnno-{i}"))
            .build()
            .unwrap_or_else(|_| {
                ThreadPoolBuilder::new()
                    .num_threads(1)
                    .build()
                    .expect("a one-thread pool can always be built")
            }),
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
