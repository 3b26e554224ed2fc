//! `eddy migrate`: pipelines kept as versioned SQL files and applied in order, as ksqlDB's
//! `ksql-migrations` tool does it, with the same commands, config keys, file names and
//! metadata (so a project made for one works with the other).
//!
//! A project is a config file (`ksql-migrations.properties`) beside a `migrations/`
//! directory of `V<version>__<description>.sql` files. What was applied is recorded on the
//! server itself ([`metadata`]), with each file's checksum, so `validate` finds a file
//! edited after it was applied and `apply` refuses to go on from such a state.

mod apply;
mod config;
mod files;
mod metadata;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use crate::client::Client;
use crate::error::ShellError;
pub use config::MigrationConfig;
use files::MigrationFile;
use metadata::{CURRENT, Metadata, MigrationRecord, MigrationState, NONE};

/// Arguments of `eddy migrate`.
#[derive(Debug, clap::Args)]
pub struct MigrateArgs {
    /// The project's config file (`ksql-migrations.properties`); every command but
    /// `new-project` needs it.
    #[arg(short = 'c', long = "config-file", value_name = "FILE", global = true)]
    pub config_file: Option<PathBuf>,
    /// What to do.
    #[command(subcommand)]
    pub command: MigrateCommand,
}

/// The commands of `eddy migrate`.
#[derive(Debug, clap::Subcommand)]
pub enum MigrateCommand {
    /// Creates a project: the directory, its `migrations/` and a config file for the server.
    NewProject {
        /// The project's directory.
        project_path: PathBuf,
        /// The server's URL, e.g. `http://localhost:8088`.
        server_url: String,
    },
    /// Creates the migrations metadata stream and table on the server.
    InitializeMetadata,
    /// Creates an empty migration file with the next (or the given) version.
    Create {
        /// The new file's version instead of the next one.
        #[arg(short = 'v', long)]
        version: Option<u32>,
        /// What the migration does; spaces become `_` in the file name.
        description: String,
    },
    /// Applies migration files to the server, in version order.
    Apply(ApplyArgs),
    /// Shows the current version and the state of every migration.
    Info,
    /// Checks that the applied migrations' files are unchanged (by their MD5 checksums).
    Validate,
    /// Drops the migrations metadata stream and table and their topics (not what the
    /// migrations created).
    DestroyMetadata,
}

/// Arguments of `eddy migrate apply`: exactly one of `--all`, `--next`, `--until`,
/// `--version`.
#[derive(Debug, clap::Args)]
#[command(group(
    clap::ArgGroup::new("which")
        .required(true)
        .args(["all", "next", "until", "version"])
))]
pub struct ApplyArgs {
    /// Every file after the latest applied version.
    #[arg(short = 'a', long)]
    pub all: bool,
    /// The next file after the latest applied version.
    #[arg(short = 'n', long)]
    pub next: bool,
    /// Every file after the latest applied version up to this version.
    #[arg(short = 'u', long, value_name = "VERSION")]
    pub until: Option<u32>,
    /// Only this version, which must be after the latest applied one.
    #[arg(short = 'v', long, value_name = "VERSION")]
    pub version: Option<u32>,
    /// A variable for `${name}` in the files, as `name=value` (repeatable).
    #[arg(short = 'd', long = "define", value_name = "NAME=VALUE")]
    pub define: Vec<String>,
    /// A file of request headers (`Name: value` or `Name=value`, one per line) sent with
    /// every request.
    #[arg(long, value_name = "FILE")]
    pub headers: Option<PathBuf>,
    /// Shows what would be applied, and applies nothing.
    #[arg(long)]
    pub dry_run: bool,
}

/// Runs a migrations command, printing what it does.
///
/// # Errors
///
/// [`ShellError::Usage`] for a bad project, config, file or state (say which and why); the
/// server's error for a statement that fails.
pub fn run(args: &MigrateArgs) -> Result<(), ShellError> {
    let started = Instant::now();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let result = match &args.command {
        MigrateCommand::NewProject {
            project_path,
            server_url,
        } => new_project(project_path, server_url),
        command => {
            let path = args.config_file.as_deref().ok_or_else(|| {
                ShellError::Usage(
                    "this command needs the project's config file: eddy migrate \
                     --config-file <ksql-migrations.properties> …"
                        .into(),
                )
            })?;
            let config = MigrationConfig::load(path)?;
            runtime.block_on(run_with_config(command, &config))
        }
    };
    println!(
        "Execution time: {:.4} seconds",
        started.elapsed().as_secs_f64()
    );
    result
}

async fn run_with_config(
    command: &MigrateCommand,
    config: &MigrationConfig,
) -> Result<(), ShellError> {
    if let MigrateCommand::Create {
        version,
        description,
    } = command
    {
        return create(config, *version, description);
    }
    let mut connect = config.connect.clone();
    if let MigrateCommand::Apply(ApplyArgs {
        headers: Some(path),
        ..
    }) = command
    {
        connect.headers = read_headers(path)?;
    }
    let client = Client::connect(&config.server_url, &connect)?;
    let metadata = Metadata::new(&client, config);
    match command {
        MigrateCommand::InitializeMetadata => {
            println!("Initializing migrations metadata");
            metadata.initialize().await?;
            println!("Migrations metadata initialized successfully");
            Ok(())
        }
        MigrateCommand::Apply(args) => apply(&client, &metadata, config, args).await,
        MigrateCommand::Info => info(&metadata, config).await,
        MigrateCommand::Validate => {
            metadata.require().await?;
            let files = files::load(&config.migrations_dir)?;
            validate(&metadata.records().await?, &files)?;
            println!(
                "Successfully validated checksums for migrations that have already been applied"
            );
            Ok(())
        }
        MigrateCommand::DestroyMetadata => {
            println!("Cleaning migrations metadata stream and table from the server");
            metadata.destroy().await?;
            println!("Migrations metadata cleaned successfully");
            Ok(())
        }
        MigrateCommand::NewProject { .. } | MigrateCommand::Create { .. } => Ok(()),
    }
}

fn new_project(path: &Path, server_url: &str) -> Result<(), ShellError> {
    Client::new(server_url)?;
    println!("Creating new migrations project at {}", path.display());
    let config = path.join("ksql-migrations.properties");
    if config.exists() {
        return Err(ShellError::Usage(format!(
            "{} exists already: not a new project",
            config.display()
        )));
    }
    let migrations = path.join("migrations");
    println!("Creating directory: {}", migrations.display());
    std::fs::create_dir_all(&migrations)?;
    println!("Creating file: {}", config.display());
    println!(
        "Writing to config file: {}={server_url}",
        config::SERVER_URL
    );
    std::fs::write(&config, config::template(server_url))?;
    println!("Migrations project directory created successfully");
    Ok(())
}

fn create(
    config: &MigrationConfig,
    version: Option<u32>,
    description: &str,
) -> Result<(), ShellError> {
    if description.trim().is_empty() {
        return Err(ShellError::Usage("a migration needs a description".into()));
    }
    let existing = files::load(&config.migrations_dir)?;
    let version = match version {
        Some(0) => {
            return Err(ShellError::Usage(
                "0 is not a valid migration version".into(),
            ));
        }
        Some(v) if v > 999_999 => {
            return Err(ShellError::Usage(format!("{v} is not a six-digit version")));
        }
        Some(v) => v,
        None => existing.last().map_or(1, |f| f.version + 1),
    };
    if let Some(file) = existing.iter().find(|f| f.version == version) {
        return Err(ShellError::Usage(format!(
            "version {version} exists already: {}",
            file.path.display()
        )));
    }
    let path = config
        .migrations_dir
        .join(files::file_name(version, description));
    println!("Creating migration file: {}", path.display());
    std::fs::write(&path, "")?;
    println!("Migration file successfully created");
    Ok(())
}

/// The version the next migration follows: `CURRENT` if it was migrated, else the one
/// before it (a failed migration is tried again). `None` when nothing was applied.
fn latest_migrated(
    records: &std::collections::BTreeMap<String, MigrationRecord>,
) -> Result<Option<u32>, ShellError> {
    let Some(current) = records.get(CURRENT) else {
        return Ok(None);
    };
    let version = if current.state == MigrationState::Migrated.as_str() {
        &current.version
    } else {
        &current.previous
    };
    if version == NONE || version.is_empty() {
        return Ok(None);
    }
    version.parse().map(Some).map_err(|_| {
        ShellError::Usage(format!(
            "the migrations metadata holds a bad version {version:?}"
        ))
    })
}

/// Checks the applied migrations, from the latest back to the first: each is `MIGRATED`
/// and its file is unchanged. Returns the latest applied version.
fn validate(
    records: &std::collections::BTreeMap<String, MigrationRecord>,
    files: &[MigrationFile],
) -> Result<Option<u32>, ShellError> {
    let latest = latest_migrated(records)?;
    let mut version = latest.map(|v| v.to_string());
    while let Some(v) = version {
        let invalid = |why: String| {
            ShellError::Usage(format!("Failed to validate migration version {v}: {why}"))
        };
        let record = records
            .get(&v)
            .ok_or_else(|| invalid("the migrations metadata has no record of it".into()))?;
        if record.state != MigrationState::Migrated.as_str() {
            return Err(invalid(format!(
                "its state is {}, not MIGRATED",
                record.state
            )));
        }
        let file = files
            .iter()
            .find(|f| f.version.to_string() == v)
            .ok_or_else(|| invalid("it was applied but its file is missing".into()))?;
        let checksum = file.checksum()?;
        if checksum != record.checksum {
            return Err(invalid(format!(
                "{} changed after it was applied (its checksum is {checksum}, the applied \
                 file's was {})",
                file.path.display(),
                record.checksum
            )));
        }
        version = (record.previous != NONE && !record.previous.is_empty())
            .then(|| record.previous.clone());
    }
    Ok(latest)
}

async fn apply(
    client: &Client,
    metadata: &Metadata<'_>,
    config: &MigrationConfig,
    args: &ApplyArgs,
) -> Result<(), ShellError> {
    if args.dry_run {
        println!("This is a dry run. No statements will be sent to the server.");
    }
    let mut defines = HashMap::new();
    for define in &args.define {
        let (name, value) = define.split_once('=').ok_or_else(|| {
            ShellError::Usage(format!("--define {define:?}: expected NAME=VALUE"))
        })?;
        defines.insert(name.trim().to_string(), value.to_string());
    }
    metadata.require().await?;
    println!("Validating current migration state before applying new migrations");
    let records = metadata.records().await?;
    if let Some(current) = records
        .get(CURRENT)
        .filter(|c| c.state == MigrationState::Running.as_str())
    {
        return Err(ShellError::Usage(format!(
            "Cannot apply migrations: version {} is still RUNNING (an apply was stopped, or \
             runs elsewhere). If none runs, record the version as ERROR in {} to go on.",
            current.version, config.stream_name
        )));
    }
    println!("Loading migration files");
    let files = files::load(&config.migrations_dir)?;
    println!("{} migration file(s) loaded.", files.len());
    let latest = validate(&records, &files)?;
    let after = latest.unwrap_or(0);
    let pending: Vec<&MigrationFile> = files.iter().filter(|f| f.version > after).collect();
    let chosen: Vec<&MigrationFile> = if args.all {
        pending
    } else if args.next {
        pending.into_iter().take(1).collect()
    } else if let Some(until) = args.until {
        pending.into_iter().filter(|f| f.version <= until).collect()
    } else if let Some(version) = args.version {
        if version <= after {
            return Err(ShellError::Usage(format!(
                "version {version} is not after the latest applied version {after}"
            )));
        }
        let file = files.iter().find(|f| f.version == version).ok_or_else(|| {
            ShellError::Usage(format!("there is no migration file of version {version}"))
        })?;
        vec![file]
    } else {
        Vec::new()
    };
    if chosen.is_empty() {
        println!("No eligible migrations found.");
        return Ok(());
    }
    // Every chosen file is checked before the first is applied.
    let mut plans = Vec::new();
    for file in &chosen {
        plans.push((*file, apply::steps(file)?));
    }
    let mut previous = latest.map_or(NONE.to_string(), |v| v.to_string());
    for (file, steps) in plans {
        println!("Applying migration version {}: {}", file.version, file.name);
        println!("{} contents:\n{}", file.path.display(), file.text()?);
        if args.dry_run {
            continue;
        }
        let mut record = MigrationRecord {
            version_key: String::new(),
            version: file.version.to_string(),
            name: file.name.clone(),
            state: MigrationState::Running.as_str().into(),
            checksum: file.checksum()?,
            started_on: now_millis(),
            completed_on: String::new(),
            previous: previous.clone(),
            error_reason: String::new(),
        };
        metadata.record(&record).await?;
        let result = apply::run(client, file, &steps, &defines).await;
        record.completed_on = now_millis();
        match result {
            Ok(()) => {
                record.state = MigrationState::Migrated.as_str().into();
                metadata.record(&record).await?;
                previous = record.version;
            }
            Err(reason) => {
                record.state = MigrationState::Error.as_str().into();
                record.error_reason = reason.clone();
                metadata.record(&record).await?;
                return Err(ShellError::Usage(format!(
                    "Failed to apply migration version {}: {reason}",
                    file.version
                )));
            }
        }
    }
    if args.dry_run {
        println!("Dry run complete. No migrations were actually applied.");
    } else {
        println!("Successfully migrated");
    }
    Ok(())
}

async fn info(metadata: &Metadata<'_>, config: &MigrationConfig) -> Result<(), ShellError> {
    metadata.require().await?;
    let records = metadata.records().await?;
    let files = files::load(&config.migrations_dir)?;
    println!(
        "Current migration version: {}",
        records.get(CURRENT).map_or(NONE, |c| c.version.as_str())
    );
    let mut versions: Vec<u32> = files.iter().map(|f| f.version).collect();
    versions.extend(records.values().filter_map(MigrationRecord::version_number));
    versions.sort_unstable();
    versions.dedup();
    let mut rows = Vec::new();
    let na = || "N/A".to_string();
    for version in versions {
        let file = files.iter().find(|f| f.version == version);
        let row = match records.get(&version.to_string()) {
            Some(r) => [
                r.version.clone(),
                r.name.clone(),
                r.state.clone(),
                r.previous.clone(),
                time(&r.started_on),
                time(&r.completed_on),
                if r.error_reason.is_empty() {
                    na()
                } else {
                    // One line per migration: the reason may quote a statement's lines.
                    r.error_reason
                        .split_whitespace()
                        .collect::<Vec<_>>()
                        .join(" ")
                },
            ],
            None => [
                version.to_string(),
                file.map(|f| f.name.clone()).unwrap_or_default(),
                "PENDING".into(),
                na(),
                na(),
                na(),
                na(),
            ],
        };
        rows.push(row.to_vec());
    }
    let header = [
        "Version",
        "Name",
        "State",
        "Previous Version",
        "Started On",
        "Completed On",
        "Error Reason",
    ];
    println!("{}", crate::render::table(&header, rows));
    Ok(())
}

/// Milliseconds since the epoch, as the metadata records times.
fn now_millis() -> String {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis())
        .to_string()
}

/// A recorded time, shown in UTC.
fn time(millis: &str) -> String {
    millis
        .parse::<i64>()
        .ok()
        .and_then(chrono::DateTime::from_timestamp_millis)
        .map_or_else(
            || "N/A".to_string(),
            |t| t.format("%Y-%m-%d %H:%M:%S%.3f UTC").to_string(),
        )
}

/// Request headers from a file of `Name: value` or `Name=value` lines.
fn read_headers(path: &Path) -> Result<Vec<(String, String)>, ShellError> {
    let text = std::fs::read_to_string(path).map_err(|source| ShellError::Script {
        path: path.to_path_buf(),
        source,
    })?;
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(n, line)| {
            let at = line.find([':', '=']).ok_or_else(|| {
                ShellError::Usage(format!(
                    "{}, line {}: expected `Name: value` or `Name=value`",
                    path.display(),
                    n + 1
                ))
            })?;
            Ok((
                line[..at].trim().to_string(),
                line[at + 1..].trim().to_string(),
            ))
        })
        .collect()
}
