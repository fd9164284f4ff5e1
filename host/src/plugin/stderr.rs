//! Where a plugin's stderr goes: the host log, one event per line.
//!
//! WASI gives the guest a stderr stream; we hand it a writer that splits the
//! bytes into lines and emits each as a `tracing` event under the target
//! `payhost::plugin`, tagged with the plugin's name. Lines are capped so a
//! chatty plugin cannot make the host buffer without bound. Nothing here is
//! shared between stores: each WASI context gets its own writer.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};

/// Longest line forwarded; the rest of a longer line is dropped with a marker.
const MAX_LINE: usize = 4096;

/// The `StdoutStream` WASI asks for; it mints a [`LogLines`] writer per stream.
#[derive(Clone)]
pub(crate) struct PluginStderr {
    plugin: Arc<str>,
}

impl PluginStderr {
    pub(crate) fn new(plugin: Arc<str>) -> Self {
        Self { plugin }
    }
}

impl IsTerminal for PluginStderr {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for PluginStderr {
    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(LogLines::new(self.plugin.clone()))
    }

    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(LogLines::new(self.plugin.clone()))
    }
}

/// Buffers a partial line; emits complete lines to the log.
struct LogLines {
    plugin: Arc<str>,
    line: Vec<u8>,
    truncated: bool,
}

impl LogLines {
    fn new(plugin: Arc<str>) -> Self {
        Self {
            plugin,
            line: Vec::new(),
            truncated: false,
        }
    }

    fn push(&mut self, mut bytes: &[u8]) {
        while let Some(nl) = bytes.iter().position(|&b| b == b'\n') {
            self.extend(&bytes[..nl]);
            self.emit();
            bytes = &bytes[nl + 1..];
        }
        self.extend(bytes);
    }

    fn extend(&mut self, bytes: &[u8]) {
        let room = MAX_LINE.saturating_sub(self.line.len());
        if bytes.len() > room {
            self.truncated = true;
        }
        self.line.extend_from_slice(&bytes[..bytes.len().min(room)]);
    }

    fn emit(&mut self) {
        if self.line.is_empty() && !self.truncated {
            return;
        }
        let text = String::from_utf8_lossy(&self.line);
        let marker = if self.truncated {
            " [line truncated]"
        } else {
            ""
        };
        tracing::warn!(target: "payhost::plugin", plugin = %self.plugin, "plugin stderr: {text}{marker}");
        self.line.clear();
        self.truncated = false;
    }
}

impl Drop for LogLines {
    fn drop(&mut self) {
        self.emit();
    }
}

#[async_trait::async_trait]
impl Pollable for LogLines {
    async fn ready(&mut self) {}
}

impl OutputStream for LogLines {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.push(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(64 * 1024)
    }
}

impl tokio::io::AsyncWrite for LogLines {
    fn poll_write(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.push(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        self.emit();
        Poll::Ready(Ok(()))
    }
}
