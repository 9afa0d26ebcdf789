// Load for `moonauth dashboard`: seeds a store with ACCOUNTS accounts (each with a real
// login directory and a full usage history), starts the dashboard on 127.0.0.1, and has
// CLIENTS concurrent keep-alive clients GET /api/accounts for SECONDS seconds; prints requests
// per second and latency percentiles. scripts/bench-dashboard.sh runs it
// (docs/benchmarks.md). Usage:
//   dashboard_load MOONAUTH_BIN FIXTURES_DIR [ACCOUNTS=50] [CLIENTS=8] [SECONDS=10]
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use moonauth::agents::Runtime;
use moonauth::state::accounts::{Account, Credential};
use moonauth::state::store::Store;
use moonauth::state::usage::{Capture, History, Snapshot, Window, HISTORY_LIMIT};

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap().flatten() {
        if entry.file_type().unwrap().is_file() {
            std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
        }
    }
}

/// A store of `n` accounts, half Claude and half Codex, each with its login directory
/// (a fixture copy) and HISTORY_LIMIT snapshots of two windows.
fn seed(root: &Path, fixtures: &Path, n: usize) -> PathBuf {
    let state = root.join("state");
    let store = Store::open(&state).unwrap();
    let now = SystemTime::now();
    store
        .update(Duration::from_secs(10), |s| {
            for i in 0..n {
                let (runtime, fixture, names) = if i % 2 == 0 {
                    (Runtime::Claude, "claude/valid-max", ["five_hour", "seven_day"])
                } else {
                    (Runtime::Codex, "codex/chatgpt-valid", ["primary", "secondary"])
                };
                let alias = format!("acct-{i:03}");
                let dir = root.join(&alias);
                copy_dir(&fixtures.join(fixture), &dir);
                let account = Account::new(&alias, runtime, Credential::Login { dir, volume: None }, 0);
                s.add(account).unwrap();
                let mut h = History::default();
                for k in 0..HISTORY_LIMIT {
                    let at = now - Duration::from_secs(60 * (HISTORY_LIMIT - k) as u64);
                    h.record(Snapshot {
                        source: Capture {
                            run_id: format!("run-{i}-{k}"),
                            at,
                            outcome: "success".into(),
                        },
                        windows: names
                            .iter()
                            .map(|name| Window {
                                name: name.to_string(),
                                used_percent: (k as f64 * 0.7) % 100.0,
                                resets_at: Some(now + Duration::from_secs(3600)),
                                window_minutes: None,
                                status: None,
                            })
                            .collect(),
                    });
                }
                s.usage_windows.insert(alias, h);
            }
        })
        .unwrap();
    state
}

/// One keep-alive GET; returns the body length.
fn get(stream: &mut BufReader<TcpStream>, request: &[u8]) -> usize {
    stream.get_mut().write_all(request).unwrap();
    let mut line = String::new();
    stream.read_line(&mut line).unwrap();
    assert!(line.starts_with("HTTP/1.1 200"), "{line}");
    let mut length = 0;
    loop {
        line.clear();
        stream.read_line(&mut line).unwrap();
        if line.trim_end().is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            if k.eq_ignore_ascii_case("content-length") {
                length = v.trim().parse().unwrap();
            }
        }
    }
    let mut body = vec![0; length];
    stream.read_exact(&mut body).unwrap();
    length
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let bin = PathBuf::from(args.get(1).expect("MOONAUTH_BIN"));
    let fixtures = PathBuf::from(args.get(2).expect("FIXTURES_DIR"));
    let accounts: usize = args.get(3).map_or(50, |a| a.parse().unwrap());
    let clients: usize = args.get(4).map_or(8, |a| a.parse().unwrap());
    let seconds: u64 = args.get(5).map_or(10, |a| a.parse().unwrap());

    let root = tempfile::tempdir().unwrap();
    let state = seed(root.path(), &fixtures, accounts);
    let mut child = Command::new(&bin)
        .args(["dashboard", "--port", "0"])
        .env("MOONAUTH_STATE_DIR", &state)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut url = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut url)
        .unwrap();
    let rest = url.trim().strip_prefix("http://").unwrap();
    let (host, token) = rest.split_once("/?token=").unwrap();
    let request = format!("GET /api/accounts HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n\r\n");

    // Warm-up, and the size of one answer.
    let mut one = BufReader::new(TcpStream::connect(host).unwrap());
    let size = get(&mut one, request.as_bytes());
    for _ in 0..20 {
        get(&mut one, request.as_bytes());
    }

    let start = Instant::now();
    let end = start + Duration::from_secs(seconds);
    let threads: Vec<_> = (0..clients)
        .map(|_| {
            let request = request.clone();
            let host = host.to_string();
            std::thread::spawn(move || {
                let mut conn = BufReader::new(TcpStream::connect(&host).unwrap());
                let mut latencies = Vec::new();
                while Instant::now() < end {
                    let t = Instant::now();
                    get(&mut conn, request.as_bytes());
                    latencies.push(t.elapsed());
                }
                latencies
            })
        })
        .collect();
    let mut all: Vec<Duration> = threads.into_iter().flat_map(|t| t.join().unwrap()).collect();
    let elapsed = start.elapsed();
    let _ = child.kill();
    let _ = child.wait();
    all.sort();
    let pct = |p: f64| all[((all.len() as f64 * p).ceil() as usize).clamp(1, all.len()) - 1];
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "accounts={accounts} clients={clients} seconds={:.1} answer={size} bytes requests={} rps={:.0} p50={:.2}ms p90={:.2}ms p99={:.2}ms max={:.2}ms",
        elapsed.as_secs_f64(),
        all.len(),
        all.len() as f64 / elapsed.as_secs_f64(),
        ms(pct(0.50)),
        ms(pct(0.90)),
        ms(pct(0.99)),
        ms(*all.last().unwrap()),
    );
}
