//! The `rcc-gateway` binary and its signals, end to end over TCP: SIGTERM ends every session
//! with a BYE and the process exits 0; SIGHUP reloads the authorization table without
//! dropping a session; a reload of a broken file changes nothing.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use rcc_protocol::csta::{self, Request};
use rcc_protocol::sip::{Limits, Message, Method, StreamFramer, StreamItem};

const WAIT: Duration = Duration::from_secs(10);

/// A gateway process and the lines it logs.
struct Process {
    child: Child,
    lines: mpsc::Receiver<String>,
    dir: PathBuf,
}

impl Process {
    /// Starts the binary on `toml`, written to a fresh folder.
    fn start(name: &str, toml: &str) -> Process {
        let dir = std::env::temp_dir().join(format!("rcc-gw-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let config = dir.join("gateway.toml");
        std::fs::write(&config, toml).expect("write");
        let mut child = Command::new(env!("CARGO_BIN_EXE_rcc-gateway"))
            .arg("--config")
            .arg(&config)
            .env_remove("RUST_LOG")
            .env("NO_COLOR", "1")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the gateway binary starts");
        let stdout: ChildStdout = child.stdout.take().expect("stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        Process { child, lines, dir }
    }

    /// The first log line containing `needle` from now on.
    fn logged(&self, needle: &str) -> String {
        let deadline = std::time::Instant::now() + WAIT;
        let mut seen = Vec::new();
        while let Some(left) = deadline.checked_duration_since(std::time::Instant::now()) {
            match self.lines.recv_timeout(left) {
                Ok(line) if line.contains(needle) => return line,
                Ok(line) => seen.push(line),
                Err(_) => break,
            }
        }
        panic!("the gateway did not log {needle:?}; it logged {seen:#?}");
    }

    /// The SIP TCP port from the ready line.
    fn sip_port(&self) -> u16 {
        let line = self.logged("rcc-gateway ready");
        let start = line.find("tcp=").expect("a TCP listener") + "tcp=".len();
        let addr = &line[start..];
        let end = addr.find(' ').unwrap_or(addr.len());
        addr[..end]
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .expect("a port")
    }

    fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill -{name}");
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A trusted Front End connection.
struct Peer {
    stream: TcpStream,
    framer: StreamFramer,
}

impl Peer {
    fn connect(port: u16) -> Peer {
        let stream = TcpStream::connect(("127.0.0.1", port)).expect("connects");
        stream.set_read_timeout(Some(WAIT)).expect("timeout");
        Peer {
            stream,
            framer: StreamFramer::new(Limits::default()),
        }
    }

    fn send(&mut self, m: &Message) {
        self.stream.write_all(&m.to_bytes()).expect("write");
    }

    /// The next message from the gateway (None when it closed the connection).
    fn next(&mut self) -> Option<Message> {
        let mut buf = [0u8; 16 * 1024];
        loop {
            match self.framer.next_item() {
                Ok(Some(StreamItem::Message(m))) => return Some(m),
                Ok(Some(_)) => continue,
                Ok(None) => {}
                Err(e) => panic!("the gateway sent a broken stream: {e}"),
            }
            match self.stream.read(&mut buf) {
                Ok(0) | Err(_) => return None,
                Ok(n) => self.framer.push(&buf[..n]),
            }
        }
    }
}

fn message(text: &str, body: &[u8]) -> Message {
    let mut bytes = text.trim_start().replace('\n', "\r\n").into_bytes();
    bytes.extend_from_slice(format!("Content-Length: {}\r\n\r\n", body.len()).as_bytes());
    bytes.extend_from_slice(body);
    Message::parse(&bytes).expect("test message parses")
}

/// `user`'s sign-in INVITE for extension `ext`; `attempt` tells apart the dialogs (and the
/// transactions) of several sign-ins.
fn invite(user: &str, ext: &str, attempt: u32) -> Message {
    let body = csta::encode(
        &csta::Message::Request(Request::RequestSystemStatus {
            line: Some(format!("tel:+1425555{ext};ext={ext}")),
        }),
        csta::ED3,
    );
    message(
        &format!(
            "INVITE sip:rccgateway@rcc.lab.example SIP/2.0
Via: SIP/2.0/TCP 127.0.0.1:5061;branch=z9hG4bK-{user}-inv{attempt}
Max-Forwards: 70
From: <sip:{user}@contoso.lab>;tag={user}1;epid=e1
To: <sip:rccgateway@rcc.lab.example>
Call-ID: call-{user}-{attempt}
CSeq: 1 INVITE
Contact: <sip:{user}@127.0.0.1:5061;transport=tcp>
Content-Type: application/csta+xml
"
        ),
        body.as_bytes(),
    )
}

fn in_dialog(ok: &Message, method: Method, cseq: u32, branch: &str) -> Message {
    let to = ok.header("To").expect("To");
    let from = ok.header("From").expect("From");
    let call_id = ok.call_id().expect("Call-ID");
    message(
        &format!(
            "{method} sip:rccgateway@127.0.0.1 SIP/2.0
Via: SIP/2.0/TCP 127.0.0.1:5061;branch={branch}
Max-Forwards: 70
From: {from}
To: {to}
Call-ID: {call_id}
CSeq: {cseq} {method}
"
        ),
        b"",
    )
}

/// Signs `user` in; the 200 OK (ACKed).
fn signed_in(peer: &mut Peer, user: &str, ext: &str) -> Message {
    peer.send(&invite(user, ext, 1));
    let ok = peer.next().expect("an answer to the INVITE");
    assert_eq!(ok.status(), Some(200), "{user}: {ok:?}");
    peer.send(&in_dialog(
        &ok,
        Method::Ack,
        1,
        &format!("z9hG4bK-{user}-ack"),
    ));
    ok
}

const CONFIG: &str = r#"
[sip]
listen_tcp = "127.0.0.1:0"
host = "127.0.0.1"
trusted_peer = [{ ip = "127.0.0.1" }]
pbx_down = "status"
[pbx]
address = "127.0.0.1:9"
reconnect_min_ms = 60000
reconnect_max_ms = 60000
[observe]
log_format = "text"
"#;

#[test]
fn sigterm_ends_every_session_with_a_bye_and_exits_0() {
    let mut gw = Process::start("term", CONFIG);
    let mut peer = Peer::connect(gw.sip_port());
    let ok = signed_in(&mut peer, "alice", "1001");
    // The session's start is one log line with its user, line and the peer it came from.
    let local = peer.stream.local_addr().expect("local address");
    let started = gw.logged("RCC session started");
    for field in [
        "user=sip:alice@".to_owned(),
        "line=tel:+".to_owned(),
        format!("peer={local}"),
    ] {
        assert!(started.contains(&field), "{field} not in {started:?}");
    }
    gw.signal("TERM");
    let bye = peer.next().expect("a BYE before the gateway stops");
    assert_eq!(bye.method(), Some(&Method::Bye));
    assert_eq!(bye.call_id().ok(), ok.call_id().ok());
    let deadline = std::time::Instant::now() + WAIT;
    let status = loop {
        if let Some(s) = gw.child.try_wait().expect("wait") {
            break s;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "still running after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "exit status {status:?}");
}

fn authz_config(csv: &Path) -> String {
    format!(
        "{CONFIG}\n[authorization]\nfile = {:?}\n",
        csv.display().to_string()
    )
}

#[test]
fn sighup_reloads_the_authorization_table_and_a_broken_file_changes_nothing() {
    let csv_path = std::env::temp_dir().join(format!("rcc-gw-users-{}.csv", std::process::id()));
    std::fs::write(
        &csv_path,
        "sip:alice@contoso.lab,tel:+14255551001;ext=1001\n",
    )
    .expect("csv");
    let gw = Process::start("hup", &authz_config(&csv_path));
    let port = gw.sip_port();
    let mut peer = Peer::connect(port);
    let alice = signed_in(&mut peer, "alice", "1001");
    peer.send(&invite("bob", "1002", 1));
    let refused = peer.next().expect("an answer");
    assert_eq!(refused.status(), Some(403), "bob is not in the table yet");
    // One log line: who, which line, why, from where.
    let local = peer.stream.local_addr().expect("local address");
    let logged = gw.logged("RCC session refused");
    for field in [
        "user=sip:bob@".to_owned(),
        "line=tel:+14255551002".to_owned(),
        "reason=\"authorization\"".to_owned(),
        format!("peer={local}"),
    ] {
        assert!(logged.contains(&field), "{field} not in {logged:?}");
    }

    // bob is added; alice's session survives the reload.
    std::fs::write(
        &csv_path,
        "sip:alice@contoso.lab,tel:+14255551001;ext=1001\nsip:bob@contoso.lab,tel:+14255551002;ext=1002\n",
    )
    .expect("csv");
    gw.signal("HUP");
    let line = gw.logged("configuration reloaded");
    assert!(line.contains("sessions_ended=0"), "{line}");
    peer.send(&in_dialog(&alice, Method::Options, 2, "z9hG4bK-alice-opt"));
    let still = peer.next().expect("an answer");
    assert_eq!(still.status(), Some(200), "alice's dialog is still known");
    let mut bob_peer = Peer::connect(port);
    bob_peer.send(&invite("bob", "1002", 2));
    let ok = bob_peer.next().expect("an answer");
    assert_eq!(ok.status(), Some(200), "bob may sign in now");

    // A broken file: refused, logged, and the running table stays.
    std::fs::write(&csv_path, "not a csv row\n").expect("csv");
    gw.signal("HUP");
    let line = gw.logged("reload refused");
    assert!(line.contains("expected `sip_uri,line`"), "{line}");
    bob_peer.send(&invite("bob", "1002", 3));
    assert_eq!(bob_peer.next().and_then(|m| m.status()), Some(200));
    let _ = std::fs::remove_file(&csv_path);
}

#[test]
fn sigusr1_drains_and_sigusr2_takes_new_sessions_again() {
    let gw = Process::start("drain", CONFIG);
    let port = gw.sip_port();
    let mut peer = Peer::connect(port);
    let alice = signed_in(&mut peer, "alice", "1001");
    gw.signal("USR1");
    gw.logged("drain mode set");
    peer.send(&invite("bob", "1002", 1));
    let refused = peer.next().expect("an answer");
    assert_eq!(refused.status(), Some(503));
    assert_eq!(refused.reason(), Some("Service Unavailable (draining)"));
    peer.send(&in_dialog(&alice, Method::Options, 2, "z9hG4bK-alice-opt"));
    assert_eq!(
        peer.next().and_then(|m| m.status()),
        Some(200),
        "alice's session is still served"
    );
    gw.signal("USR2");
    gw.logged("drain mode set");
    peer.send(&invite("bob", "1002", 2));
    assert_eq!(peer.next().and_then(|m| m.status()), Some(200));
}
