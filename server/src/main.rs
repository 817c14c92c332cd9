//! The `simrelay` binary: `simrelay serve` runs the relay, `simrelay demo` a relay with
//! simulated phones, `simrelay sim-phones` simulated phones against any relay, and `simrelay
//! keys` / `simrelay accounts` manage API keys and accounts; `simrelay send|status|wait-sms`
//! use a running relay's API from a shell; `simrelay migrate` copies a relay's SQLite
//! database into PostgreSQL. `demo` and `sim-phones` need the `sims` feature (on by default).

mod cli;
mod cli_keys;
mod cli_users;

use clap::{Parser, Subcommand};
use simrelay_server::Server;
use simrelay_server::config::ServeArgs;

#[derive(Debug, Parser)]
#[command(
    name = "simrelay",
    version,
    about = "Android phones as SMS modems: the relay"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Log lines on stderr: `text` (colours only on a terminal) or `json` (one object a line).
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text, env = "SIMRELAY_LOG_FORMAT")]
    log_format: LogFormat,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the relay (HTTP API and the phones' WebSocket on one port).
    Serve(ServeArgs),
    /// Run a relay with simulated phones (the real phone core with a simulated radio).
    #[cfg(feature = "sims")]
    Demo(simrelay_server::sims::demo::DemoArgs),
    /// Run N simulated phones (durable, paired on first run) against any relay.
    #[cfg(feature = "sims")]
    SimPhones(simrelay_server::sims::sim_phones::SimPhonesArgs),
    /// API keys: create, list, revoke (on a data directory or a running relay).
    #[command(subcommand)]
    Keys(cli_keys::KeysCommand),
    /// Accounts: create (with a first key), list (on a data directory or a running relay).
    #[command(subcommand)]
    Accounts(cli_keys::AccountsCommand),
    /// Users of the SMS Gateway for Android compatible API: create, list, delete.
    #[command(subcommand)]
    Users(cli_users::UsersCommand),
    /// Copy a relay's SQLite database into an empty PostgreSQL database (then serve it with
    /// --database).
    Migrate(MigrateArgs),
    #[command(flatten)]
    Api(cli::ApiCommand),
}

#[derive(Debug, clap::Args)]
struct MigrateArgs {
    /// The relay's SQLite database: sqlite:PATH (the file, or the data directory holding
    /// relay.sqlite).
    #[arg(long)]
    from: String,
    /// The PostgreSQL database: postgres://user@host:port/db (created or migrated to the
    /// relay's schema; it must hold no rows).
    #[arg(long, env = "SIMRELAY_DATABASE_URL", hide_env_values = true)]
    to: String,
}

/// `simrelay migrate`: copies every table, one transaction, row counts checked per table.
async fn migrate(args: MigrateArgs) -> Result<serde_json::Value, Box<dyn std::error::Error>> {
    use simrelay_server::store::postgres::{copy, schema};
    let mut path = copy::sqlite_path(&args.from).to_path_buf();
    if path.is_dir() {
        path = path.join("relay.sqlite");
    }
    let to = args.to.clone();
    let copied = tokio::task::spawn_blocking(move || copy::sqlite_to_postgres(&path, &to))
        .await
        .map_err(|_| "the copy task failed")??;
    let total: u64 = copied.iter().map(|(_, n)| n).sum();
    let tables: serde_json::Map<String, serde_json::Value> = copied
        .into_iter()
        .map(|(t, n)| (t, serde_json::Value::from(n)))
        .collect();
    Ok(serde_json::json!({
        "copied": tables,
        "rows": total,
        "schema_version": schema::VERSION,
    }))
}

/// Logs to stderr at `SIMRELAY_LOG` (default `info`): plain text (ANSI colours only when
/// stderr is a terminal, so a log file or a pipe gets no escape codes) or JSON lines.
fn init_tracing(format: LogFormat) {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_from_env("SIMRELAY_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.with_ansi(std::io::stderr().is_terminal()).init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// Resolves on SIGINT or SIGTERM. The handlers are installed when this is called, not when
/// the future is first polled: a signal that arrives right after the `listening on` line (a
/// supervisor, a test) must stop the relay cleanly rather than kill it.
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut int = signal(SignalKind::interrupt()).expect("installing a SIGINT handler works");
        let mut term = signal(SignalKind::terminate()).expect("installing a SIGTERM handler works");
        async move {
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
            }
        }
    }
    #[cfg(not(unix))]
    async {
        let _ = tokio::signal::ctrl_c().await;
    }
}

async fn serve(args: ServeArgs) -> Result<(), Box<dyn std::error::Error>> {
    let config = args.resolve()?;
    let server = Server::start(config).await?;
    let stop = shutdown_signal();
    if let Some(fp) = &server.state.tls_fingerprint {
        println!("tls fingerprint sha256 {fp}");
    }
    println!("listening on {}", server.url);
    if let Some(addr) = server.metrics_addr {
        println!("metrics on http://{addr}/metrics");
    }
    match server.state.take_generated_admin_key() {
        Some(key) => {
            println!("admin key (shown once, stored hashed; it creates accounts and keys): {key}")
        }
        None => println!(
            "admin key: in the store; new keys: simrelay keys create --data DIR --name NAME (or POST /v1/keys)"
        ),
    }
    println!("dashboard on {}/", server.url);
    stop.await;
    tracing::info!("shutting down");
    server.stop().await?;
    Ok(())
}

fn print_json(v: serde_json::Value) {
    println!(
        "{}",
        serde_json::to_string_pretty(&v).expect("a JSON value serializes")
    );
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let wait_sms = matches!(cli.command, Command::Api(cli::ApiCommand::WaitSms { .. }));
    init_tracing(cli.log_format);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime can be built");
    let result = runtime.block_on(async {
        match cli.command {
            Command::Serve(args) => serve(args).await,
            #[cfg(feature = "sims")]
            Command::Demo(args) => simrelay_server::sims::demo::run(args, shutdown_signal())
                .await
                .map_err(Into::into),
            #[cfg(feature = "sims")]
            Command::SimPhones(args) => {
                simrelay_server::sims::sim_phones::run(args, shutdown_signal())
                    .await
                    .map_err(Into::into)
            }
            Command::Keys(cmd) => cli_keys::keys(cmd).await.map(print_json),
            Command::Accounts(cmd) => cli_keys::accounts(cmd).await.map(print_json),
            Command::Users(cmd) => cli_users::users(cmd).await.map(print_json),
            Command::Migrate(args) => migrate(args).await.map(print_json),
            Command::Api(cmd) => cli::run(cmd).await.map(print_json),
        }
    });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        // `wait-sms` without an SMS: 1, as a shell test expects; every other failure is 2 there.
        Err(e) if e.downcast_ref::<cli::WaitTimedOut>().is_some() => {
            eprintln!("simrelay: {e}");
            std::process::ExitCode::from(1)
        }
        Err(e) => {
            eprintln!("simrelay: {e}");
            std::process::ExitCode::from(if wait_sms { 2 } else { 1 })
        }
    }
}
