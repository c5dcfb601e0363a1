//! Black-box tests of the offline codec commands: they run the real `mosaic` binary.

use std::{
    fs,
    path::{Path, PathBuf},
    process::{Command, Output},
};

struct Env {
    dir: tempfile::TempDir,
}

impl Env {
    fn new() -> Self {
        Self {
            dir: tempfile::tempdir().expect("tempdir"),
        }
    }
    fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }
    fn mosaic(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_mosaic"))
            .args(args)
            .env("MOSAIC_LOCAL_DIR", self.path("store"))
            .env("XDG_CONFIG_HOME", self.path("config"))
            .env("HOME", self.dir.path())
            .output()
            .expect("run mosaic")
    }
    fn ok(&self, args: &[&str]) -> Output {
        let out = self.mosaic(args);
        assert!(
            out.status.success(),
            "mosaic {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }
    fn write(&self, name: &str, len: usize) -> (PathBuf, Vec<u8>) {
        let data: Vec<u8> = (0..len).map(|i| (i * 7 + i / 251) as u8).collect();
        let p = self.path(name);
        fs::write(&p, &data).expect("write input");
        (p, data)
    }
    fn encode(&self, file: &Path, extra: &[&str]) -> String {
        let mut args = vec!["encode", file.to_str().expect("utf-8 path")];
        args.extend_from_slice(extra);
        String::from_utf8(self.ok(&args).stdout)
            .expect("utf-8")
            .trim()
            .to_owned()
    }
    fn column_paths(&self, cap: &str) -> Vec<PathBuf> {
        let out = String::from_utf8(self.ok(&["inspect", cap]).stdout).expect("utf-8");
        out.lines()
            .filter(|l| l.starts_with("column ") && !l.starts_with("column len"))
            .map(|l| {
                let hash = l.split_whitespace().nth(2).expect("hash");
                self.path("store").join("blobs").join(hash)
            })
            .collect()
    }
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn encode_then_decode_roundtrips() {
    let env = Env::new();
    let (file, data) = env.write("movie.mp4", 3 * (1 << 20) + 12_345);
    let cap = env.encode(&file, &[]);
    assert!(cap.starts_with("mr1"), "{cap}");
    let out = env.ok(&["decode", &cap]);
    assert!(out.stdout == data);
    let inspect = String::from_utf8(env.ok(&["inspect", &cap]).stdout).expect("utf-8");
    assert!(inspect.contains("name         movie.mp4"), "{inspect}");
    assert!(inspect.contains("media type   video/mp4"), "{inspect}");
    // A range.
    let out = env.ok(&["decode", &cap, "--offset", "1048570", "--length", "20"]);
    assert_eq!(out.stdout, data[1_048_570..1_048_590]);
}

#[test]
fn survives_m_lost_columns_and_fails_cleanly_beyond() {
    let env = Env::new();
    let (file, data) = env.write("f.bin", 2 * (1 << 20) + 1);
    let cap = env.encode(&file, &[]);
    let cols = env.column_paths(&cap);
    assert_eq!(cols.len(), 5);
    fs::remove_file(&cols[0]).expect("rm");
    fs::remove_file(&cols[3]).expect("rm");
    let out_path = env.path("out.bin");
    env.ok(&["decode", &cap, "-o", out_path.to_str().expect("utf-8")]);
    assert!(fs::read(&out_path).expect("read") == data);

    fs::remove_file(&cols[1]).expect("rm");
    let target = env.path("out2.bin");
    let out = env.mosaic(&["decode", &cap, "-o", target.to_str().expect("utf-8")]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("needs 3 columns but only 2 are usable"),
        "{err}"
    );
    for c in ["column 0 missing", "column 1 missing", "column 3 missing"] {
        assert!(err.contains(c), "{err}");
    }
    assert!(!target.exists(), "no partial output file");
    let leftovers: Vec<_> = fs::read_dir(env.dir.path())
        .expect("ls")
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains("partial"))
        .collect();
    assert!(leftovers.is_empty(), "temporary output removed");
}

#[test]
fn a_corrupt_column_is_named_and_the_file_still_decodes() {
    let env = Env::new();
    let (file, data) = env.write("f.bin", 500_000);
    let cap = env.encode(&file, &[]);
    let cols = env.column_paths(&cap);
    let mut bytes = fs::read(&cols[1]).expect("read");
    bytes[1234] ^= 0x40;
    fs::write(&cols[1], bytes).expect("write");
    let out = env.ok(&["decode", &cap]);
    assert!(out.stdout == data);
    assert!(
        stderr(&out).contains("column 1 is corrupt"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn public_files_decode_from_their_id_and_convergent_files_deduplicate() {
    let env = Env::new();
    let (file, data) = env.write("index.html", 10_000);
    let id = env.encode(&file, &["--public"]);
    assert!(id.starts_with("mi1"), "{id}");
    assert!(env.ok(&["decode", &id]).stdout == data);

    let a = env.encode(&file, &["--convergent"]);
    let b = env.encode(&file, &["--convergent"]);
    assert_eq!(a, b, "same content, same secret: same readcap");
    let c = env.encode(&file, &[]);
    assert_ne!(a, c, "random keys differ");
    // The secret is private to its owner.
    let secret = env.path("config/mosaic/keys/convergence.secret");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            fs::metadata(&secret).expect("secret").permissions().mode() & 0o777,
            0o600
        );
        fs::set_permissions(&secret, fs::Permissions::from_mode(0o644)).expect("chmod");
        let out = env.mosaic(&["encode", file.to_str().expect("utf-8"), "--convergent"]);
        // Exit 4: refused (docs/cli.md).
        assert_eq!(out.status.code(), Some(4));
        assert!(stderr(&out).contains("chmod 600"), "{}", stderr(&out));
    }
}

#[test]
fn bad_caps_and_wrong_keys_are_clear_errors() {
    let env = Env::new();
    let (file, _) = env.write("f.bin", 1000);
    let cap = env.encode(&file, &[]);
    let cases = [
        ("hello", "is not a Mosaic capability"),
        (&cap[..cap.len() - 3], "was it cut off"),
        ("mr2aaaa", "version 2 readcap"),
    ];
    for (bad, msg) in cases {
        let out = env.mosaic(&["decode", bad]);
        // Exit 7: malformed input.
        assert_eq!(out.status.code(), Some(7), "{bad}");
        assert!(stderr(&out).contains(msg), "{bad}: {}", stderr(&out));
    }
    // The right id with another key.
    let other = env.encode(&file, &[]);
    let cap_parsed: mosaic_codec::ReadCap = cap.parse().expect("cap");
    let other_parsed: mosaic_codec::ReadCap = other.parse().expect("cap");
    let forged = mosaic_codec::ReadCap {
        id: cap_parsed.id,
        key: other_parsed.key,
    }
    .to_string();
    let out = env.mosaic(&["decode", &forged]);
    // Exit 4: a wrong key is refused.
    assert_eq!(out.status.code(), Some(4));
    assert!(
        stderr(&out).contains("key does not open this file"),
        "{}",
        stderr(&out)
    );
    // An id that is not here.
    let missing = mosaic_codec::PublicId {
        id: mosaic_codec::Hash::of(b"nothing"),
    }
    .to_string();
    let out = env.mosaic(&["decode", &missing]);
    assert!(
        stderr(&out).contains("not in the local blob directory"),
        "{}",
        stderr(&out)
    );
    // Usage errors exit 2.
    assert_eq!(env.mosaic(&["encode"]).status.code(), Some(2));
    let out = env.mosaic(&["encode", file.to_str().expect("utf-8"), "-k", "0"]);
    assert!(
        stderr(&out).contains("k (data columns) must be at least 1"),
        "{}",
        stderr(&out)
    );
}
