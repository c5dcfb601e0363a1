//! The `mosaic` command line.
//!
//! Network commands: `node run` starts a storage node; `put` encrypts and codes a file
//! locally and places its columns on storage nodes found through the DHT; `get` fetches
//! and decodes it. Offline commands over a local blob directory, handy without a
//! network: `encode`, `decode`, `inspect`.
//!
//! Output contract: the one result a script wants (a cap, the file's bytes) goes to
//! stdout; everything for humans goes to stderr; `--json` makes stdout one JSON value
//! (errors included). Exit codes are listed in `exit::Code` and docs/cli.md.

mod account;
mod exit;
mod files;
mod gateway;
mod keyring;
mod keys;
mod local;
mod net;
mod output;
mod settings;
mod vault;

use std::{
    fs::{self, File},
    io::{self, BufWriter, Write},
    path::{Path, PathBuf},
    process::ExitCode,
};

use anyhow::{Context, Result, anyhow, bail};
use clap::{CommandFactory, Parser, Subcommand};
use mosaic_codec::{
    Access, Cap, DEFAULT_DATA_COLUMNS, DEFAULT_PARITY_COLUMNS, DEFAULT_SEGMENT_SIZE, DecodeReport,
    Decoder, Hash, MAX_MANIFEST_LEN, Manifest, Params, PublicId, ReadCap, decode_file,
    decode_range, encode,
};

pub use local::LocalStore;
use settings::{ClientArgs, Global, NetworkArgs, data_home};

/// Mosaic: encrypted, erasure-coded, content-addressed storage.
#[derive(Debug, Parser)]
#[command(name = "mosaic", version, about, long_about = None)]
pub struct Cli {
    /// Local blob directory for `encode` and `decode` [default: $XDG_DATA_HOME/mosaic/local]
    #[arg(long, global = true, env = "MOSAIC_LOCAL_DIR")]
    pub local_dir: Option<PathBuf>,
    /// Print the result as one JSON value on stdout (errors too), for scripts.
    #[arg(long, global = true)]
    pub json: bool,
    /// The identity to act as (`mosaic key list`) [default: `key` in the config file,
    /// else "default"]
    #[arg(long, global = true, env = "MOSAIC_KEY")]
    pub key: Option<String>,
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
        network: NetworkArgs,
    },
    /// Manage your keys: identities and the convergence secret.
    Key {
        #[command(subcommand)]
        command: KeyCommand,
    },
    /// List the storage nodes of the network: found on the DHT, and reachable.
    Nodes {
        #[command(flatten)]
        network: NetworkArgs,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// The DHT, the storage nodes and what each holds for you (usage, quota, announce
    /// backlog).
    Status {
        #[command(flatten)]
        network: NetworkArgs,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// List your uploads (the keyring).
    Ls,
    /// Print a file's readcap (or id) and a gateway URL for it.
    Share {
        /// A keyring name, readcap or id.
        file: String,
        /// The gateway to link to [default: `gateway_url` in the config file, else
        /// http://127.0.0.1:8080]
        #[arg(long, env = "MOSAIC_GATEWAY_URL")]
        gateway_url: Option<String>,
        #[command(flatten)]
        network: NetworkArgs,
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
        network: NetworkArgs,
        #[command(flatten)]
        client: ClientArgs,
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
        /// Its name in your keyring [default: the file's name]
        #[arg(long)]
        name: Option<String>,
        /// Upload a directory tree as one public directory (needs --public): every
        /// file, then an index; prints the directory's id, which a gateway serves as a
        /// static site at /p/ID/.
        #[arg(short, long, requires = "public")]
        recursive: bool,
        #[command(flatten)]
        coding: CodingArgs,
        #[command(flatten)]
        network: NetworkArgs,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Fetch a file from the network and decrypt it to OUT or stdout.
    Get {
        /// The readcap (mr1…), a public file's id (mi1…), or a keyring name.
        cap: String,
        /// Write here instead of stdout (written whole or not at all).
        #[arg(short, long)]
        output: Option<PathBuf>,
        #[command(flatten)]
        network: NetworkArgs,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Encrypt and erasure-code FILE into the local blob directory; print its readcap.
    Encode {
        /// The file to encode.
        file: PathBuf,
        #[command(flatten)]
        coding: CodingArgs,
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
    },
    /// Show what a file's manifest says: layout, columns, and (with a readcap) metadata.
    Inspect {
        /// A readcap (mr1…) or id (mi1…).
        cap: String,
    },
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
        network: NetworkArgs,
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
enum PinCommand {
    /// Ask the nodes holding a file to keep it for you (copying columns to new nodes
    /// where no holder will).
    Add {
        /// A keyring name, readcap or id.
        file: String,
        #[command(flatten)]
        network: NetworkArgs,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Drop your pins on a file (other owners' pins stay).
    Rm {
        /// A keyring name, readcap or id.
        file: String,
        #[command(flatten)]
        network: NetworkArgs,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Where each column of a file (or of every keyring file) is held and pinned, and
    /// whether the file is readable (k of n).
    Ls {
        /// A keyring name, readcap or id [default: every keyring file]
        file: Option<String>,
        #[command(flatten)]
        network: NetworkArgs,
        #[command(flatten)]
        client: ClientArgs,
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
        gateway: gateway::GatewayArgs,
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
        args: Box<net::NodeRunArgs>,
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
    let cli = Cli::parse();
    let default_level = match &cli.command {
        Command::Node {
            command: NodeCommand::Run { .. },
        }
        | Command::Gateway { .. } => "info",
        Command::Devnet { .. } => "warn",
        _ => "warn",
    };
    tracing_subscriber::fmt()
        .with_writer(io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level)),
        )
        .init();
    let json = cli.json;
    match run(cli) {
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

impl Command {
    /// The network flags of a command that has them (they name the config file).
    fn network(&self) -> Option<&NetworkArgs> {
        match self {
            Command::Node {
                command: NodeCommand::Run { network, .. },
            }
            | Command::Id { network }
            | Command::Key {
                command: KeyCommand::List { network },
            }
            | Command::Gateway {
                command: GatewayCommand::Run { network, .. },
            }
            | Command::Nodes { network, .. }
            | Command::Status { network, .. }
            | Command::Share { network, .. }
            | Command::Rm { network, .. }
            | Command::Pin {
                command:
                    PinCommand::Add { network, .. }
                    | PinCommand::Rm { network, .. }
                    | PinCommand::Ls { network, .. },
            }
            | Command::Put { network, .. }
            | Command::Get { network, .. } => Some(network),
            _ => None,
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    let dir = match cli.local_dir {
        Some(d) => d,
        None => data_home()?.join("local"),
    };
    let g = Global::load(cli.json, cli.key, cli.command.network())?;
    match cli.command {
        Command::Node {
            command: NodeCommand::Run { network, args },
        } => net::node_run(&g, network, *args),
        Command::Node {
            command: NodeCommand::Id { data_dir },
        } => net::node_id(&g, data_dir),
        Command::Node {
            command: NodeCommand::Health { data_dir, listen },
        } => net::node_health(&g, data_dir, listen),
        Command::Id { .. } => net::client_id(&g),
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
        } => net::gateway_run(&g, network, client, listen, gateway),
        Command::Devnet {
            nodes,
            data_dir,
            capacity,
        } => net::devnet(&g, nodes, data_dir, capacity),
        Command::Nodes { network, client } => net::nodes(&g, network, client),
        Command::Status { network, client } => account::status(&g, network, client),
        Command::Ls => account::ls(&g),
        Command::Share {
            file, gateway_url, ..
        } => {
            let url = gateway_url
                .or_else(|| g.file.gateway_url.clone())
                .unwrap_or_else(|| "http://127.0.0.1:8080".to_owned());
            account::share(&g, &file, &url)
        }
        Command::Rm {
            name,
            yes,
            force,
            network,
            client,
        } => account::rm(&g, network, client, &name, yes, force),
        Command::Export { output, passphrase } => {
            account::export(&g, output.as_deref(), &passphrase)
        }
        Command::Import { file, passphrase } => account::import(&g, &file, &passphrase),
        Command::Pin { command } => match command {
            PinCommand::Add {
                file,
                network,
                client,
            } => account::pin_add(&g, network, client, &file),
            PinCommand::Rm {
                file,
                network,
                client,
            } => account::pin_rm(&g, network, client, &file),
            PinCommand::Ls {
                file,
                network,
                client,
            } => account::pin_ls(&g, network, client, file.as_deref()),
        },
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "mosaic", &mut io::stdout());
            Ok(())
        }
        Command::Put {
            file,
            name,
            recursive: true,
            coding,
            network,
            client,
        } => net::put_dir(&g, network, client, &file, coding.params()?, name),
        Command::Put {
            file,
            name,
            recursive: false,
            coding,
            network,
            client,
        } => net::put(
            &g,
            network,
            client,
            net::PutSpec {
                file,
                params: coding.params()?,
                public: coding.public,
                convergent: coding.convergent,
                media_type: coding.media_type,
                name,
            },
        ),
        Command::Get {
            cap,
            output,
            network,
            client,
        } => net::get(&g, network, client, &cap, output.as_deref()),
        Command::Encode { file, coding } => {
            let params = coding.params()?;
            let store = LocalStore::open(&dir).with_context(|| {
                format!("cannot open the local blob directory {}", dir.display())
            })?;
            cmd_encode(
                &g,
                &store,
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
        } => {
            let store = LocalStore::open(&dir).with_context(|| {
                format!("cannot open the local blob directory {}", dir.display())
            })?;
            if g.json && output.is_none() {
                return exit::fail(
                    exit::Code::Usage,
                    "with --json, stdout carries the report: write the file with -o OUT",
                );
            }
            cmd_decode(&store, &cap, output.as_deref(), offset, length)?;
            g.emit(serde_json::json!({"output": output}), || Ok(()))
        }
        Command::Inspect { cap } => {
            let store = LocalStore::open(&dir).with_context(|| {
                format!("cannot open the local blob directory {}", dir.display())
            })?;
            cmd_inspect(&g, &store, &cap)
        }
    }
}

/// `$XDG_DATA_HOME/mosaic`, else `~/.local/share/mosaic`.
fn cmd_encode(
    g: &Global,
    store: &LocalStore,
    path: &Path,
    params: Params,
    public: bool,
    convergent: bool,
    media_type: Option<String>,
) -> Result<()> {
    let open = || File::open(path).with_context(|| format!("cannot open {}", path.display()));
    let file = open()?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        bail!("{} is not a regular file", path.display());
    }
    let length = meta.len();
    let metadata = files::metadata_for(path, &meta, media_type);
    let access = files::access_for(path, length, params, public, convergent)?;

    let n = params.columns();
    let mut temps = Vec::with_capacity(n);
    let mut writers = Vec::with_capacity(n);
    for j in 0..n {
        let (tmp, f) = store.temp_file(&format!("col{j}"))?;
        temps.push(tmp);
        writers.push(BufWriter::with_capacity(1 << 20, f));
    }
    let result = encode(
        params,
        &access,
        &metadata,
        length,
        io::BufReader::new(file),
        &mut writers,
    );
    let manifest = match result {
        Ok(m) => m,
        Err(e) => {
            for t in &temps {
                let _ = fs::remove_file(t);
            }
            return Err(e).with_context(|| format!("cannot encode {}", path.display()));
        }
    };
    for ((tmp, w), hash) in temps.iter().zip(writers).zip(manifest.columns()) {
        let f = w.into_inner().map_err(|e| e.into_error())?;
        store.commit(tmp, f, hash)?;
    }
    let (tmp, mut f) = store.temp_file("manifest")?;
    f.write_all(manifest.as_bytes())?;
    store.commit(&tmp, f, &manifest.id())?;

    let cap = match &access {
        Access::Public => PublicId { id: manifest.id() }.to_string(),
        Access::Private(key) => ReadCap {
            id: manifest.id(),
            key: key.clone(),
        }
        .to_string(),
    };
    let value = serde_json::json!({
        "cap": cap,
        "id": manifest.id().to_hex(),
        "size": length,
        "columns": manifest.columns().iter().map(Hash::to_hex).collect::<Vec<_>>(),
    });
    g.emit(value, || {
        eprintln!(
            "encoded {} ({length} bytes) into {n} columns ({}+{}), any {} rebuild it; file id {}",
            path.display(),
            params.data_columns(),
            params.parity_columns(),
            params.data_columns(),
            manifest.id().fmt_short(),
        );
        println!("{cap}");
        Ok(())
    })
}

fn load_manifest(store: &LocalStore, id: &Hash) -> Result<Manifest> {
    let bytes = store.read_small(id, MAX_MANIFEST_LEN)?.ok_or_else(|| {
        anyhow!(
            "file {} is not in the local blob directory: its manifest blob is missing",
            id.fmt_short()
        )
    })?;
    Ok(Manifest::from_bytes_verified(&bytes, id)?)
}

fn cmd_decode(
    store: &LocalStore,
    cap: &str,
    output: Option<&Path>,
    offset: Option<u64>,
    length: Option<u64>,
) -> Result<()> {
    let cap: Cap = cap.parse()?;
    let manifest = load_manifest(store, &cap.id())?;
    let key = match &cap {
        Cap::Read(c) => Some(&c.key),
        Cap::Public(_) => None,
    };
    let mut decoder = Decoder::new(manifest.clone(), key)?;
    let mut columns: Vec<Option<File>> = manifest
        .columns()
        .iter()
        .map(|h| store.open_blob(h))
        .collect::<io::Result<_>>()?;
    let file_len = manifest.layout().length();
    let range = match (offset, length) {
        (None, None) => None,
        (o, l) => {
            let start = o.unwrap_or(0);
            let end = l.map_or(file_len, |l| start.saturating_add(l).min(file_len));
            Some(start..end.max(start))
        }
    };
    let run = |out: &mut dyn Write, decoder: &mut Decoder, columns: &mut [Option<File>]| {
        let mut out = BufWriter::with_capacity(1 << 20, out);
        let report = match &range {
            None => decode_file(decoder, columns, &mut out)?,
            Some(r) => decode_range(decoder, columns, r.clone(), &mut out)?,
        };
        out.flush()?;
        anyhow::Ok(report)
    };
    let report = match output {
        None => run(&mut io::stdout().lock(), &mut decoder, &mut columns)?,
        Some(path) => {
            let mut out = output::AtomicFile::create(path)?;
            let report = run(&mut out, &mut decoder, &mut columns)?;
            out.commit()?;
            report
        }
    };
    warn_faults(&report);
    Ok(())
}

fn warn_faults(report: &DecodeReport) {
    for (c, fault) in &report.faults {
        eprintln!("warning: column {c} is {fault}; the file was rebuilt from the others");
    }
}

fn cmd_inspect(g: &Global, store: &LocalStore, cap: &str) -> Result<()> {
    let cap: Cap = cap.parse()?;
    let manifest = load_manifest(store, &cap.id())?;
    if g.json {
        let layout = manifest.layout();
        let params = layout.params();
        let key = match &cap {
            Cap::Read(c) => Some(&c.key),
            Cap::Public(_) => None,
        };
        let metadata = Decoder::new(manifest.clone(), key).ok().map(|d| {
            let m = d.metadata();
            serde_json::json!({"name": m.name, "media_type": m.media_type})
        });
        let columns = manifest
            .columns()
            .iter()
            .map(|h| {
                Ok(serde_json::json!({"hash": h.to_hex(), "here": store.open_blob(h)?.is_some()}))
            })
            .collect::<io::Result<Vec<_>>>()?;
        println!(
            "{}",
            serde_json::json!({
                "id": manifest.id().to_hex(),
                "public_id": PublicId { id: manifest.id() }.to_string(),
                "suite": format!("{:?}", manifest.suite()),
                "length": layout.length(),
                "k": params.data_columns(),
                "m": params.parity_columns(),
                "segment_size": params.segment_size(),
                "segments": layout.segments(),
                "shard_len": layout.shard_len(),
                "column_len": layout.column_len(),
                "columns": columns,
                "metadata": metadata,
            })
        );
        return Ok(());
    }
    let layout = manifest.layout();
    let params = layout.params();
    let mut out = io::stdout().lock();
    writeln!(out, "file id      {}", manifest.id())?;
    writeln!(out, "public id    {}", PublicId { id: manifest.id() })?;
    writeln!(out, "suite        {:?}", manifest.suite())?;
    writeln!(out, "length       {} bytes", layout.length())?;
    writeln!(
        out,
        "coding       k={} m={}, segment {} bytes, {} segments, shard {} bytes",
        params.data_columns(),
        params.parity_columns(),
        params.segment_size(),
        layout.segments(),
        layout.shard_len()
    )?;
    writeln!(out, "column len   {} bytes", layout.column_len())?;
    for (j, h) in manifest.columns().iter().enumerate() {
        let here = store.open_blob(h)?.is_some();
        writeln!(
            out,
            "column {j:<3}   {h} {}",
            if here { "" } else { "(not here)" }
        )?;
    }
    let key = match &cap {
        Cap::Read(c) => Some(&c.key),
        Cap::Public(_) => None,
    };
    match Decoder::new(manifest, key) {
        Ok(d) => {
            let m = d.metadata();
            writeln!(out, "name         {}", m.name.as_deref().unwrap_or("-"))?;
            writeln!(
                out,
                "media type   {}",
                m.media_type.as_deref().unwrap_or("-")
            )?;
            if let Some(t) = m.modified {
                let secs = t
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_secs() as i64)
                    .unwrap_or_else(|e| -(e.duration().as_secs() as i64));
                writeln!(out, "modified     {secs} (unix seconds)")?;
            }
        }
        Err(e) => writeln!(out, "metadata     not readable: {e}")?,
    }
    Ok(())
}
