//! Fuzzing the parsers that read user files, on the stable toolchain: MP4/H.264 (demuxer and
//! OpenH264 decoder), GIF and PNG frames, the safetensors header, the restricted pickle reader,
//! and config.yaml / scheduler_config.json.
//!
//! cargo-fuzz needs nightly, so this is a small mutation fuzzer run as an ordinary test. Each
//! target starts from its committed seed corpus (`tests/fuzz/corpus/<target>/`), first replays
//! every saved regression input (`tests/fuzz/regressions/<target>/`: crashes found earlier,
//! each must now give an error or a value, never a panic), then for `T2V_FUZZ_SECONDS` seconds
//! (default 3 per target) applies stacked random mutations — bit flips, interesting integers
//! (0, 1, −1, 2³¹, sizes near the input's length) in 1/2/4/8 bytes of either endianness,
//! inserted/deleted/duplicated ranges, splices with other corpus inputs, and format tokens from
//! a per-target dictionary (box names, JSON/YAML syntax, pickle opcodes) — and runs the parser
//! under `catch_unwind`. A panic fails the test, writes the input under
//! `target/fuzz-crashes/`, and says to commit it to the regressions folder with the fix.
//!
//! Without compiler instrumentation there is no coverage map; as a stand-in, an input whose
//! outcome is new (the error message with its numbers removed, or the shape of a success) joins
//! the working corpus, so mutations build on inputs that got further into the parser.
//! `T2V_FUZZ_SEED` picks the random stream (default: fixed, so CI is reproducible).

use std::collections::HashSet;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

#[allow(dead_code)]
#[path = "../src/cli/settings.rs"]
mod settings;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz")
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // splitmix64
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

fn mutate(base: &[u8], pool: &[Vec<u8>], dict: &[&[u8]], rng: &mut Rng) -> Vec<u8> {
    let mut v = base.to_vec();
    for _ in 0..1 + rng.below(4) {
        let len = v.len();
        match rng.below(10) {
            9 if len > 0 => {
                // a number in text (JSON, YAML) replaced by an interesting one
                let from = rng.below(len);
                if let Some(a) = v[from..].iter().position(|b| b.is_ascii_digit()).map(|i| from + i) {
                    let b = v[a..].iter().position(|b| !b.is_ascii_digit()).map_or(len, |i| a + i);
                    let nums: [&[u8]; 10] = [b"0", b"1", b"-1", b"255", b"65535", b"4294967295", b"4294967296", b"9223372036854775807", b"18446744073709551615", b"99999999999999999999"];
                    v.splice(a..b, nums[rng.below(nums.len())].iter().copied());
                }
            }
            0 if len > 0 => {
                let i = rng.below(len);
                v[i] ^= 1 << rng.below(8);
            }
            1 if len > 0 => {
                let i = rng.below(len);
                v[i] = [0u8, 1, 0x7f, 0x80, 0xff, b'0', b'9', b' '][rng.below(8)];
            }
            2 if len > 0 => {
                // an interesting integer, 1/2/4/8 bytes, big- or little-endian
                let vals: [u64; 9] = [0, 1, u64::MAX, 0x7fff_ffff, 0x8000_0000, len as u64, len as u64 + 1, 16, 0xffff];
                let x = vals[rng.below(vals.len())];
                let n = [1usize, 2, 4, 8][rng.below(4)];
                let bytes = if rng.below(2) == 0 { x.to_be_bytes()[8 - n..].to_vec() } else { x.to_le_bytes()[..n].to_vec() };
                let i = rng.below(len);
                for (k, b) in bytes.iter().enumerate() {
                    if i + k < len {
                        v[i + k] = *b;
                    }
                }
            }
            3 if len > 1 => {
                let i = rng.below(len);
                let n = 1 + rng.below((len - i).min(64));
                v.drain(i..i + n);
            }
            4 if len > 0 => {
                let i = rng.below(len);
                let n = 1 + rng.below((len - i).min(64));
                let chunk = v[i..i + n].to_vec();
                let at = rng.below(len + 1);
                v.splice(at..at, chunk);
            }
            5 => {
                let t = dict[rng.below(dict.len())];
                let at = rng.below(len + 1);
                if rng.below(2) == 0 || at + t.len() > len {
                    v.splice(at..at, t.iter().copied());
                } else {
                    v[at..at + t.len()].copy_from_slice(t);
                }
            }
            6 if !pool.is_empty() => {
                let other = &pool[rng.below(pool.len())];
                let (a, b) = (rng.below(len + 1), rng.below(other.len() + 1));
                v.truncate(a);
                v.extend_from_slice(&other[b..]);
            }
            7 if len > 0 => v.truncate(rng.below(len)),
            _ => {
                let at = rng.below(len + 1);
                v.insert(at, rng.next() as u8);
            }
        }
        if v.len() > 1 << 20 {
            v.truncate(1 << 20);
        }
    }
    v
}

/// An outcome as a corpus signal: errors without their numbers, successes by shape.
fn signature(r: Result<String, String>) -> String {
    let s = match r {
        Ok(s) => format!("ok {s}"),
        Err(e) => format!("err {e}"),
    };
    // Keep the words, drop what varies with the input's content rather than with the path
    // taken: numbers, hex, quoted names (any token with a non-letter in it).
    let words: Vec<&str> = s
        .split_whitespace()
        .map(|w| w.trim_end_matches([':', ',', ';', '.', ')']))
        .filter(|w| !w.is_empty() && w.chars().all(char::is_alphabetic))
        .take(10)
        .collect();
    words.join(" ")
}

fn read_dir(p: &Path) -> Vec<Vec<u8>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(p).map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect()).unwrap_or_default();
    files.sort();
    files.iter().filter(|f| f.is_file() && !f.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.'))).map(|f| std::fs::read(f).unwrap()).collect()
}

fn seconds() -> f64 {
    std::env::var("T2V_FUZZ_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(3.0)
}

fn fuzz(name: &str, dict: &[&[u8]], run: &dyn Fn(&[u8]) -> Result<String, String>) {
    let mut pool = read_dir(&root().join("corpus").join(name));
    assert!(!pool.is_empty(), "tests/fuzz/corpus/{name}/ is empty");
    let regressions = read_dir(&root().join("regressions").join(name));
    let crash = |input: &[u8], what: &str| -> ! {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/fuzz-crashes");
        let _ = std::fs::create_dir_all(&dir);
        let h = input.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| (h ^ b as u64).wrapping_mul(0x100_0000_01b3));
        let path = dir.join(format!("{name}-{h:016x}.bin"));
        let _ = std::fs::write(&path, input);
        panic!("fuzz {name}: the parser panicked ({what}) on {} bytes, saved at {}; fix it and commit the input to tests/fuzz/regressions/{name}/", input.len(), path.display());
    };
    for (i, input) in regressions.iter().enumerate() {
        if catch_unwind(AssertUnwindSafe(|| run(input))).is_err() {
            crash(input, &format!("regression input {i}"));
        }
    }
    let mut seen = HashSet::new();
    for input in &pool {
        match catch_unwind(AssertUnwindSafe(|| run(input))) {
            Ok(r) => {
                seen.insert(signature(r));
            }
            Err(_) => crash(input, "seed input"),
        }
    }
    let seed = std::env::var("T2V_FUZZ_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(0x7432_7600u64 ^ name.len() as u64);
    let mut rng = Rng(seed);
    let t0 = Instant::now();
    let budget = Duration::from_secs_f64(seconds());
    let mut execs = 0u64;
    let mut oks = 0u64;
    while t0.elapsed() < budget {
        let base = pool[rng.below(pool.len())].clone();
        let input = mutate(&base, &pool, dict, &mut rng);
        execs += 1;
        match catch_unwind(AssertUnwindSafe(|| run(&input))) {
            Ok(r) => {
                oks += r.is_ok() as u64;
                if seen.insert(signature(r)) && pool.len() < 2000 {
                    pool.push(input);
                }
            }
            Err(_) => crash(&input, "mutated input"),
        }
    }
    eprintln!(
        "fuzz {name}: {execs} inputs in {:.1} s (seed {seed}), {oks} parsed, {} distinct outcomes, corpus {} → {}, {} regression inputs replayed",
        t0.elapsed().as_secs_f64(),
        seen.len(),
        read_dir(&root().join("corpus").join(name)).len(),
        pool.len(),
        regressions.len()
    );
}

#[test]
fn fuzz_mp4_h264() {
    let dict: &[&[u8]] = &[b"moov", b"trak", b"mdia", b"minf", b"stbl", b"stsd", b"avc1", b"avcC", b"stsz", b"stz2", b"stco", b"co64", b"stsc", b"mdat", b"moof", b"hdlr", b"vide", b"ftyp", &[0, 0, 0, 1], &[0, 0, 0, 1, 0x67], &[0, 0, 0, 1, 0x68]];
    fuzz("mp4", dict, &|d| t2v::video::decode_mp4(d).map(|f| format!("{} frames {}x{}", f.len(), f[0].width, f[0].height)));
}

#[test]
fn fuzz_gif_png_frames() {
    let dict: &[&[u8]] = &[b"GIF89a", b"NETSCAPE2.0", &[0x21, 0xf9, 4], &[0x2c], &[0x3b], b"\x89PNG\r\n\x1a\n", b"IHDR", b"IDAT", b"PLTE", b"tRNS", b"IEND"];
    fuzz("frames", dict, &|d| {
        if d.starts_with(b"GIF") {
            t2v::video::read_gif(d).map(|f| format!("gif {} frames", f.len()))
        } else {
            t2v::video::read_png(d).map(|(h, w, _)| format!("png {}", (h > 0) as u8 + (w > 0) as u8))
        }
    });
}

#[test]
fn fuzz_safetensors_header() {
    let dict: &[&[u8]] = &[b"{", b"}", b"[", b"]", b"\"", b":", b",", b"\"dtype\"", b"\"shape\"", b"\"data_offsets\"", b"\"F16\"", b"\"F32\"", b"\"BF16\"", b"\"I64\"", b"\"__metadata__\"", b"18446744073709551615", b"4294967296", b"-1", b"1e400", b"null", b"[0,0]"];
    // Inputs starting with '{' are a header alone, wrapped with its length and a data section
    // (so mutations that change its length still reach the JSON checks); others are whole files.
    fuzz("safetensors", dict, &|d| {
        let file = if d.first() == Some(&b'{') { [&(d.len() as u64).to_le_bytes()[..], d, &[0u8; 256][..]].concat() } else { d.to_vec() };
        t2v::weights::parse_safetensors_header(Path::new("fuzz.safetensors"), &file).map(|(t, m)| format!("{} tensors {} meta", t.len().min(3), m.len().min(3))).map_err(|e| e.to_string())
    });
}

#[test]
fn fuzz_pickle_reader() {
    // protocol 2 opcodes: PROTO, GLOBAL, BINPUT, BINGET, MARK, TUPLE, REDUCE, BINPERSID, EMPTY_DICT, SETITEMS, BININT, BINUNICODE, STOP
    let dict: &[&[u8]] = &[&[0x80, 2], b"c", b"q", b"h", b"(", b"t", b"R", b"Q", b"}", b"u", b"J", b"K", b"M", b"X", b".", b"\x85", b"\x86", b"\x87", b"ccollections\nOrderedDict\n", b"ctorch._utils\n_rebuild_tensor_v2\n", b"ctorch\nHalfStorage\n", b"cos\nsystem\n", &[0xff, 0xff, 0xff, 0x7f]];
    fuzz("pickle", dict, &|d| t2v::weights::pickle::load_state_dict(d).map(|t| format!("{} tensors", t.len().min(3))));
}

#[test]
fn fuzz_config_files() {
    let dict: &[&[u8]] = &[b"\n", b": ", b"- ", b"\"", b"'", b"{", b"}", b"[", b"]", b"&a ", b"*a", b"!!", b"~", b"null", b"-1", b"1e999", b".nan", b"18446744073709551616", b"prompt", b"num_frames", b"height", b"scheduler", b"\"_class_name\"", b"\"num_train_timesteps\"", b"\"timestep_spacing\"", b"\"steps_offset\"", b"\"beta_schedule\""];
    fuzz("config", dict, &|d| {
        let text = String::from_utf8_lossy(d);
        // config.yaml as `t2v generate` reads it, then its checks; and the same text as a
        // scheduler_config.json.
        let yaml = serde_yaml::from_str::<settings::Settings>(&text).map_err(|e| e.to_string()).and_then(|s| s.validate().map_err(|e| e.to_string()));
        let json = t2v::schedulers::SchedulerConfig::from_json(&text).map(|_| ()).map_err(|e| e.to_string());
        match (yaml, json) {
            (Ok(()), _) => Ok("settings".into()),
            (_, Ok(())) => Ok("scheduler".into()),
            (Err(a), Err(b)) => Err(format!("{} | {}", a.split_whitespace().take(5).collect::<Vec<_>>().join(" "), b.split_whitespace().take(5).collect::<Vec<_>>().join(" "))),
        }
    });
}
