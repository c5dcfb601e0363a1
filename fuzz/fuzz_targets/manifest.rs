//! The manifest (mosaic-codec `manifest.rs`): bytes any node or gateway fetches and
//! parses before it knows whether they are what it asked for.
//!
//! Checks, for any bytes: no panic; a manifest that parses is exactly its bytes (one
//! encoding per manifest), its id is their hash and it parses again, verified, to the
//! same value; its geometry holds together (as many column hashes as columns, segment
//! spans that tile every column, a last segment that ends the file, sealed segments that
//! fit their shards); a reader can use it: a public one opens without a key (its
//! metadata was checked by the parse), a private one needs a key and refuses a wrong
//! one, and a manifest that does not parse is refused verified too.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use mosaic_codec::{
    COLUMN_ALIGN, ConvergenceSecret, DecodeError, Decoder, FileKey, Hash, Manifest, Params, TAG_LEN,
};

/// The key the seed corpus's private manifests are sealed with (src/seeds.rs): a
/// private manifest the fuzzer keeps intact opens, so the metadata past the tag is
/// reached too. Convergent (the empty file's, under secret `[7; 32]`), so that the
/// seeds' salts, derived from it, are the same at every run of the generator.
static SEED_KEY: LazyLock<FileKey> = LazyLock::new(|| {
    let secret = ConvergenceSecret::from_bytes([7; 32]);
    let params = Params::new(4096, 3, 2).expect("valid parameters");
    FileKey::convergent(&secret, params, 0, &[][..]).expect("the empty file")
});

fuzz_target!(|data: &[u8]| {
    let m = match Manifest::from_bytes(data) {
        Ok(m) => m,
        Err(e) => {
            assert!(!e.to_string().is_empty());
            assert!(Manifest::from_bytes_verified(data, &Hash::of(data)).is_err());
            return;
        }
    };
    assert_eq!(m.as_bytes(), data, "a manifest is its bytes");
    assert_eq!(m.id(), Hash::of(data));
    assert_eq!(
        Manifest::from_bytes_verified(data, &m.id()).as_ref(),
        Ok(&m)
    );
    assert_eq!(Manifest::from_bytes(m.as_bytes()).as_ref(), Ok(&m));

    let layout = *m.layout();
    let params = layout.params();
    let (k, n) = (params.data_columns(), params.columns());
    assert_eq!(m.columns().len(), n);
    assert!(k >= 1 && params.parity_columns() >= 1);
    assert!(layout.segments() >= 1);
    assert_eq!(layout.shard_len() % COLUMN_ALIGN, 0);
    let last = layout.segments() - 1;
    assert_eq!(layout.column_span(last).end, layout.column_len());
    assert_eq!(
        layout.plain_offset(last) + layout.plain_len(last) as u64,
        layout.length()
    );
    assert!(layout.sealed_len(last) <= k * layout.segment_shard_len(last));
    assert_eq!(layout.sealed_len(last), layout.plain_len(last) + TAG_LEN);
    if last > 0 {
        assert_eq!(layout.column_span(0), 0..layout.shard_len());
        assert_eq!(layout.column_span(last).start, last * layout.shard_len());
        assert!(layout.sealed_len(0) as u64 <= k as u64 * layout.shard_len());
        assert_eq!(layout.plain_len(0), params.segment_size() as usize);
    }
    if layout.length() > 0 {
        assert_eq!(
            layout.segments_for(0..layout.length()),
            0..layout.segments()
        );
    }

    if m.is_public() {
        let d = Decoder::new(m.clone(), None).expect("a public manifest's metadata is checked");
        assert_eq!(d.manifest(), &m);
        // A key given for a public file is ignored.
        assert!(Decoder::new(m.clone(), Some(&SEED_KEY)).is_ok());
    } else {
        assert!(matches!(
            Decoder::new(m.clone(), None),
            Err(DecodeError::KeyRequired)
        ));
        match Decoder::new(m.clone(), Some(&SEED_KEY)) {
            Ok(d) => assert_eq!(d.manifest(), &m),
            Err(DecodeError::WrongKey | DecodeError::BadMetadata(_)) => {}
            Err(e) => panic!("a private manifest failed to open with {e:?}"),
        }
    }
});
