//! `custdata-local`: serve every API on 127.0.0.1 on the embedded store (or, with `--aws`,
//! on DynamoDB and S3).

use std::path::PathBuf;

/// mimalloc instead of glibc's allocator: glibc gives each busy thread an arena of its own
/// and keeps what they freed, so an import (writer thread, blocking readers, runtime
/// workers) left the server at 3-4 times the resident memory it needs.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::Parser;
use custdata_local::{
    Backend, Config, DEFAULT_DATA_DIR, DEFAULT_PORT, DEV_CREDENTIALS_FILE, start,
};

/// Serves every route of template.yaml on 127.0.0.1, on an embedded store in a data directory.
#[derive(Parser)]
#[command(version)]
struct Args {
    /// Port on 127.0.0.1 (0 picks a free one).
    #[arg(long, env = "CUSTDATA_PORT", default_value_t = DEFAULT_PORT)]
    port: u16,
    /// Directory holding the database, blobs and development credentials.
    #[arg(long, env = "CUSTDATA_DATA_DIR", default_value = DEFAULT_DATA_DIR)]
    data_dir: PathBuf,
    /// Serve on DynamoDB and S3 instead of the embedded store (AWS_ENDPOINT_URL for an emulator).
    #[arg(long)]
    aws: bool,
    /// DynamoDB table, with --aws.
    #[arg(long, env = "CUSTDATA_TABLE", default_value = "custdata")]
    table: String,
    /// S3 bucket, with --aws.
    #[arg(long, env = "CUSTDATA_BUCKET", default_value = "custdata")]
    bucket: String,
    /// Apply Lambda's limits as a deployment would: request bodies up to 5 MB inline, answers
    /// up to Lambda's 6 MB response, reads cut off after 29 s (each answered with an error
    /// naming a smaller page).
    #[arg(long)]
    lambda_limits: bool,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    custdata::lambda::init_readable_logs();
    let args = Args::parse();
    let backend = if args.aws {
        let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
        let path_style = std::env::var_os("AWS_ENDPOINT_URL").is_some();
        Backend::Aws {
            sdk: Box::new(sdk),
            path_style,
            table: args.table,
            bucket: args.bucket,
        }
    } else {
        Backend::Embedded
    };
    let config = Config {
        port: args.port,
        data_dir: args.data_dir,
        clock: std::sync::Arc::new(custdata::clock::SystemClock),
        backend,
        run_scheduled_tasks: true,
        lambda_limits: args.lambda_limits,
    };
    let server = match start(config).await {
        Ok(server) => server,
        Err(error) => {
            eprintln!("custdata-local: {error}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let credentials_path = server.data_dir.join(DEV_CREDENTIALS_FILE);
    println!(
        "custdata-local serving every route of template.yaml at {}",
        server.base_url
    );
    println!("data directory: {}", server.data_dir.display());
    println!("development credentials ({}):", credentials_path.display());
    println!(
        "{}",
        serde_json::to_string_pretty(&server.credentials).unwrap_or_default()
    );
    println!("Ctrl-C (or SIGTERM) stops the server; data stays in the data directory.");
    stop_requested().await;
    println!("stopping: finishing requests in flight");
    server.shutdown().await;
    std::process::ExitCode::SUCCESS
}

/// Ctrl-C (SIGINT) or SIGTERM, whichever comes first.
async fn stop_requested() {
    let interrupt = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = interrupt => {}
        _ = terminate => {}
    }
}
