//! Running tasks: each persistent query and table materialiser is a [`Task`] that a thread
//! steps in a loop (the server) or that `eddy test` steps until everything is idle.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::error::EngineError;

/// A unit of continuous work: reads what is available, processes it, and commits.
pub(crate) trait Task: Send {
    /// A name for logs.
    fn name(&self) -> &str;
    /// Takes one step with at most one batch (polling it, waiting up to `wait` for input,
    /// or processing the batch in hand); returns how many input records the step took or
    /// processed (0 when there was nothing to do). Between steps the task may be paused.
    fn step(&mut self, wait: Duration) -> Result<usize, EngineError>;
    /// Whether the task has finished for good (e.g. its LIMIT was reached).
    fn finished(&self) -> bool {
        false
    }
    /// Called once when the task stops: persists what it holds only in memory.
    fn close(&mut self) -> Result<(), EngineError> {
        Ok(())
    }
}

/// The last error of a task, shown by `SHOW QUERIES` and `DESCRIBE EXTENDED`.
#[derive(Debug, Clone, Default)]
pub struct TaskHealth {
    /// The most recent error, if the task is failing.
    pub last_error: Option<String>,
}

/// How tasks are run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunMode {
    /// Each task on its own thread (the server).
    Threads,
    /// Tasks are stepped by [`crate::Engine::run_until_idle`] (`eddy test`).
    Synchronous,
}

/// A running task's handle.
pub(crate) struct TaskHandle {
    stop: Arc<AtomicBool>,
    /// While set, the task is not stepped (`PAUSE`): it reads and writes nothing and keeps
    /// its place (its committed offsets and its state).
    paused: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    /// Only in synchronous mode: the task itself.
    task: Option<Box<dyn Task>>,
    pub health: Arc<Mutex<TaskHealth>>,
}

impl TaskHandle {
    /// Pauses (`true`) or resumes the task, after its current step.
    pub(crate) fn set_paused(&self, paused: bool) {
        self.paused.store(paused, Ordering::SeqCst);
    }

    /// Stops the task and waits for its thread.
    pub(crate) fn stop(mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        if let Some(task) = self.task.as_mut() {
            close(task.as_mut());
        }
    }
}

/// Starts `task` in the given mode.
pub(crate) fn start(id: &str, task: Box<dyn Task>, mode: RunMode) -> TaskHandle {
    start_paused(id, task, mode, false)
}

/// Starts `task` in the given mode, paused (not stepped until resumed) if `paused`.
pub(crate) fn start_paused(
    id: &str,
    task: Box<dyn Task>,
    mode: RunMode,
    paused: bool,
) -> TaskHandle {
    let stop = Arc::new(AtomicBool::new(false));
    let paused = Arc::new(AtomicBool::new(paused));
    let health = Arc::new(Mutex::new(TaskHealth::default()));
    match mode {
        RunMode::Synchronous => TaskHandle {
            stop,
            paused,
            thread: None,
            task: Some(task),
            health,
        },
        RunMode::Threads => {
            let thread = std::thread::Builder::new()
                .name(format!("eddy-{id}"))
                .spawn({
                    let stop = Arc::clone(&stop);
                    let paused = Arc::clone(&paused);
                    let health = Arc::clone(&health);
                    let id = id.to_string();
                    move || run_loop(&id, task, &stop, &paused, &health)
                });
            match thread {
                Ok(t) => TaskHandle {
                    stop,
                    paused,
                    thread: Some(t),
                    task: None,
                    health,
                },
                Err(e) => {
                    if let Ok(mut h) = health.lock() {
                        h.last_error = Some(format!("could not start a thread: {e}"));
                    }
                    TaskHandle {
                        stop,
                        paused,
                        thread: None,
                        task: None,
                        health,
                    }
                }
            }
        }
    }
}

/// How often a paused task looks whether it was resumed or stopped.
const PAUSED_CHECK: Duration = Duration::from_millis(100);

fn run_loop(
    id: &str,
    mut task: Box<dyn Task>,
    stop: &AtomicBool,
    paused: &AtomicBool,
    health: &Mutex<TaskHealth>,
) {
    let span = tracing::info_span!("query", query_id = id);
    let _enter = span.enter();
    tracing::info!("started {}", task.name());
    let mut backoff = Duration::from_millis(100);
    while !stop.load(Ordering::SeqCst) && !task.finished() {
        if paused.load(Ordering::SeqCst) {
            std::thread::sleep(PAUSED_CHECK);
            continue;
        }
        match task.step(Duration::from_millis(100)) {
            Ok(_) => {
                backoff = Duration::from_millis(100);
                if let Ok(mut h) = health.lock() {
                    h.last_error = None;
                }
            }
            Err(e) => {
                // Nothing was committed for the failed batch, so retrying loses nothing; a
                // broker outage is waited out here.
                tracing::warn!("{}: {e}; retrying in {backoff:?}", task.name());
                if let Ok(mut h) = health.lock() {
                    h.last_error = Some(e.to_string());
                }
                std::thread::sleep(backoff);
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    }
    close(task.as_mut());
    tracing::info!("stopped {}", task.name());
}

/// Lets a stopping task persist what it holds in memory.
fn close(task: &mut dyn Task) {
    if let Err(e) = task.close() {
        // What was not persisted is read again from the changelogs on the next start.
        tracing::warn!(
            "{}: could not persist its state on stopping: {e}",
            task.name()
        );
    }
}

/// Steps every synchronous task until none has anything to do. Returns the first error.
pub(crate) fn run_until_idle(handles: &mut [TaskHandle]) -> Result<(), EngineError> {
    loop {
        let mut progressed = false;
        for h in handles.iter_mut() {
            if h.paused.load(Ordering::SeqCst) {
                continue;
            }
            if let Some(task) = h.task.as_mut() {
                if task.finished() {
                    continue;
                }
                if task.step(Duration::ZERO)? > 0 {
                    progressed = true;
                }
            }
        }
        if !progressed {
            return Ok(());
        }
    }
}
