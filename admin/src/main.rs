//! `custdata-admin`: how an operator bootstraps tenants and credentials, on the embedded
//! store of a data directory or on a deployed stack's DynamoDB table and S3 bucket.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use clap::{Parser, Subcommand};
use custdata::admin::{ADMIN_ROUTE, AdminCommand, execute};
use custdata::app::{App, Settings};
use custdata::clock::{SharedClock, SystemClock};
use custdata::keys::secrets::{HASH_KEY_SECRET_ENV, SIGNING_KEYS_SECRET_ENV};
use custdata::keys::{Keyring, SigningKeys};
use custdata::storage::CursorSigner;
use custdata::storage::aws::AwsStores;
use custdata::template::Template;
use custdata_local::{ADMIN_TOKEN_FILE, DEFAULT_DATA_DIR, SERVER_FILE};
use serde_json::Value;

#[derive(Parser)]
#[command(
    version,
    about = "Create and list tenants, issue and revoke credentials, bootstrap an emulator."
)]
struct Args {
    /// Data directory of the embedded store (the local server's).
    #[arg(long, env = "CUSTDATA_DATA_DIR", default_value = DEFAULT_DATA_DIR, global = true)]
    data_dir: PathBuf,
    /// Work on DynamoDB and S3 (credentials and region from the usual AWS environment) instead.
    #[arg(long, global = true)]
    aws: bool,
    /// DynamoDB table (the stack's TableName output).
    #[arg(long, env = "CUSTDATA_TABLE", global = true)]
    table: Option<String>,
    /// S3 bucket (the stack's BucketName output).
    #[arg(long, env = "CUSTDATA_BUCKET", global = true)]
    bucket: Option<String>,
    /// Base URL written into new tenants' credentials (the stack's ApiUrl output).
    #[arg(long, env = "CUSTDATA_BASE_URL", global = true)]
    base_url: Option<String>,
    /// With --aws: the Secrets Manager secret of the identifier-hash key (the stack's
    /// HashKeySecretArn output). Required: without it no identifier can be looked up.
    #[arg(long, env = HASH_KEY_SECRET_ENV, global = true)]
    hash_key_secret: Option<String>,
    /// With --aws: the secret of the signing keys (the stack's SigningKeysSecretArn output).
    /// Needed by `signing-key rotate`; other commands sign their own cursors in memory.
    #[arg(long, env = SIGNING_KEYS_SECRET_ENV, global = true)]
    signing_keys_secret: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Tenants.
    Tenant {
        #[command(subcommand)]
        command: TenantCommand,
    },
    /// Credentials of a tenant.
    Credential {
        #[command(subcommand)]
        command: CredentialCommand,
    },
    /// MXO pull structures of a tenant.
    Structure {
        #[command(subcommand)]
        command: StructureCommand,
    },
    /// Suppressions left by erasures.
    Suppression {
        #[command(subcommand)]
        command: SuppressionCommand,
    },
    /// Monetate API users and their RSA public keys.
    Monetate {
        #[command(subcommand)]
        command: MonetateCommand,
    },
    /// Optimove settings of a tenant.
    Optimove {
        #[command(subcommand)]
        command: OptimoveCommand,
    },
    /// Erasures whose activity history is removed in the background.
    Erasure {
        #[command(subcommand)]
        command: ErasureCommand,
    },
    /// The keys that sign cursors and upload URLs (the identifier-hash key never rotates).
    SigningKey {
        #[command(subcommand)]
        command: SigningKeyCommand,
    },
    /// DynamoDB and S3 themselves.
    Aws {
        #[command(subcommand)]
        command: AwsCommand,
    },
}

#[derive(Subcommand)]
enum SigningKeyCommand {
    /// Signs with a new key from now on; what the current key signed (cursors, upload URLs)
    /// is still accepted for the grace period, then refused. In AWS this puts a new version
    /// of the signing keys' secret, which functions read when they next start
    /// (docs/reliability.md, "Rotating the signing key").
    Rotate {
        /// How long the current key stays accepted, in seconds (default 86400: 24 h).
        #[arg(long)]
        grace_seconds: Option<i64>,
    },
}

#[derive(Subcommand)]
enum StructureCommand {
    /// Saves a structure from a JSON file (docs/customers.md describes the format).
    Put {
        tenant: String,
        name: String,
        file: PathBuf,
    },
    /// Lists a tenant's structures.
    List { tenant: String },
    /// Deletes a structure.
    Delete { tenant: String, name: String },
}

#[derive(Subcommand)]
enum SuppressionCommand {
    /// Lets an erased customer's tid or identifier be ingested again.
    Lift {
        tenant: String,
        #[arg(long)]
        tid: Option<String>,
        /// The identifier's apiName (with --value).
        #[arg(long)]
        api_name: Option<String>,
        #[arg(long)]
        value: Option<String>,
    },
}

#[derive(Subcommand)]
enum MonetateCommand {
    /// Creates an API user (a generated api-… name unless --username), with a first key
    /// from --public-key (a PEM file) or, with --generate-key, a new key pair whose private
    /// half is printed once.
    CreateUser {
        tenant: String,
        #[arg(long)]
        username: Option<String>,
        #[arg(long, conflicts_with = "generate_key")]
        public_key: Option<PathBuf>,
        #[arg(long)]
        generate_key: bool,
    },
    /// Registers a public key (PEM file: RSA 2048, 3072 or 4096 bits) for an API user.
    AddKey {
        tenant: String,
        username: String,
        public_key: PathBuf,
    },
    /// Lists API users and their keys.
    ListUsers { tenant: String },
    /// Deactivates a key: its assertions and tokens are refused (403) from now on.
    DeactivateKey {
        tenant: String,
        username: String,
        key_id: String,
    },
}

#[derive(Subcommand)]
enum OptimoveCommand {
    /// Sets the rate limit: CALLS per PER_SECONDS per client (default 50 per 10; the seed's
    /// is 2000 per 3600).
    RateLimit {
        tenant: String,
        calls: i64,
        per_seconds: i64,
    },
}

#[derive(Subcommand)]
enum ErasureCommand {
    /// Whether an erasure has finished removing the customer's activity.
    Status { tenant: String, tid: String },
}

#[derive(Subcommand)]
enum TenantCommand {
    /// Creates a tenant; prints its credentials as JSON (the shape of dev-credentials.json).
    Create { name: String },
    /// Lists tenants.
    List,
}

#[derive(Subcommand)]
enum CredentialCommand {
    /// Issues a credential: mxo-client, monetate-user, aixon-api-key, optimove-user, optimove-api-key.
    Issue { tenant: String, kind: String },
    /// Lists a tenant's credentials (never their secrets).
    List { tenant: String },
    /// Revokes a credential by kind and id.
    Revoke {
        tenant: String,
        kind: String,
        id: String,
    },
}

#[derive(Subcommand)]
enum AwsCommand {
    /// Creates the table and bucket as template.yaml declares them (for emulators).
    Bootstrap {
        /// Endpoint of the emulator, e.g. http://127.0.0.1:5000 (else AWS_ENDPOINT_URL).
        #[arg(long)]
        endpoint_url: Option<String>,
    },
}

fn admin_command(command: Command) -> Result<AdminCommand, String> {
    Ok(match command {
        Command::Tenant {
            command: TenantCommand::Create { name },
        } => AdminCommand::CreateTenant { name },
        Command::Tenant {
            command: TenantCommand::List,
        } => AdminCommand::ListTenants,
        Command::Credential {
            command: CredentialCommand::Issue { tenant, kind },
        } => AdminCommand::IssueCredential { tenant, kind },
        Command::Credential {
            command: CredentialCommand::List { tenant },
        } => AdminCommand::ListCredentials { tenant },
        Command::Credential {
            command: CredentialCommand::Revoke { tenant, kind, id },
        } => AdminCommand::RevokeCredential { tenant, kind, id },
        Command::Structure {
            command: StructureCommand::Put { tenant, name, file },
        } => {
            let text = std::fs::read_to_string(&file)
                .map_err(|e| format!("cannot read {}: {e}", file.display()))?;
            let definition = serde_json::from_str(&text)
                .map_err(|e| format!("{} is not JSON: {e}", file.display()))?;
            AdminCommand::PutStructure {
                tenant,
                name,
                definition,
            }
        }
        Command::Structure {
            command: StructureCommand::List { tenant },
        } => AdminCommand::ListStructures { tenant },
        Command::Structure {
            command: StructureCommand::Delete { tenant, name },
        } => AdminCommand::DeleteStructure { tenant, name },
        Command::Suppression {
            command:
                SuppressionCommand::Lift {
                    tenant,
                    tid,
                    api_name,
                    value,
                },
        } => AdminCommand::LiftSuppression {
            tenant,
            tid,
            api_name,
            value,
        },
        Command::Erasure {
            command: ErasureCommand::Status { tenant, tid },
        } => AdminCommand::ErasureStatus { tenant, tid },
        Command::Monetate { command } => monetate_command(command)?,
        Command::Optimove {
            command:
                OptimoveCommand::RateLimit {
                    tenant,
                    calls,
                    per_seconds,
                },
        } => AdminCommand::OptimoveRateLimit {
            tenant,
            calls,
            per_seconds,
        },
        Command::SigningKey {
            command: SigningKeyCommand::Rotate { grace_seconds },
        } => AdminCommand::RotateSigningKey { grace_seconds },
        Command::Aws { .. } => return Err("not an admin command".into()),
    })
}

fn read_pem(path: &Path) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}

fn monetate_command(command: MonetateCommand) -> Result<AdminCommand, String> {
    Ok(match command {
        MonetateCommand::CreateUser {
            tenant,
            username,
            public_key,
            generate_key,
        } => AdminCommand::MonetateCreateUser {
            tenant,
            username,
            public_key_pem: public_key.as_deref().map(read_pem).transpose()?,
            generate_key,
        },
        MonetateCommand::AddKey {
            tenant,
            username,
            public_key,
        } => AdminCommand::MonetateAddKey {
            tenant,
            username,
            public_key_pem: read_pem(&public_key)?,
        },
        MonetateCommand::ListUsers { tenant } => AdminCommand::MonetateListUsers { tenant },
        MonetateCommand::DeactivateKey {
            tenant,
            username,
            key_id,
        } => AdminCommand::MonetateDeactivateKey {
            tenant,
            username,
            key_id,
        },
    })
}

/// The SDK configuration (the usual AWS environment, or the given endpoint) and whether S3
/// needs path-style addressing (emulators).
async fn aws_config(endpoint_url: Option<&str>) -> (aws_config::SdkConfig, bool) {
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
    if let Some(url) = endpoint_url {
        loader = loader.endpoint_url(url);
    }
    let path_style = endpoint_url.is_some() || std::env::var_os("AWS_ENDPOINT_URL").is_some();
    (loader.load().await, path_style)
}

fn aws_stores(
    args: &Args,
    (config, path_style): &(aws_config::SdkConfig, bool),
    signing: Keyring,
) -> AwsStores {
    let table = args.table.clone().unwrap_or_else(|| "custdata".into());
    let bucket = args.bucket.clone().unwrap_or_else(|| "custdata".into());
    let clock: SharedClock = Arc::new(SystemClock);
    AwsStores::from_config(
        config,
        *path_style,
        &table,
        &bucket,
        clock,
        CursorSigner::new(signing),
    )
}

/// The app on a deployed stack's table and bucket, with its keys from Secrets Manager.
/// Refuses without the hash key: identifiers hashed with any other key (an empty one, say)
/// would miss every lookup and suppression without a word.
async fn aws_app(args: &Args, rotating: bool) -> Result<App, String> {
    let hash_secret = args.hash_key_secret.as_deref().ok_or_else(|| {
        format!(
            "--aws needs the identifier-hash key: set {HASH_KEY_SECRET_ENV} (or \
             --hash-key-secret) to the stack's HashKeySecretArn output"
        )
    })?;
    let config = aws_config(None).await;
    let hash_key = custdata::keys::secrets::read_hash_key(&config.0, hash_secret).await?;
    let signing = match (&args.signing_keys_secret, rotating) {
        (Some(secret), _) => custdata::keys::secrets::read_signing_keys(&config.0, secret).await?,
        (None, true) => {
            return Err(format!(
                "signing-key rotate --aws needs the signing keys' secret: set \
                 {SIGNING_KEYS_SECRET_ENV} (or --signing-keys-secret) to the stack's \
                 SigningKeysSecretArn output"
            ));
        }
        // Cursors only live within this process here.
        (None, false) => Keyring::in_memory(SigningKeys::generate()),
    };
    let stores = aws_stores(args, &config, signing.clone());
    Ok(App {
        table: Arc::new(stores.table),
        blobs: Arc::new(stores.blobs),
        clock: Arc::new(SystemClock),
        settings: Settings::default(),
        hash_key,
        signing,
    })
}

/// Sends the command to the local server that holds the data directory, if one is running.
async fn via_running_server(
    data_dir: &Path,
    command: &AdminCommand,
) -> Option<Result<Value, String>> {
    let server: Value =
        serde_json::from_slice(&std::fs::read(data_dir.join(SERVER_FILE)).ok()?).ok()?;
    let base_url = server.get("base_url")?.as_str()?.to_string();
    let token = std::fs::read_to_string(data_dir.join(ADMIN_TOKEN_FILE)).ok()?;
    let response = reqwest::Client::new()
        .post(format!("{base_url}{ADMIN_ROUTE}"))
        .bearer_auth(token.trim())
        .json(command)
        .send()
        .await
        .ok()?; // not answering: a stale server.json; open the store directly instead
    let status = response.status();
    let body: Value = match response.json().await {
        Ok(body) => body,
        Err(error) => {
            return Some(Err(format!(
                "the local server at {base_url} answered {status} with no JSON: {error}"
            )));
        }
    };
    Some(if status.is_success() {
        Ok(body)
    } else {
        Err(body.to_string())
    })
}

async fn run(args: Args) -> Result<Value, String> {
    if let Command::Aws {
        command: AwsCommand::Bootstrap { endpoint_url },
    } = &args.command
    {
        let config = aws_config(endpoint_url.as_deref()).await;
        let stores = aws_stores(&args, &config, Keyring::in_memory(SigningKeys::generate()));
        let template = Template::bundled()?;
        let mut done = stores.bootstrap(&template.table).await?;
        let (hash_arn, signing_arn, secrets) =
            custdata::keys::secrets::bootstrap(&config.0, stores.table.table_name()).await?;
        done.extend(secrets);
        return Ok(serde_json::json!({
            "done": done,
            HASH_KEY_SECRET_ENV: hash_arn,
            SIGNING_KEYS_SECRET_ENV: signing_arn,
        }));
    }
    let base_url = args.base_url.clone().unwrap_or_default();
    let app = if args.aws {
        let rotating = matches!(args.command, Command::SigningKey { .. });
        Some(aws_app(&args, rotating).await?)
    } else {
        None
    };
    let data_dir = args.data_dir.clone();
    let command = admin_command(args.command)?;
    let app = match app {
        Some(app) => app,
        None => {
            // redb lets one process hold the file: while custdata-local runs, ask it instead.
            if let Some(answer) = via_running_server(&data_dir, &command).await {
                return answer;
            }
            let base = if base_url.is_empty() {
                format!("http://127.0.0.1:{}", custdata_local::DEFAULT_PORT)
            } else {
                base_url.clone()
            };
            App::embedded(&data_dir, Arc::new(SystemClock), &base)?.0
        }
    };
    execute(&app, &base_url, command)
        .await
        .map_err(|error| error.to_string())
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    custdata::lambda::init_readable_logs();
    match run(Args::parse()).await {
        Ok(value) => {
            println!(
                "{}",
                serde_json::to_string_pretty(&value).unwrap_or_default()
            );
            std::process::ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("custdata-admin: {error}");
            std::process::ExitCode::FAILURE
        }
    }
}
