//! `showgate`: serve (the default), migrate, mint a token, import a catalog.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use showgate::app::{self, Application};
use showgate::config::{LogFormat, Settings};
use tracing_subscriber::EnvFilter;

/// A sale is a storm of small, short-lived allocations on every core
/// (request and answer bodies, seat lists); glibc's allocator spent a third
/// of the server's time in `malloc`/`free` under the hold benchmark.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "showgate", version, about = "Flash-sale gateway for movie-ticket booking")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    settings: Settings,
}

#[derive(Subcommand)]
enum Command {
    /// Run the service (the default).
    Serve,
    /// Apply the Postgres migrations and exit.
    Migrate,
    /// Print a user token signed with the configured JWT_SECRET.
    Token {
        #[arg(long)]
        user: String,
        #[arg(long)]
        admin: bool,
        /// Lifetime in seconds.
        #[arg(long, default_value_t = 3600)]
        ttl: i64,
    },
    /// Validate a catalog JSON file and store it in Postgres.
    ImportCatalog { file: PathBuf },
}

fn init_logs(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logs(cli.settings.log_format);
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            tracing::error!("{message}");
            eprintln!("showgate: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<(), String> {
    let settings = cli.settings;
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => {
            let app = Application::build(settings).await.map_err(|e| e.to_string())?;
            tracing::info!(addr = %app.local_addr(), "showgate listening");
            app.run_until(shutdown_signal())
                .await
                .map_err(|e| format!("server: {e}"))
        }
        Command::Migrate => {
            if settings.database_url.is_none() {
                return Err("migrate needs DATABASE_URL".into());
            }
            app::engines::stores(&settings).await.map_err(|e| e.to_string())?;
            println!("migrations applied");
            Ok(())
        }
        Command::Token { user, admin, ttl } => {
            settings.validate()?;
            if !showgate::auth::valid_user_id(&user) || ttl <= 0 {
                return Err("--user must be 1 to 128 characters and --ttl positive".into());
            }
            let token = showgate::auth::Tokens::new(settings.jwt_secret())
                .issue(&user, admin, ttl)
                .map_err(|e| e.to_string())?;
            println!("{token}");
            Ok(())
        }
        Command::ImportCatalog { file } => {
            if settings.database_url.is_none() {
                return Err("import-catalog needs DATABASE_URL (without it, serve the file with CATALOG)".into());
            }
            let data = app::read_catalog_file(&file).map_err(|e| e.to_string())?;
            let store = app::catalog_store(&settings).await.map_err(|e| e.to_string())?;
            store.save(&data).await.map_err(|e| e.to_string())?;
            println!(
                "imported {} movies, {} theatres, {} shows",
                data.movies.len(),
                data.theatres.len(),
                data.shows.len()
            );
            Ok(())
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
    tracing::info!("shutting down");
}
