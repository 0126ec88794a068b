//! Kill-and-resume at full size: a 1,000,000-row AIXON import and a 1,000,000-record MXO
//! staging load into the release `custdata-local`, each killed with SIGKILL part-way and
//! resumed after a restart, then checked row by row against the input (which is what a clean
//! run stores). Baseline, side by side: the same MXO load without a kill (`--clean-mxo`), and
//! optionally the same AIXON import without one (`--clean-aixon`, ~20 minutes more).
//!
//! `cargo build --release -p custdata-local && cargo run --release -p custdata-bench --bin bench-kill-resume`

use std::path::PathBuf;

use clap::Parser;
use custdata_tests::kill_resume::{self, ResumeReport};

#[derive(Parser)]
struct Args {
    #[arg(long, default_value = "target/release/custdata-local")]
    server: PathBuf,
    /// AIXON rows (0 skips the AIXON run).
    #[arg(long, default_value_t = 1_000_000)]
    aixon_rows: usize,
    /// MXO records (0 skips the MXO run).
    #[arg(long, default_value_t = 1_000_000)]
    mxo_rows: usize,
    /// MXO records per POST.
    #[arg(long, default_value_t = 5_000)]
    batch: usize,
    /// Fraction of the load done when the kill comes.
    #[arg(long, default_value_t = 0.4)]
    kill_at: f64,
    /// Also run the MXO load without a kill (`--clean-mxo false` skips it).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    clean_mxo: bool,
    /// Also run the AIXON import without a kill (`--clean-aixon true`).
    #[arg(long, default_value_t = false, action = clap::ArgAction::Set)]
    clean_aixon: bool,
}

fn show(report: &ResumeReport, clean: Option<&ResumeReport>) {
    println!(
        "{}: {} rows, killed at {} done; intact {}, lost {}, duplicated {}, wrong {}; {:.1} s{}",
        report.surface,
        report.rows,
        report.done_at_kill,
        report.intact,
        report.lost,
        report.duplicated,
        report.wrong,
        report.seconds,
        clean
            .map(|clean| format!(
                " (clean run {:.1} s, ratio {:.2})",
                clean.seconds,
                report.seconds / clean.seconds
            ))
            .unwrap_or_default()
    );
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    if args.mxo_rows > 0 {
        let killed =
            kill_resume::mxo_staging(&args.server, args.mxo_rows, args.batch, args.kill_at).await;
        let clean = if args.clean_mxo {
            Some(kill_resume::mxo_staging(&args.server, args.mxo_rows, args.batch, 1.0).await)
        } else {
            None
        };
        show(&killed, clean.as_ref());
    }
    if args.aixon_rows > 0 {
        let killed = kill_resume::aixon_import(&args.server, args.aixon_rows, args.kill_at).await;
        let clean = if args.clean_aixon {
            Some(kill_resume::aixon_import(&args.server, args.aixon_rows, 1.0).await)
        } else {
            None
        };
        show(&killed, clean.as_ref());
    }
}
