//! `moonauth dashboard` run for a test: started on 127.0.0.1 with `--port 0`, its URL
//! (and token) read from the first line it prints, killed when dropped. Requests are
//! written by hand over a TCP connection, so a test can send any `Host`, `Origin` or
//! `Authorization` it likes.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::moonauth_bin;

/// A running dashboard.
pub struct Dashboard {
    child: Child,
    /// The URL it printed, token included.
    pub url: String,
    pub addr: SocketAddr,
    pub token: String,
}

/// One answer.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    /// Header names lower-cased.
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Reply {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

impl Dashboard {
    /// Starts `moonauth dashboard --port 0` with only `vars` (and PATH) in its environment.
    pub fn start(vars: &[(&str, &str)]) -> Dashboard {
        Dashboard::start_with(vars, &[])
    }

    /// Like [`start`](Self::start), with extra arguments.
    pub fn start_with(vars: &[(&str, &str)], args: &[&str]) -> Dashboard {
        let mut cmd = Command::new(moonauth_bin());
        cmd.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .args(["dashboard", "--port", "0"])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in vars {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("start moonauth dashboard");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(line) if !line.is_empty() => line,
            _ => {
                let _ = child.kill();
                let out = child.wait_with_output().unwrap();
                panic!("the dashboard printed no URL: {}", String::from_utf8_lossy(&out.stderr));
            }
        };
        let url = line.trim().to_string();
        let rest = url.strip_prefix("http://").expect("an http:// URL");
        let (host, query) = rest.split_once("/?token=").expect("a URL with ?token=");
        let addr = host
            .replace("[::1]", "::1")
            .rsplit_once(':')
            .map(|(ip, port)| SocketAddr::new(ip.parse().unwrap(), port.parse().unwrap()))
            .unwrap();
        Dashboard {
            child,
            url: url.clone(),
            addr,
            token: query.to_string(),
        }
    }

    /// The `Host` the dashboard answers to.
    pub fn host(&self) -> String {
        match self.addr {
            SocketAddr::V4(a) => a.to_string(),
            SocketAddr::V6(a) => format!("[{}]:{}", a.ip(), a.port()),
        }
    }

    /// A request with the right Host and the token.
    pub fn call(&self, method: &str, path: &str, body: Option<&str>) -> Reply {
        let auth = format!("Bearer {}", self.token);
        self.raw(method, path, &[("Host", &self.host()), ("Authorization", &auth)], body)
    }

    /// A request with exactly these headers (plus Content-Length and Connection: close).
    pub fn raw(&self, method: &str, path: &str, headers: &[(&str, &str)], body: Option<&str>) -> Reply {
        request(self.addr, method, path, headers, body)
    }

    /// What the dashboard wrote to stderr so far is not readable while it runs; this stops
    /// it and returns stdout and stderr after the URL line.
    pub fn stop(mut self) -> String {
        let _ = self.child.kill();
        let mut rest = String::new();
        if let Some(mut e) = self.child.stderr.take() {
            let _ = e.read_to_string(&mut rest);
        }
        let _ = self.child.wait();
        rest
    }
}

impl Drop for Dashboard {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One HTTP/1.1 request over a fresh connection; bounded by timeouts.
pub fn request(addr: SocketAddr, method: &str, path: &str, headers: &[(&str, &str)], body: Option<&str>) -> Reply {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(10)).expect("connect to the dashboard");
    stream.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    stream.set_write_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut head = format!("{method} {path} HTTP/1.1\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    let body = body.unwrap_or("");
    if !body.is_empty() {
        head.push_str("Content-Type: application/json\r\n");
    }
    head.push_str(&format!("Content-Length: {}\r\nConnection: close\r\n\r\n", body.len()));
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(body.as_bytes()).unwrap();
    // Read the head, then exactly Content-Length bytes (some servers keep the
    // connection open despite `Connection: close`); without a length, read to the end.
    let mut reader = BufReader::new(stream);
    let mut status_line = String::new();
    reader.read_line(&mut status_line).expect("read the status line");
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line: {status_line:?}"));
    let mut headers = Vec::new();
    for _ in 0..200 {
        let mut line = String::new();
        reader.read_line(&mut line).expect("read a header");
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    let length = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .and_then(|(_, v)| v.parse::<usize>().ok());
    let chunked = headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"));
    let mut raw = Vec::new();
    if let Some(n) = length {
        raw.resize(n, 0);
        reader.read_exact(&mut raw).expect("read the body");
    } else if chunked {
        loop {
            let mut size = String::new();
            reader.read_line(&mut size).expect("read a chunk size");
            let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
            if n == 0 {
                break;
            }
            let mut chunk = vec![0; n + 2];
            reader.read_exact(&mut chunk).expect("read a chunk");
            raw.extend_from_slice(&chunk[..n]);
        }
    } else {
        reader.read_to_end(&mut raw).expect("read the body");
    }
    let body = String::from_utf8_lossy(&raw).into_owned();
    Reply { status, headers, body }
}
