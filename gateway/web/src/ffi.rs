//! The module's exports. One input buffer (the page writes into it at
//! `mosaic_input(len)`), one output buffer (`mosaic_output_ptr/len`, valid until the
//! next call). Functions return `>= 0` on success; on `-1` the output holds
//! `kind\nmessage` (kinds: `cap`, `key`, `corrupt`, `usage`).
//!
//! Files are handles (`u32`, from 1) into a table owned by this module: the page
//! never holds a pointer into Rust state except the transient buffers above and the
//! last opened segment's plaintext (`mosaic_plain_ptr/len`), which it copies at once.
//!
//! `unsafe` here is only the attributes that export symbols and the import of the
//! page's randomness; no raw pointer is dereferenced by Rust.
#![allow(unsafe_code)]

use std::cell::RefCell;

use crate::{
    file::{self, File, WebError},
    upload::Upload,
};

#[derive(Default)]
struct State {
    input: Vec<u8>,
    output: Vec<u8>,
    files: Vec<Option<File>>,
    /// The upload being coded (one at a time).
    upload: Option<Upload>,
}

thread_local! {
    static STATE: RefCell<State> = RefCell::new(State::default());
}

fn fail(state: &mut State, e: &WebError) -> i32 {
    state.output.clear();
    state
        .output
        .extend_from_slice(format!("{}\n{e}", e.kind()).as_bytes());
    -1
}

fn with_file(handle: u32, f: impl FnOnce(&mut File, &mut Vec<u8>) -> Result<i32, WebError>) -> i32 {
    STATE.with_borrow_mut(|state| {
        let State { files, output, .. } = &mut *state;
        let file = handle
            .checked_sub(1)
            .and_then(|i| files.get_mut(i as usize))
            .and_then(Option::as_mut);
        let result = match file {
            Some(file) => f(file, output),
            None => Err(WebError::Usage(format!("no open file {handle}"))),
        };
        result.unwrap_or_else(|e| fail(state, &e))
    })
}

/// A segment index from the page (a JavaScript number: exact below 2^53).
fn segment(index: f64) -> u64 {
    if index.is_finite() && index >= 0.0 {
        index as u64
    } else {
        u64::MAX
    }
}

/// The input buffer, resized to `len` bytes: the page writes its arguments here.
#[unsafe(no_mangle)]
pub extern "C" fn mosaic_input(len: usize) -> *mut u8 {
    STATE.with_borrow_mut(|s| {
        s.input.clear();
        s.input.resize(len, 0);
        s.input.as_mut_ptr()
    })
}

/// Where the last result is.
#[unsafe(no_mangle)]
pub extern "C" fn mosaic_output_ptr() -> *const u8 {
    STATE.with_borrow(|s| s.output.as_ptr())
}

/// How long the last result is.
#[unsafe(no_mangle)]
pub extern "C" fn mosaic_output_len() -> usize {
    STATE.with_borrow(|s| s.output.len())
}

/// Parses the cap in the input's first `len` bytes: 1 private, 0 public; output: the
/// id in hex.
#[unsafe(no_mangle)]
pub extern "C" fn mosaic_parse_cap(len: usize) -> i32 {
    STATE.with_borrow_mut(|state| {
        let text = String::from_utf8_lossy(&state.input[..len.min(state.input.len())]).into_owned();
        match file::parse_cap(&text) {
            Ok((id, private)) => {
                state.output = id.to_hex().into_bytes();
                i32::from(private)
            }
            Err(e) => fail(state, &e),
        }
    })
}

/// Opens a file: the input holds the cap (`cap_len` bytes) then the gateway's answer
/// for the whole manifest. Returns a handle (≥ 1); output: the file's info as JSON.
#[unsafe(no_mangle)]
pub extern "C" fn mosaic_open(cap_len: usize, answer_len: usize) -> i32 {
    STATE.with_borrow_mut(|state| {
        let input = std::mem::take(&mut state.input);
        let opened = match input
            .get(..cap_len)
            .zip(input.get(cap_len..cap_len + answer_len))
        {
            Some((cap, answer)) => File::open(&String::from_utf8_lossy(cap), answer),
            None => Err(WebError::Usage(
                "the input is shorter than the lengths given".into(),
            )),
        };
        state.input = input;
        match opened {
            Ok(file) => {
                state.output = file.info_json().into_bytes();
                let slot = state.files.iter().position(Option::is_none);
                let index = match slot {
                    Some(i) => {
                        state.files[i] = Some(file);
                        i
                    }
                    None => {
                        state.files.push(Some(file));
                        state.files.len() - 1
                    }
                };
                (index + 1) as i32
            }
            Err(e) => fail(state, &e),
        }
    })
}

/// Forgets a file (its key is zeroed as the decoder drops).
#[unsafe(no_mangle)]
pub extern "C" fn mosaic_close(handle: u32) {
    STATE.with_borrow_mut(|s| {
        if let Some(slot) = handle
            .checked_sub(1)
            .and_then(|i| s.files.get_mut(i as usize))
        {
            *slot = None;
        }
    })
}

/// Verifies the gateway's answer in the input's first `len` bytes for column
/// `column`'s span of the current segment, `segment`, straight into the decoder, and
/// marks that shard present. Call after `mosaic_begin`.
#[unsafe(no_mangle)]
pub extern "C" fn mosaic_verify(handle: u32, column: u32, segment_index: f64, len: usize) -> i32 {
    let input = STATE.with_borrow_mut(|s| std::mem::take(&mut s.input));
    let result = with_file(handle, |file, _| {
        let answer = input.get(..len).unwrap_or(&[]);
        file.verify_into_slot(column as usize, segment(segment_index), answer)?;
        Ok(0)
    });
    STATE.with_borrow_mut(|s| s.input = input);
    result
}

/// Starts segment `segment` of a file: no shard present.
#[unsafe(no_mangle)]
pub extern "C" fn mosaic_begin(handle: u32, segment_index: f64) -> i32 {
    with_file(handle, |file, _| {
        file.begin(segment(segment_index)).map(|()| 0)
    })
}

thread_local! {
    /// Where the last opened segment's plaintext is, inside its decoder.
    static PLAIN: std::cell::Cell<(usize, usize)> = const { std::cell::Cell::new((0, 0)) };
}

/// Opens the current segment from the shards verified; its plaintext is then at
/// `mosaic_plain_ptr/len` (inside the decoder, not copied), valid until the next call
/// on this file.
#[unsafe(no_mangle)]
pub extern "C" fn mosaic_open_segment(handle: u32, segment_index: f64) -> i32 {
    PLAIN.set((0, 0));
    with_file(handle, |file, _| {
        let plain = file.open_segment(segment(segment_index))?;
        PLAIN.set((plain.as_ptr() as usize, plain.len()));
        Ok(0)
    })
}

/// Where the last opened segment's plaintext is.
#[unsafe(no_mangle)]
pub extern "C" fn mosaic_plain_ptr() -> usize {
    PLAIN.get().0
}

/// How long it is.
#[unsafe(no_mangle)]
pub extern "C" fn mosaic_plain_len() -> usize {
    PLAIN.get().1
}

/// Starts a private upload of `length` bytes (a fresh key; any earlier upload is
/// dropped). Output: the geometry as JSON (see [`Upload::begin`]).
#[unsafe(no_mangle)]
pub extern "C" fn mosaic_upload_begin(length: f64) -> i32 {
    STATE.with_borrow_mut(|state| {
        state.upload = None;
        match Upload::begin(segment(length)) {
            Ok((upload, info)) => {
                state.upload = Some(upload);
                state.output = info.into_bytes();
                0
            }
            Err(e) => fail(state, &e),
        }
    })
}

/// Codes the next segment of the upload from the input's first `len` bytes (its
/// plaintext). Output: its `n` shards, one after the other.
#[unsafe(no_mangle)]
pub extern "C" fn mosaic_upload_segment(len: usize) -> i32 {
    STATE.with_borrow_mut(|state| {
        let State {
            input,
            output,
            upload,
            ..
        } = &mut *state;
        let result = match upload.as_mut() {
            Some(upload) => upload.segment(input.get(..len).unwrap_or(&[]), output),
            None => Err(WebError::Usage("no upload begun".into())),
        };
        match result {
            Ok(()) => 0,
            Err(e) => fail(state, &e),
        }
    })
}

/// Finishes the upload: the input holds the file's name (`name_len` bytes) then its
/// media type (`type_len`). Output: the readcap (112 characters) then the manifest.
/// The upload (and its key) is forgotten.
#[unsafe(no_mangle)]
pub extern "C" fn mosaic_upload_finish(name_len: usize, type_len: usize) -> i32 {
    STATE.with_borrow_mut(|state| {
        let Some(upload) = state.upload.take() else {
            return fail(state, &WebError::Usage("no upload begun".into()));
        };
        let text = |range: std::ops::Range<usize>| {
            String::from_utf8_lossy(state.input.get(range).unwrap_or(&[])).into_owned()
        };
        let name = text(0..name_len);
        let media_type = text(name_len..name_len + type_len);
        match upload.finish(&name, &media_type) {
            Ok((manifest, cap)) => {
                state.output = cap.into_bytes();
                state.output.extend_from_slice(&manifest);
                0
            }
            Err(e) => fail(state, &e),
        }
    })
}

#[link(wasm_import_module = "env")]
unsafe extern "C" {
    /// The page's `crypto.getRandomValues` over `len` bytes at `ptr`.
    fn mosaic_random(ptr: *mut u8, len: usize);
}

/// getrandom's custom backend (built with `--cfg getrandom_backend="custom"`): the
/// page's CSPRNG.
#[unsafe(no_mangle)]
unsafe extern "Rust" fn __getrandom_v03_custom(
    dest: *mut u8,
    len: usize,
) -> Result<(), getrandom::Error> {
    // SAFETY: getrandom passes a writable buffer of `len` bytes; the import fills it.
    unsafe { mosaic_random(dest, len) };
    Ok(())
}
