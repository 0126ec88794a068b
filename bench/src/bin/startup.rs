//! Time from process start to the first served request of `custdata-local`, on a fresh data
//! directory (creates the development tenant) and on an existing one (a restart). Baseline,
//! side by side: the same binary started with `--version` (process start and exit, no server).
//!
//! `cargo build --release -p custdata-local && cargo run --release -p custdata-bench --bin bench-startup`

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use clap::Parser;

#[derive(Parser)]
struct Args {
    /// The custdata-local binary.
    #[arg(long, default_value = "target/release/custdata-local")]
    binary: PathBuf,
    /// Starts per measure.
    #[arg(long, default_value_t = 10)]
    runs: usize,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Starts the server and returns the time until a request is answered.
fn time_to_first_answer(binary: &PathBuf, data_dir: &std::path::Path) -> Duration {
    let port = free_port();
    let started = Instant::now();
    let mut child = Command::new(binary)
        .args(["--port", &port.to_string(), "--data-dir"])
        .arg(data_dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("custdata-local starts");
    let deadline = started + Duration::from_secs(30);
    let elapsed = loop {
        let answered = std::net::TcpStream::connect(("127.0.0.1", port)).and_then(|mut stream| {
            use std::io::{Read, Write};
            stream.write_all(
                b"GET /no-such-route HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
            )?;
            let mut first = [0u8; 12];
            stream.read_exact(&mut first)?;
            Ok(first.starts_with(b"HTTP/1.1 404"))
        });
        if answered.unwrap_or(false) {
            break started.elapsed();
        }
        assert!(Instant::now() < deadline, "no answer within 30 s");
        std::thread::sleep(Duration::from_micros(200));
    };
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
    elapsed
}

fn summary(mut times: Vec<Duration>) -> String {
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    format!(
        "median {:.1} ms (min {:.1}, max {:.1})",
        ms(times[times.len() / 2]),
        ms(times[0]),
        ms(times[times.len() - 1])
    )
}

fn median(times: &[Duration]) -> f64 {
    let mut sorted = times.to_vec();
    sorted.sort();
    sorted[sorted.len() / 2].as_secs_f64()
}

fn main() {
    let args = Args::parse();
    let fresh: Vec<Duration> = (0..args.runs)
        .map(|_| {
            let dir = tempfile::tempdir().expect("dir");
            time_to_first_answer(&args.binary, dir.path())
        })
        .collect();
    let dir = tempfile::tempdir().expect("dir");
    time_to_first_answer(&args.binary, dir.path());
    let restart: Vec<Duration> = (0..args.runs)
        .map(|_| time_to_first_answer(&args.binary, dir.path()))
        .collect();
    let baseline: Vec<Duration> = (0..args.runs)
        .map(|_| {
            let started = Instant::now();
            let status = Command::new(&args.binary)
                .arg("--version")
                .stdout(Stdio::null())
                .status()
                .expect("runs");
            assert!(status.success());
            started.elapsed()
        })
        .collect();
    println!("| measure ({} runs) | time |", args.runs);
    println!("|---|---|");
    println!(
        "| first start, fresh data directory (creates the dev tenant) | {} |",
        summary(fresh.clone())
    );
    println!(
        "| restart on an existing data directory | {} |",
        summary(restart.clone())
    );
    println!(
        "| baseline: `custdata-local --version` (start and exit) | {} |",
        summary(baseline.clone())
    );
    println!(
        "| ratio restart / baseline | {:.1} |",
        median(&restart) / median(&baseline)
    );
}
