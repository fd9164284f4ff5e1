//! A small HTTP/1.1 server on 127.0.0.1 whose answers a test scripts.
//!
//! Used where a real Stripe-compatible server cannot do what a test needs:
//! many cheap responses (queue tests, load), and faults (resets, 5xx then
//! 2xx, slow or huge or broken bodies, redirects). Every request it sees is
//! recorded (method, path, headers, body) so tests can check what payhost
//! sent, e.g. the same Idempotency-Key on every retry.
//!
//! One thread per connection, keep-alive, bodies by Content-Length. This is
//! test scaffolding, so a `Mutex` around the record is fine here.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A request as the stub saw it. Header names are lower case.
#[derive(Debug, Clone)]
pub struct SeenRequest {
    pub method: String,
    pub path: String,
    pub headers: HashMap<String, String>,
    pub body: Vec<u8>,
}

/// What to do with one request.
#[derive(Debug, Clone)]
pub enum Action {
    /// Answer with this status, extra headers and body.
    Respond {
        status: u16,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    },
    /// Abort the connection without answering: a real TCP reset (RST, by
    /// closing with a zero linger), not an orderly close.
    Reset,
    /// Send the status line and headers, then the body slowly: one byte
    /// every `every`.
    SlowBody { every: Duration, body: Vec<u8> },
    /// Wait, then answer.
    Delay(Duration, Box<Action>),
    /// Write these bytes as they are (status line, headers, body: valid
    /// HTTP or not, e.g. a lying Content-Length or a chunked body), then
    /// close the connection.
    Raw(Vec<u8>),
}

impl Action {
    pub fn json(status: u16, body: &str) -> Action {
        Action::Respond {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body: body.as_bytes().to_vec(),
        }
    }

    pub fn with_header(self, name: &str, value: &str) -> Action {
        match self {
            Action::Respond {
                status,
                mut headers,
                body,
            } => {
                headers.push((name.into(), value.into()));
                Action::Respond {
                    status,
                    headers,
                    body,
                }
            }
            other => other,
        }
    }
}

type Handler = dyn Fn(&SeenRequest, u64) -> Action + Send + Sync;

/// The running stub; stops when dropped.
pub struct StubServer {
    port: u16,
    stop: Arc<AtomicBool>,
    seen: Arc<Mutex<Vec<SeenRequest>>>,
}

impl StubServer {
    /// Starts a stub whose `handler` gets each request and its sequence
    /// number (0-based, over the server's life).
    pub fn start(handler: impl Fn(&SeenRequest, u64) -> Action + Send + Sync + 'static) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let handler: Arc<Handler> = Arc::new(handler);
        let counter = Arc::new(AtomicU64::new(0));
        {
            let (stop, seen) = (stop.clone(), seen.clone());
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(stream) = stream else { continue };
                    let (handler, seen, counter) = (handler.clone(), seen.clone(), counter.clone());
                    std::thread::spawn(move || serve(stream, &*handler, &seen, &counter));
                }
            });
        }
        StubServer { port, stop, seen }
    }

    /// A stub that answers every request 200 with a Stripe-like object whose
    /// id is `obj_<n>`.
    pub fn ok_objects() -> Self {
        Self::start(|req, n| {
            let object = req
                .path
                .trim_start_matches("/v1/")
                .split('/')
                .next()
                .unwrap_or("x");
            Action::json(
                200,
                &format!(r#"{{"id":"obj_{n}","object":"{object}","livemode":false,"n":{n}}}"#),
            )
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Every request seen so far.
    pub fn seen(&self) -> Vec<SeenRequest> {
        self.seen.lock().unwrap().clone()
    }

    /// How many requests were seen so far (without copying them).
    pub fn seen_count(&self) -> usize {
        self.seen.lock().unwrap().len()
    }
}

impl Drop for StubServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

fn serve(
    stream: TcpStream,
    handler: &Handler,
    seen: &Mutex<Vec<SeenRequest>>,
    counter: &AtomicU64,
) {
    let mut writer = match stream.try_clone() {
        Ok(w) => w,
        Err(_) => return,
    };
    let mut reader = BufReader::new(stream);
    loop {
        let Some(request) = read_request(&mut reader) else {
            return;
        };
        seen.lock().unwrap().push(request.clone());
        let n = counter.fetch_add(1, Ordering::SeqCst);
        let action = handler(&request, n);
        if matches!(action, Action::Reset) {
            // SO_LINGER 0: closing sends RST instead of FIN.
            let _ = socket2::SockRef::from(&writer).set_linger(Some(Duration::ZERO));
            return;
        }
        if !act(&mut writer, action) {
            let _ = writer.shutdown(Shutdown::Both);
            return;
        }
    }
}

fn read_request(reader: &mut BufReader<TcpStream>) -> Option<SeenRequest> {
    let mut line = String::new();
    if reader.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_string();
    let path = parts.next()?.to_string();
    let mut headers = HashMap::new();
    loop {
        let mut header = String::new();
        reader.read_line(&mut header).ok()?;
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            headers.insert(name.trim().to_ascii_lowercase(), value.trim().to_string());
        }
    }
    let length: usize = headers
        .get("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    Some(SeenRequest {
        method,
        path,
        headers,
        body,
    })
}

/// Carries out `action`; false when the connection must close.
fn act(writer: &mut TcpStream, action: Action) -> bool {
    match action {
        Action::Respond {
            status,
            headers,
            body,
        } => {
            let mut head = format!("HTTP/1.1 {status} X\r\ncontent-length: {}\r\n", body.len());
            for (name, value) in headers {
                head.push_str(&format!("{name}: {value}\r\n"));
            }
            head.push_str("\r\n");
            writer.write_all(head.as_bytes()).is_ok() && writer.write_all(&body).is_ok()
        }
        Action::Reset => false,
        Action::SlowBody { every, body } => {
            let head = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
                body.len()
            );
            if writer.write_all(head.as_bytes()).is_err() {
                return false;
            }
            for byte in body {
                std::thread::sleep(every);
                if writer.write_all(&[byte]).is_err() {
                    return false;
                }
            }
            true
        }
        Action::Delay(delay, then) => {
            std::thread::sleep(delay);
            act(writer, *then)
        }
        Action::Raw(bytes) => {
            let _ = writer.write_all(&bytes);
            false
        }
    }
}
