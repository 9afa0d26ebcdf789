//! A real headless Chromium driven over the W3C WebDriver protocol: Debian's `chromium`
//! and `chromium-driver` (scripts/test installs them; nothing is downloaded), spoken to
//! with plain HTTP on 127.0.0.1 (the dashboard support's request writer). Every wait is
//! bounded. Without a browser the tests print a skip notice, unless
//! MOONAUTH_REQUIRE_BROWSER=1 (CI), where they fail.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{json, Value};

use super::dashboard::request;

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// The Chromium and chromedriver binaries, when both are installed.
pub fn browser() -> Option<(PathBuf, PathBuf)> {
    let find = |names: &[&str]| {
        names
            .iter()
            .map(|n| Path::new("/usr/bin").join(n))
            .find(|p| p.is_file())
    };
    let found = find(&["chromium", "chromium-browser"]).zip(find(&["chromedriver"]));
    if found.is_none() {
        if std::env::var("MOONAUTH_REQUIRE_BROWSER").as_deref() == Ok("1") {
            panic!("MOONAUTH_REQUIRE_BROWSER=1 but chromium and chromedriver are not installed (scripts/test installs them)");
        }
        eprintln!("SKIP: no chromium/chromedriver (set MOONAUTH_REQUIRE_BROWSER=1 to make this a failure)");
    }
    found
}

/// A chromedriver process and one browser session; both end when dropped.
pub struct Browser {
    driver: Child,
    addr: SocketAddr,
    session: String,
    _profile: tempfile::TempDir,
}

/// A found element.
#[derive(Debug, Clone)]
pub struct Element(String);

impl Browser {
    pub fn start(chromium: &Path, chromedriver: &Path) -> Browser {
        // A free port: bound, read, released (chromedriver binds it right after).
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let driver = Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let start = Instant::now();
        loop {
            let up = std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
                && call_at(addr, "GET", "/status", None)["value"]["ready"] == true;
            if up {
                break;
            }
            assert!(start.elapsed() < Duration::from_secs(30), "chromedriver did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        let profile = tempfile::tempdir().unwrap();
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                         "--window-size=1280,1100", "--no-first-run", "--disable-extensions",
                         format!("--user-data-dir={}", profile.path().display())]
            }
        }}});
        let mut browser = Browser {
            driver,
            addr,
            session: String::new(),
            _profile: profile,
        };
        let created = browser.raw("POST", "/session", Some(caps));
        browser.session = created["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {created}"))
            .to_string();
        browser
    }

    fn raw(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let v = call_at(self.addr, method, path, body);
        if let Some(error) = v["value"]["error"].as_str() {
            panic!("webdriver {method} {path}: {error}: {}", v["value"]["message"]);
        }
        v
    }

    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        self.raw(method, &format!("/session/{}{path}", self.session), body)["value"].clone()
    }

    pub fn goto(&self, url: &str) {
        self.call("POST", "/url", Some(json!({ "url": url })));
    }

    /// The page's current URL.
    pub fn url(&self) -> String {
        self.call("GET", "/url", None).as_str().unwrap_or_default().to_string()
    }

    /// Runs `script` in the page (its `arguments` are `args`) and returns what it returns.
    pub fn eval(&self, script: &str, args: Value) -> Value {
        self.call("POST", "/execute/sync", Some(json!({ "script": script, "args": args })))
    }

    /// The first element matching `css`, if any.
    pub fn find(&self, css: &str) -> Option<Element> {
        let v = call_at(
            self.addr,
            "POST",
            &format!("/session/{}/element", self.session),
            Some(json!({ "using": "css selector", "value": css })),
        );
        v["value"][ELEMENT].as_str().map(|id| Element(id.to_string()))
    }

    /// Waits (at most `timeout`) until `css` matches an element.
    pub fn wait_for(&self, css: &str, timeout: Duration) -> Element {
        let start = Instant::now();
        loop {
            if let Some(e) = self.find(css) {
                return e;
            }
            assert!(start.elapsed() < timeout, "no {css} within {timeout:?}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits (at most `timeout`) until the script returns true.
    pub fn wait_until(&self, what: &str, script: &str, timeout: Duration) {
        let start = Instant::now();
        while self.eval(script, json!([])) != json!(true) {
            assert!(start.elapsed() < timeout, "{what}: not within {timeout:?}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn click(&self, e: &Element) {
        self.call("POST", &format!("/element/{}/click", e.0), Some(json!({})));
    }

    pub fn text(&self, e: &Element) -> String {
        self.call("GET", &format!("/element/{}/text", e.0), None)
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    pub fn attribute(&self, e: &Element, name: &str) -> Option<String> {
        self.call("GET", &format!("/element/{}/attribute/{name}", e.0), None)
            .as_str()
            .map(str::to_string)
    }

    /// Clears an input and types `text` into it.
    pub fn type_into(&self, e: &Element, text: &str) {
        self.call("POST", &format!("/element/{}/clear", e.0), Some(json!({})));
        self.call(
            "POST",
            &format!("/element/{}/value", e.0),
            Some(json!({ "text": text })),
        );
    }

    /// Saves a PNG of the page at `path`.
    pub fn screenshot(&self, path: &Path) {
        let b64 = self.call("GET", "/screenshot", None);
        let png = base64::engine::general_purpose::STANDARD
            .decode(b64.as_str().unwrap())
            .unwrap();
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, png).unwrap();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let _ = call_at(self.addr, "DELETE", &format!("/session/{}", self.session), None);
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

fn call_at(addr: SocketAddr, method: &str, path: &str, body: Option<Value>) -> Value {
    let host = addr.to_string();
    let body = body.map(|b| b.to_string());
    let reply = request(addr, method, path, &[("Host", &host)], body.as_deref());
    serde_json::from_str(&reply.body).unwrap_or(Value::Null)
}
