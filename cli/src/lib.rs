//! The `mosaic` command line.
//!
//! Network commands: `node run` starts a storage node; `put` encrypts and codes a file
//! locally and places its columns on storage nodes found through the DHT; `get` fetches
//! and decodes it. Offline commands over a local blob directory, handy without a
//! network: `encode`, `decode`, `inspect`.
//!
//! Modules: `settings` (flags, config file and client, resolved once per command; a
//! leaf), `serve` (node, gateway, devnet), `transfer` (put, get, nodes), `account`
//! (keys, keyring), `pins` (pins, status), `offline` (encode, decode, inspect over a
//! `blob_dir`), `exit` (exit codes from error kinds). Commands depend on `settings` and
//! on the libraries; `transfer` and `pins` also use `account` (the keyring); nothing
//! depends on a command module but this dispatcher.
//!
//! Output contract: the one result a script wants (a cap, the file's bytes) goes to
//! stdout; everything for humans goes to stderr; `--json` makes stdout one JSON value
//! (errors included). Exit codes are listed in `exit::Code` and docs/cli.md.

mod account;
mod blob_dir;
mod daemon;
mod exit;
mod files;
mod gateway;
mod health;
mod keyring;
mod keys;
mod merge;
mod name;
mod network_settings;
mod node_settings;
mod offline;
mod output;
mod pins;
mod settings;
mod transfer;
mod uploads;
mod vault;

use std::{io, path::PathBuf, process::ExitCode};

use anyhow::{Context, Result};
use clap::{ArgMatches, CommandFactory, FromArgMatches, Parser, Subcommand};
use mosaic_codec::{DEFAULT_DATA_COLUMNS, DEFAULT_PARITY_COLUMNS, DEFAULT_SEGMENT_SIZE, Params};

pub use blob_dir::BlobDir;
use settings::{ClientArgs, ClientFlags, ConfigArgs, Global, KeyArgs, NetworkArgs, data_home};

/// Mosaic: encrypted, erasure-coded, content-addressed storage.
#[derive(Debug, Parser)]
#[command(name = "mosaic", version, about, long_about = None)]
pub struct Cli {
    /// Print the result as one JSON value on stdout (errors too), for scripts.
    #[arg(long, global = true)]
    pub json: bool,
    // Each command lists only the flags it uses. These are also taken before the
    // command, where earlier versions had them for every command (`mosaic --timings
    // get …`, `mosaic --config FILE …`): hidden there, the same as the command's own
    // flag, and refused before a command that has no such flag.
    /// The same as the command's own --key.
    #[arg(long, hide = true)]
    pub key: Option<String>,
    /// The same as the command's own --timings.
    #[arg(long, hide = true)]
    pub timings: bool,
    /// The same as the command's own --local-dir.
    #[arg(long, hide = true)]
    pub local_dir: Option<PathBuf>,
    /// The same as the command's own --config.
    #[arg(long, hide = true)]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run or inspect a storage node.
    Node {
        #[command(subcommand)]
        command: NodeCommand,
    },
    /// Run a whole local network in this process: COUNT storage nodes on 127.0.0.1
    /// (QUIC 4919+i, DHT 6881+i), open to any client. For trying Mosaic and for
    /// development; `put` and `get` find it with their default bootstrap.
    Devnet {
        /// Number of storage nodes.
        #[arg(long, default_value_t = 5)]
        nodes: usize,
        /// Directory for the nodes' data [default: $XDG_DATA_HOME/mosaic/devnet]
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Capacity of each node.
        #[arg(long, default_value = "2GiB")]
        capacity: bytesize::ByteSize,
    },
    /// Run an HTTP gateway that streams files from the network to browsers.
    Gateway {
        #[command(subcommand)]
        command: GatewayCommand,
    },
    /// Print this client's identity (what nodes' --allow lists), creating it if needed.
    Id {
        #[command(flatten)]
        identity: KeyArgs,
        #[command(flatten)]
        config: ConfigArgs,
    },
    /// Manage your keys: identities and the convergence secret.
    Key {
        #[command(subcommand)]
        command: KeyCommand,
    },
    /// Mutable names: publish once, point the name at new content forever (signed
    /// records on the DHT, kept alive by the nodes holding what they point to).
    Name {
        #[command(subcommand)]
        command: NameCommand,
    },
    /// List the storage nodes of the network: found on the DHT, and reachable.
    Nodes {
        #[command(flatten)]
        conn: ClientFlags,
    },
    /// The DHT, the storage nodes and what each holds for you (usage, quota, announce
    /// backlog).
    Status {
        #[command(flatten)]
        conn: ClientFlags,
    },
    /// List your uploads (the keyring).
    Ls,
    /// Print a file's readcap (or id) and a link to it: for a private file, the gateway's
    /// share page with the key in the fragment (`GATEWAY/s/#CAP/NAME`).
    Share {
        /// A keyring name, readcap or id.
        file: String,
        /// The gateway to link to [default: `gateway_url` in the config file, else
        /// http://127.0.0.1:8080]
        #[arg(long, env = "MOSAIC_GATEWAY_URL")]
        gateway_url: Option<String>,
        /// For a private file, print the older `/f/CAP` link, where the gateway decrypts
        /// (it then sees the key), instead of the share page's `/s/#CAP` link, where the
        /// browser verifies and decrypts.
        #[arg(long)]
        gateway_decrypts: bool,
        #[command(flatten)]
        config: ConfigArgs,
    },
    /// Unpin a file from the nodes and forget it (asks first on a terminal).
    Rm {
        /// Its keyring name.
        name: String,
        /// Do not ask.
        #[arg(short, long)]
        yes: bool,
        /// Forget it even if some nodes could not be told to unpin.
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        conn: ClientFlags,
    },
    /// Write every key and keyring entry to one passphrase-protected file (to move to
    /// another machine: `mosaic import` there).
    Export {
        /// The file to write (created 0600) [default: stdout, if not a terminal]
        #[arg(short, long)]
        output: Option<PathBuf>,
        #[command(flatten)]
        passphrase: vault::PassphraseArgs,
    },
    /// Read a file made by `mosaic export` into this machine's keys and keyring.
    Import {
        /// The file.
        file: PathBuf,
        #[command(flatten)]
        passphrase: vault::PassphraseArgs,
    },
    /// Which nodes hold each column of a file and whether they answer (no key needed:
    /// a keyring name, cap, public id or hex file id). Exits 5 if the file is not
    /// readable now.
    Check {
        /// A keyring name, readcap, public id or file id (hex).
        file: String,
        /// Also download every copy of every column, verified against its hash.
        #[arg(long)]
        verify: bool,
        #[command(flatten)]
        conn: ClientFlags,
    },
    /// Ask the file's holders to rebuild its missing columns now, on nodes that hold
    /// nothing of it (no key needed). Exits 5 if columns are still missing.
    Repair {
        /// A keyring name, readcap, public id or file id (hex).
        file: String,
        #[command(flatten)]
        conn: ClientFlags,
    },
    /// Keep files on the nodes for your identity, drop them, or see where they are.
    Pin {
        #[command(subcommand)]
        command: PinCommand,
    },
    /// Print a shell completion script, e.g. `mosaic completions bash > ~/.local/share/bash-completion/completions/mosaic`.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Encrypt and erasure-code FILE locally and store its columns on storage nodes;
    /// print its readcap (or public id) and record it in your keyring.
    Put {
        /// The file to upload (a directory with -r).
        file: PathBuf,
        /// Its name in your keyring [default: the file's name]. A name that holds another
        /// file is left as it is: this upload gets the first free `NAME (2)`, `NAME
        /// (3)`… (printed); the same file again (same content, public or private as
        /// before, same identity) is not uploaded: it says where it is stored.
        #[arg(long)]
        name: Option<String>,
        /// Store another copy even if your keyring holds this same file under this
        /// name (private: a new key, so another file; kept as `NAME (2)`…).
        #[arg(long, conflicts_with = "replace")]
        copy: bool,
        /// If the name holds another file, replace that entry, and unpin that file as
        /// `mosaic rm` does (its cap is printed on stderr, to pin it back before the
        /// nodes collect it).
        #[arg(long)]
        replace: bool,
        /// Upload a directory tree as one public directory (needs --public): every
        /// file, then an index; prints the directory's id, which a gateway serves as a
        /// static site at /p/ID/.
        #[arg(short, long, requires = "public")]
        recursive: bool,
        #[command(flatten)]
        coding: CodingArgs,
        #[command(flatten)]
        conn: ClientFlags,
    },
    /// Fetch a file from the network and decrypt it to OUT or stdout.
    Get {
        /// The readcap (mr1…), a public file's id (mi1…), or a keyring name.
        cap: String,
        /// Write here instead of stdout (written whole or not at all).
        #[arg(short, long)]
        output: Option<PathBuf>,
        #[command(flatten)]
        conn: ClientFlags,
    },
    /// Encrypt and erasure-code FILE into the local blob directory; print its readcap.
    Encode {
        /// The file to encode.
        file: PathBuf,
        #[command(flatten)]
        coding: CodingArgs,
        #[command(flatten)]
        local: LocalDirArgs,
    },
    /// Decode a file from the local blob directory.
    Decode {
        /// The readcap (mr1…) or, for a public file, its id (mi1…).
        cap: String,
        /// Write here instead of stdout (written whole or not at all).
        #[arg(short, long)]
        output: Option<PathBuf>,
        /// First plaintext byte to output.
        #[arg(long)]
        offset: Option<u64>,
        /// Number of bytes to output [default: to the end].
        #[arg(long)]
        length: Option<u64>,
        #[command(flatten)]
        local: LocalDirArgs,
    },
    /// Show what a file's manifest says: layout, columns, and (with a readcap) metadata.
    Inspect {
        /// A readcap (mr1…) or id (mi1…).
        cap: String,
        #[command(flatten)]
        local: LocalDirArgs,
    },
}

/// The blob directory of the offline commands (`encode`, `decode`, `inspect`).
#[derive(Debug, Clone, clap::Args)]
struct LocalDirArgs {
    /// Local blob directory [default: $XDG_DATA_HOME/mosaic/local]
    #[arg(long, env = "MOSAIC_LOCAL_DIR")]
    local_dir: Option<PathBuf>,
}

impl LocalDirArgs {
    /// Opens the directory: the flag's (or one given before the command), else the
    /// default.
    fn open(&self, before: Option<PathBuf>) -> Result<BlobDir> {
        let dir = match before.or_else(|| self.local_dir.clone()) {
            Some(d) => d,
            None => data_home()?.join("local"),
        };
        BlobDir::open(&dir)
            .with_context(|| format!("cannot open the local blob directory {}", dir.display()))
    }
}

/// How a file is encoded: shared by `put` and `encode`.
#[derive(Debug, Clone, clap::Args)]
struct CodingArgs {
    /// Store unencrypted, for everyone: prints a public id (mi1…) instead of a readcap.
    #[arg(long)]
    public: bool,
    /// Data columns: any k of the k+m columns rebuild the file.
    #[arg(short, default_value_t = DEFAULT_DATA_COLUMNS)]
    k: u8,
    /// Parity columns: how many columns (nodes) may be lost.
    #[arg(short, default_value_t = DEFAULT_PARITY_COLUMNS)]
    m: u8,
    /// Plaintext bytes per segment (a multiple of 1024, 4 KiB to 16 MiB).
    #[arg(long, default_value_t = DEFAULT_SEGMENT_SIZE)]
    segment_size: u32,
    /// Derive the key from the content and your convergence secret, so identical uploads
    /// by holders of that secret deduplicate (see docs/format.md for the attacks this
    /// allows among them).
    #[arg(long, conflicts_with = "public")]
    convergent: bool,
    /// Media type to record [default: guessed from the file name].
    #[arg(long)]
    media_type: Option<String>,
}

impl CodingArgs {
    fn params(&self) -> Result<Params> {
        Ok(Params::new(self.segment_size, self.k, self.m)?)
    }
}

#[derive(Debug, Subcommand)]
enum KeyCommand {
    /// Create a key: an identity, or with the name `convergence` the convergence secret.
    New {
        /// Its name [default: "default"]
        name: Option<String>,
    },
    /// List your keys; `*` marks the identity in use.
    List {
        #[command(flatten)]
        identity: KeyArgs,
        #[command(flatten)]
        config: ConfigArgs,
    },
    /// Write a key to a passphrase-protected file.
    Export {
        /// The key's name.
        name: String,
        /// The file to write (created 0600) [default: stdout, if not a terminal]
        #[arg(short, long)]
        output: Option<PathBuf>,
        #[command(flatten)]
        passphrase: vault::PassphraseArgs,
    },
    /// Read a key from a file made by `key export`.
    Import {
        /// The file.
        file: PathBuf,
        /// Store it under this name instead of its own.
        #[arg(long)]
        name: Option<String>,
        #[command(flatten)]
        passphrase: vault::PassphraseArgs,
    },
    /// Delete a key (asks first on a terminal).
    Rm {
        /// The key's name.
        name: String,
        /// Do not ask.
        #[arg(short, long)]
        yes: bool,
    },
}

#[derive(Debug, Subcommand)]
enum NameCommand {
    /// Create a name key (kept with your keys) and print the name (`mn1…`).
    New {
        /// What you call it here.
        name: String,
    },
    /// Point a name at a file or directory: a record signed with the name key, put to
    /// the DHT and handed to the nodes holding the target, which republish it. Prints
    /// what readers resolve: `mn1…`, or for a private name `ms1…`.
    Publish {
        /// The name key's name.
        name: String,
        /// A keyring name, readcap or id. A readcap is only ever published sealed.
        target: String,
        /// A path inside the target directory, e.g. `docs/`.
        #[arg(long, default_value = "")]
        path: String,
        /// Seal the record: only holders of the `ms1…` form learn the target (DHT
        /// nodes and gateways see that the name exists and changes; the nodes holding
        /// the target learn which file it is, not its key).
        #[arg(long)]
        private: bool,
        #[command(flatten)]
        conn: ClientFlags,
    },
    /// Print what a name points to now: `mn1…`, `ms1…`, or one of your names.
    Resolve {
        /// The name.
        name: String,
        #[command(flatten)]
        conn: ClientFlags,
    },
    /// List your names and what each last published.
    Ls,
}

#[derive(Debug, Subcommand)]
enum PinCommand {
    /// Ask the nodes holding a file to keep it for you (copying columns to new nodes
    /// where no holder will).
    Add {
        /// A keyring name, readcap or id.
        file: String,
        #[command(flatten)]
        conn: ClientFlags,
    },
    /// Drop your pins on a file (other owners' pins stay).
    Rm {
        /// A keyring name, readcap or id.
        file: String,
        #[command(flatten)]
        conn: ClientFlags,
    },
    /// Where each column of a file (or of every keyring file) is held and pinned, and
    /// whether the file is readable (k of n).
    Ls {
        /// A keyring name, readcap or id [default: every keyring file]
        file: Option<String>,
        #[command(flatten)]
        conn: ClientFlags,
    },
}

#[derive(Debug, Subcommand)]
enum GatewayCommand {
    /// Serve HTTP until SIGINT or SIGTERM (routes: docs/gateway.md).
    Run {
        /// HTTP address to listen on [default: 127.0.0.1:8080]
        #[arg(long, env = "MOSAIC_GATEWAY_LISTEN")]
        listen: Option<std::net::SocketAddr>,
        #[command(flatten)]
        gateway: gateway::GatewaySettings,
        #[command(flatten)]
        network: NetworkArgs,
        #[command(flatten)]
        client: ClientArgs,
    },
}

#[derive(Debug, Subcommand)]
enum NodeCommand {
    /// Run a storage node until SIGINT or SIGTERM.
    Run {
        #[command(flatten)]
        network: NetworkArgs,
        #[command(flatten)]
        args: Box<daemon::NodeRunArgs>,
    },
    /// Print the node's identity, creating it if needed.
    Id {
        /// Data directory [default: $XDG_DATA_HOME/mosaic/node]
        #[arg(long, env = "MOSAIC_DATA_DIR")]
        data_dir: Option<PathBuf>,
    },
    /// Check that the node running on this machine answers (exit 0) or not (exit 1):
    /// for container health checks.
    Health {
        /// The node's data directory [default: $XDG_DATA_HOME/mosaic/node]
        #[arg(long, env = "MOSAIC_DATA_DIR")]
        data_dir: Option<PathBuf>,
        /// The node's QUIC address (only its port is used) [default: 0.0.0.0:4919]
        #[arg(long, env = "MOSAIC_LISTEN")]
        listen: Option<std::net::SocketAddr>,
    },
}

/// Runs the command line; returns the process exit code.
pub fn main() -> ExitCode {
    let matches = Cli::command().get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    let before = Before {
        key: cli.key.clone(),
        timings: cli.timings,
        local_dir: cli.local_dir.clone(),
        config: cli.config.clone(),
    };
    if let Some(flag) = before.misplaced(innermost(&matches)) {
        let path = command_path(&matches);
        Cli::command()
            .error(
                clap::error::ErrorKind::UnknownArgument,
                format!(
                    "`mosaic {path}` has no {flag}: remove it (`mosaic {path} --help` lists its flags)"
                ),
            )
            .exit();
    }
    let default_level = match &cli.command {
        Command::Node {
            command: NodeCommand::Run { .. },
        }
        | Command::Gateway { .. } => "info",
        Command::Devnet { .. } => "warn",
        // iroh 1.4.1 logs `relay_recv_channel closed` at ERROR on every clean close of
        // an endpoint with a relay transport (its relay actor stops before the socket is
        // last polled). Relay failures that matter are reported by Mosaic itself.
        _ => "warn,iroh::socket::transports::relay=off",
    };
    tracing_subscriber::fmt()
        .with_writer(io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level)),
        )
        .init();
    let json = cli.json;
    match run(cli, before, innermost(&matches)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // A closed pipe (`mosaic decode … | head`) is the reader's choice, not a failure.
            if e.chain().any(|c| {
                c.downcast_ref::<io::Error>()
                    .is_some_and(|io| io.kind() == io::ErrorKind::BrokenPipe)
            }) {
                return ExitCode::SUCCESS;
            }
            let code = exit::classify(&e);
            if json && exit::was_reported(&e) {
                // The command's JSON answer already says what went wrong.
            } else if json {
                let causes: Vec<String> = e.chain().skip(1).map(ToString::to_string).collect();
                println!(
                    "{}",
                    serde_json::json!({"error": e.to_string(), "causes": causes, "exit_code": code as u8})
                );
            } else {
                eprintln!("error: {e}");
                for cause in e.chain().skip(1) {
                    eprintln!("  caused by: {cause}");
                }
            }
            ExitCode::from(code as u8)
        }
    }
}

/// The flags given before the command (`mosaic --key K get …`), checked against the
/// command's own: a flag the command does not have is refused there too. The command's
/// own flags are read from its matches by id, so no list of commands is kept here.
struct Before {
    key: Option<String>,
    timings: bool,
    local_dir: Option<PathBuf>,
    config: Option<PathBuf>,
}

/// The command's own flag `id`: `None` when the command has no such flag, else its
/// value (if given, on the line or in its variable).
fn own<T: Clone + Send + Sync + 'static>(command: &ArgMatches, id: &str) -> Option<Option<T>> {
    command.try_get_one::<T>(id).ok().map(Option::<&T>::cloned)
}

/// The matches of the command itself (the innermost subcommand).
fn innermost(matches: &ArgMatches) -> &ArgMatches {
    let mut m = matches;
    while let Some((_, sub)) = m.subcommand() {
        m = sub;
    }
    m
}

impl Before {
    /// A flag given before a command that has no such flag of its own.
    fn misplaced(&self, command: &ArgMatches) -> Option<&'static str> {
        if self.key.is_some() && own::<String>(command, "key").is_none() {
            Some("--key")
        } else if self.timings && own::<bool>(command, "timings").is_none() {
            Some("--timings")
        } else if self.local_dir.is_some() && own::<PathBuf>(command, "local_dir").is_none() {
            Some("--local-dir")
        } else if self.config.is_some() && own::<PathBuf>(command, "config").is_none() {
            Some("--config")
        } else {
            None
        }
    }
}

/// The command's words, e.g. `pin ls`.
fn command_path(matches: &ArgMatches) -> String {
    let mut words = Vec::new();
    let mut m = matches;
    while let Some((name, sub)) = m.subcommand() {
        words.push(name.to_owned());
        m = sub;
    }
    words.join(" ")
}

fn run(cli: Cli, flags: Before, command: &ArgMatches) -> Result<()> {
    // A flag before the command wins over the command's environment variable.
    let key = flags.key.or_else(|| own(command, "key").flatten());
    let timings = flags.timings || own(command, "timings").flatten().unwrap_or(false);
    let config = flags.config.or_else(|| own(command, "config").flatten());
    let g = Global::load(cli.json, key, timings, config.as_deref())?;
    let before = flags.local_dir;
    match cli.command {
        Command::Node {
            command: NodeCommand::Run { network, args },
        } => daemon::node_run(&g, network, *args),
        Command::Node {
            command: NodeCommand::Id { data_dir },
        } => daemon::node_id(&g, data_dir),
        Command::Node {
            command: NodeCommand::Health { data_dir, listen },
        } => daemon::node_health(&g, data_dir, listen),
        Command::Id { .. } => account::client_id(&g),
        Command::Key { command } => match command {
            KeyCommand::New { name } => account::key_new(&g, name),
            KeyCommand::List { .. } => account::key_list(&g),
            KeyCommand::Export {
                name,
                output,
                passphrase,
            } => account::key_export(&g, &name, output.as_deref(), &passphrase),
            KeyCommand::Import {
                file,
                name,
                passphrase,
            } => account::key_import(&g, &file, name.as_deref(), &passphrase),
            KeyCommand::Rm { name, yes } => account::key_rm(&g, &name, yes),
        },
        Command::Gateway {
            command:
                GatewayCommand::Run {
                    listen,
                    gateway,
                    network,
                    client,
                },
        } => daemon::gateway_run(&g, network, client, listen, gateway),
        Command::Devnet {
            nodes,
            data_dir,
            capacity,
        } => daemon::devnet(&g, nodes, data_dir, capacity),
        Command::Name { command } => match command {
            NameCommand::New { name } => name::new(&g, &name),
            NameCommand::Publish {
                name,
                target,
                path,
                private,
                conn: ClientFlags {
                    network, client, ..
                },
                ..
            } => name::publish(&g, network, client, &name, &target, &path, private),
            NameCommand::Resolve {
                name,
                conn: ClientFlags {
                    network, client, ..
                },
                ..
            } => name::resolve_name(&g, network, client, &name),
            NameCommand::Ls => name::ls(&g),
        },
        Command::Nodes {
            conn: ClientFlags {
                network, client, ..
            },
        } => transfer::nodes(&g, network, client),
        Command::Status {
            conn: ClientFlags {
                network, client, ..
            },
        } => pins::status(&g, network, client),
        Command::Ls => account::ls(&g),
        Command::Share {
            file,
            gateway_url,
            gateway_decrypts,
            ..
        } => {
            let url = gateway_url
                .or_else(|| g.file.gateway_url.clone())
                .unwrap_or_else(|| "http://127.0.0.1:8080".to_owned());
            account::share(&g, &file, &url, gateway_decrypts)
        }
        Command::Rm {
            name,
            yes,
            force,
            conn: ClientFlags {
                network, client, ..
            },
            ..
        } => account::rm(&g, network, client, &name, yes, force),
        Command::Export { output, passphrase } => {
            account::export(&g, output.as_deref(), &passphrase)
        }
        Command::Import { file, passphrase } => account::import(&g, &file, &passphrase),
        Command::Check {
            file,
            verify,
            conn: ClientFlags {
                network, client, ..
            },
            ..
        } => health::check(&g, network, client, &file, verify),
        Command::Repair {
            file,
            conn: ClientFlags {
                network, client, ..
            },
            ..
        } => health::repair(&g, network, client, &file),
        Command::Pin { command } => match command {
            PinCommand::Add {
                file,
                conn: ClientFlags {
                    network, client, ..
                },
                ..
            } => pins::pin_add(&g, network, client, &file),
            PinCommand::Rm {
                file,
                conn: ClientFlags {
                    network, client, ..
                },
                ..
            } => pins::pin_rm(&g, network, client, &file),
            PinCommand::Ls {
                file,
                conn: ClientFlags {
                    network, client, ..
                },
                ..
            } => pins::pin_ls(&g, network, client, file.as_deref()),
        },
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "mosaic", &mut io::stdout());
            Ok(())
        }
        Command::Put {
            file,
            name,
            replace,
            recursive: true,
            coding,
            conn: ClientFlags {
                network, client, ..
            },
            ..
        } => transfer::put_dir(&g, network, client, &file, coding.params()?, name, replace),
        Command::Put {
            file,
            name,
            replace,
            copy,
            recursive: false,
            coding,
            conn: ClientFlags {
                network, client, ..
            },
            ..
        } => transfer::put(
            &g,
            network,
            client,
            transfer::PutSpec {
                file,
                params: coding.params()?,
                public: coding.public,
                convergent: coding.convergent,
                media_type: coding.media_type,
                name,
                replace,
                copy,
            },
        ),
        Command::Get {
            cap,
            output,
            conn: ClientFlags {
                network, client, ..
            },
            ..
        } => transfer::get(&g, network, client, &cap, output.as_deref()),
        Command::Encode {
            file,
            coding,
            local,
        } => {
            let params = coding.params()?;
            let blobs = local.open(before)?;
            offline::cmd_encode(
                &g,
                &blobs,
                &file,
                params,
                coding.public,
                coding.convergent,
                coding.media_type,
            )
        }
        Command::Decode {
            cap,
            output,
            offset,
            length,
            local,
        } => {
            let blobs = local.open(before)?;
            if g.json && output.is_none() {
                return exit::fail(
                    exit::Code::Usage,
                    "with --json, stdout carries the report: write the file with -o OUT",
                );
            }
            offline::cmd_decode(&blobs, &cap, output.as_deref(), offset, length)?;
            g.emit(serde_json::json!({"output": output}), || Ok(()))
        }
        Command::Inspect { cap, local } => {
            let blobs = local.open(before)?;
            offline::cmd_inspect(&g, &blobs, &cap)
        }
    }
}
