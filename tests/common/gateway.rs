//! A `mosaic gateway run` process of a test [`Cluster`], and HTTP/1.1 spoken to it over
//! a plain TCP socket (so every header the gateway sends is seen as sent).

use std::{
    collections::HashMap,
    io::{BufRead, BufReader, Read, Write},
    net::{SocketAddr, TcpListener, TcpStream},
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex},
    thread,
    time::{Duration, Instant},
};

use super::Cluster;

/// A `mosaic gateway run` process.
pub struct Gateway {
    pub addr: SocketAddr,
    pub child: Child,
    pub log: Arc<Mutex<String>>,
}

impl Gateway {
    pub fn start(c: &Cluster, extra: &[&str]) -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let cache = c.tmp.path().join(format!("gateway-cache-{port}"));
        let mut child = Command::new(env!("CARGO_BIN_EXE_mosaic"))
            .args(["gateway", "run", "--listen", &addr.to_string()])
            .args(["--cache-dir", cache.to_str().unwrap()])
            .args(["--lookup-timeout", "5s"])
            .args(extra)
            .env("MOSAIC_BOOTSTRAP", c.bootstrap())
            .env("MOSAIC_NETWORK", &c.network)
            .env("MOSAIC_BIND", "127.0.0.1:0")
            .env("MOSAIC_CONNECT_TIMEOUT", "2s")
            .env("XDG_CONFIG_HOME", c.tmp.path().join("gateway"))
            .env("HOME", c.tmp.path())
            .env("RUST_LOG", "info,mosaic::access=debug")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let log = capture_stderr(&mut child);
        Self::healthy(Self { addr, child, log })
    }

    /// Waits until the gateway answers `/health` with 200.
    pub fn healthy(gateway: Self) -> Self {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(r) = gateway.try_request("GET", "/health", &[]) {
                if r.status == 200 {
                    return gateway;
                }
            }
            assert!(
                Instant::now() < deadline,
                "gateway not healthy:\n{}",
                gateway.log.lock().unwrap()
            );
            thread::sleep(Duration::from_millis(200));
        }
    }

    pub fn request(&self, method: &str, path: &str, headers: &[(&str, &str)]) -> Reply {
        self.try_request(method, path, headers)
            .unwrap_or_else(|e| panic!("{method} {path}: {e}\n{}", self.log.lock().unwrap()))
    }

    pub fn get(&self, path: &str) -> Reply {
        self.request("GET", path, &[])
    }

    pub fn try_request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
    ) -> std::io::Result<Reply> {
        let mut s = self.send(method, path, headers)?;
        let mut raw = Vec::new();
        s.read_to_end(&mut raw)?;
        Ok(Reply::parse(&raw, method == "HEAD"))
    }

    pub fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
    ) -> std::io::Result<TcpStream> {
        let mut s = TcpStream::connect(self.addr)?;
        s.set_read_timeout(Some(Duration::from_secs(60)))?;
        let mut req = format!("{method} {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n");
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        req.push_str("\r\n");
        s.write_all(req.as_bytes())?;
        Ok(s)
    }

    /// `POST path` with `body` (Content-Length).
    pub fn post(&self, path: &str, body: &[u8]) -> Reply {
        let run = || -> std::io::Result<Reply> {
            let len = body.len().to_string();
            let mut s = self.send(
                "POST",
                path,
                &[
                    ("Content-Length", &len),
                    ("Content-Type", "application/octet-stream"),
                    ("X-Mosaic-Upload", "1"),
                ],
            )?;
            s.write_all(body)?;
            let mut raw = Vec::new();
            s.read_to_end(&mut raw)?;
            Ok(Reply::parse(&raw, false))
        };
        run().unwrap_or_else(|e| panic!("POST {path}: {e}\n{}", self.log.lock().unwrap()))
    }

    pub fn metrics(&self) -> String {
        String::from_utf8(self.get("/metrics").body).unwrap()
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Collects a child's stderr lines, for failure messages.
pub fn capture_stderr(child: &mut Child) -> Arc<Mutex<String>> {
    let log = Arc::new(Mutex::new(String::new()));
    let stderr = child.stderr.take().unwrap();
    let sink = log.clone();
    thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            sink.lock().unwrap().push_str(&(line + "\n"));
        }
    });
    log
}

/// An HTTP response.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: HashMap<String, String>,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn parse(raw: &[u8], head_only: bool) -> Self {
        let split = raw
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .expect("a complete response head");
        let head = std::str::from_utf8(&raw[..split]).unwrap();
        let mut lines = head.split("\r\n");
        let status: u16 = lines
            .next()
            .unwrap()
            .split(' ')
            .nth(1)
            .unwrap()
            .parse()
            .unwrap();
        let headers: HashMap<String, String> = lines
            .map(|l| {
                let (k, v) = l.split_once(':').unwrap();
                (k.trim().to_ascii_lowercase(), v.trim().to_owned())
            })
            .collect();
        let mut body = raw[split + 4..].to_vec();
        if headers.get("transfer-encoding").map(String::as_str) == Some("chunked") {
            body = dechunk(&body);
        }
        if head_only {
            assert!(body.is_empty(), "HEAD answered with a body");
        }
        Self {
            status,
            headers,
            body,
        }
    }

    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .map(String::as_str)
            .unwrap_or_else(|| panic!("no {name} header in {:?}", self.headers))
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

pub fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let eol = data.windows(2).position(|w| w == b"\r\n").unwrap();
        let size =
            usize::from_str_radix(std::str::from_utf8(&data[..eol]).unwrap().trim(), 16).unwrap();
        data = &data[eol + 2..];
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&data[..size]);
        data = &data[size + 2..];
    }
}
