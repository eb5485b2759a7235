//! Log capture: every tracing event, at every level, of the thread that asked for it (the
//! `#[sqlx::test]` runtime is single-threaded, so that is everything the code under test logs).
//! One global subscriber whose filter asks, per event, whether the current thread is capturing:
//! a scoped `set_default` would miss events whose callsites another test thread registered first.

#[allow(unused_imports)]
use super::*;

#[derive(Clone, Default)]
pub struct CapturedLogs(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl CapturedLogs {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

thread_local! {
    static CAPTURE: std::cell::RefCell<Option<CapturedLogs>> = const { std::cell::RefCell::new(None) };
}

struct ThreadCapture;

impl std::io::Write for ThreadCapture {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        CAPTURE.with(|capture| {
            if let Some(logs) = capture.borrow().as_ref() {
                logs.0.lock().unwrap().extend_from_slice(bytes);
            }
        });
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Stops the capture when dropped.
pub struct CaptureGuard;

impl Drop for CaptureGuard {
    fn drop(&mut self) {
        CAPTURE.with(|capture| capture.borrow_mut().take());
    }
}

pub fn capture_logs() -> (CapturedLogs, CaptureGuard) {
    use tracing_subscriber::Layer;
    use tracing_subscriber::layer::SubscriberExt;
    static INSTALL: std::sync::Once = std::sync::Once::new();
    INSTALL.call_once(|| {
        let layer = tracing_subscriber::fmt::layer()
            .with_ansi(false)
            .with_writer(|| ThreadCapture)
            // Decided per event, never cached per callsite: whether this thread is capturing.
            .with_filter(
                tracing_subscriber::filter::dynamic_filter_fn(|_, _| {
                    CAPTURE.with(|capture| capture.borrow().is_some())
                })
                .with_callsite_filter(|_| shared::tracing::subscriber::Interest::sometimes()),
            );
        shared::tracing::subscriber::set_global_default(tracing_subscriber::registry().with(layer))
            .expect("no other global subscriber in the test binary");
    });
    let logs = CapturedLogs::default();
    CAPTURE.with(|capture| *capture.borrow_mut() = Some(logs.clone()));
    (logs, CaptureGuard)
}
