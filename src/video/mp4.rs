//! A minimal ISO-BMFF (MP4) muxer for one H.264 video track (ISO/IEC 14496-12 and -15).
//!
//! Layout: `ftyp`, `moov`, `mdat` — the index comes first ("faststart"), so a browser can play
//! while downloading. All samples sit in one chunk, in display order (no B-frames, so no `ctts`
//! and no edit list). Samples are AVC length-prefixed (4-byte sizes); SPS/PPS live only in `avcC`.

use super::h264::Stream;

/// Movie-header timescale (ms), the usual choice; the track has its own finer timescale.
const MOVIE_TIMESCALE: u32 = 1000;

/// Samples beyond this would make the index itself large enough to need 64-bit box sizes;
/// no real video gets close (it is 74 hours at 1000 fps).
const MAX_SAMPLES: usize = 1 << 28;

/// Builds the whole file in memory; the caller writes it out atomically. A `comment` goes into
/// `moov/udta/©cmt` (QuickTime's comment; ffprobe shows it as the `comment` tag): `t2v serve`
/// keeps a run's provenance there.
pub fn mux(stream: &Stream, fps: u32, comment: Option<&str>) -> Result<Vec<u8>, String> {
    let n = stream.samples.len();
    if n == 0 || n > MAX_SAMPLES {
        return Err(format!("cannot mux {n} frames (1..={MAX_SAMPLES})"));
    }
    // avcC stores up to 31 SPS and 255 PPS with 16-bit lengths, and copies bytes 1..=3 of an SPS.
    let too_long = |sets: &[Vec<u8>]| sets.iter().any(|s| s.len() > u16::MAX as usize);
    if stream.sps.is_empty() || stream.sps.len() > 31 || stream.pps.is_empty() || stream.pps.len() > 255 {
        return Err(format!("unexpected parameter sets: {} SPS, {} PPS", stream.sps.len(), stream.pps.len()));
    }
    if stream.sps[0].len() < 4 || too_long(&stream.sps) || too_long(&stream.pps) {
        return Err("malformed SPS/PPS from the encoder".into());
    }
    let sample_bytes: Vec<Vec<u8>> = stream
        .samples
        .iter()
        .map(|s| {
            let mut b = Vec::with_capacity(s.nals.iter().map(|n| n.len() + 4).sum());
            for nal in &s.nals {
                b.extend_from_slice(&(nal.len() as u32).to_be_bytes());
                b.extend_from_slice(nal);
            }
            b
        })
        .collect();
    let payload: u64 = sample_bytes.iter().map(|b| b.len() as u64).sum();

    // Like ffmpeg, scale the track timescale to ≥ 10000 ticks/s so that players that round to
    // ticks lose nothing; a frame is then `delta` ticks.
    let delta = (10_000 / fps).max(1);
    let timescale = fps * delta;

    let ftyp = ftyp();
    // The chunk offset points past `moov`, whose size depends only on whether it is 32 or 64 bit.
    let mdat_header_len: u64 = if payload + 8 > u32::MAX as u64 { 16 } else { 8 };
    let mut co64 = false;
    let mut moov_buf = with_comment(moov(stream, &sample_bytes, timescale, delta, fps, 0, co64), comment)?;
    let mut offset = ftyp.len() as u64 + moov_buf.len() as u64 + mdat_header_len;
    if offset + payload > u32::MAX as u64 {
        co64 = true;
        offset += 4;
    }
    moov_buf = with_comment(moov(stream, &sample_bytes, timescale, delta, fps, offset, co64), comment)?;
    debug_assert_eq!(offset, ftyp.len() as u64 + moov_buf.len() as u64 + mdat_header_len);

    let mut out = Vec::with_capacity(offset as usize + payload as usize);
    out.extend_from_slice(&ftyp);
    out.extend_from_slice(&moov_buf);
    if mdat_header_len == 16 {
        out.extend_from_slice(&1u32.to_be_bytes());
        out.extend_from_slice(b"mdat");
        out.extend_from_slice(&(payload + 16).to_be_bytes());
    } else {
        out.extend_from_slice(&((payload + 8) as u32).to_be_bytes());
        out.extend_from_slice(b"mdat");
    }
    for b in &sample_bytes {
        out.extend_from_slice(b);
    }
    Ok(out)
}

/// Appends `udta/©cmt` to a finished `moov` box (and fixes its size).
fn with_comment(mut moov: Vec<u8>, comment: Option<&str>) -> Result<Vec<u8>, String> {
    let Some(text) = comment else { return Ok(moov) };
    if text.len() > u16::MAX as usize {
        return Err(format!("MP4 comment of {} bytes is longer than 65535", text.len()));
    }
    bx(&mut moov, b"udta", |b| {
        bx(b, b"\xa9cmt", |b| {
            u16be(b, text.len() as u16);
            u16be(b, 0x55c4); // ISO 639-2 "und", packed
            b.extend_from_slice(text.as_bytes());
        })
    });
    let size = moov.len() as u32;
    moov[..4].copy_from_slice(&size.to_be_bytes());
    Ok(moov)
}

/// Appends a box: 32-bit size, type, then whatever `body` writes.
fn bx(buf: &mut Vec<u8>, kind: &[u8; 4], body: impl FnOnce(&mut Vec<u8>)) {
    let start = buf.len();
    buf.extend_from_slice(&[0; 4]);
    buf.extend_from_slice(kind);
    body(buf);
    let size = (buf.len() - start) as u32;
    buf[start..start + 4].copy_from_slice(&size.to_be_bytes());
}

/// A "full box": box + version byte + 24-bit flags.
fn full(buf: &mut Vec<u8>, kind: &[u8; 4], version: u8, flags: u32, body: impl FnOnce(&mut Vec<u8>)) {
    bx(buf, kind, |b| {
        b.extend_from_slice(&((version as u32) << 24 | (flags & 0xff_ffff)).to_be_bytes());
        body(b);
    });
}

fn u16be(b: &mut Vec<u8>, v: u16) {
    b.extend_from_slice(&v.to_be_bytes());
}
fn u32be(b: &mut Vec<u8>, v: u32) {
    b.extend_from_slice(&v.to_be_bytes());
}
fn u64be(b: &mut Vec<u8>, v: u64) {
    b.extend_from_slice(&v.to_be_bytes());
}

/// Identity transform (16.16 fixed point, last column 2.30).
const MATRIX: [u32; 9] = [0x0001_0000, 0, 0, 0, 0x0001_0000, 0, 0, 0, 0x4000_0000];

fn ftyp() -> Vec<u8> {
    let mut b = Vec::new();
    bx(&mut b, b"ftyp", |b| {
        b.extend_from_slice(b"isom");
        u32be(b, 0x200);
        for brand in [b"isom", b"iso2", b"avc1", b"mp41"] {
            b.extend_from_slice(brand);
        }
    });
    b
}

/// Box version for a duration: 0 (32-bit fields) when it fits, which every reader handles.
fn version_for(duration: u64) -> u8 {
    if duration > u32::MAX as u64 {
        1
    } else {
        0
    }
}

fn moov(
    stream: &Stream,
    samples: &[Vec<u8>],
    timescale: u32,
    delta: u32,
    fps: u32,
    chunk_offset: u64,
    co64: bool,
) -> Vec<u8> {
    let n = samples.len() as u64;
    let media_duration = n * delta as u64;
    let movie_duration = (n * MOVIE_TIMESCALE as u64).div_ceil(fps as u64);
    let (w, h) = (stream.width as u32, stream.height as u32);

    let mut b = Vec::new();
    bx(&mut b, b"moov", |b| {
        let v = version_for(movie_duration);
        full(b, b"mvhd", v, 0, |b| {
            times(b, v, MOVIE_TIMESCALE, movie_duration);
            u32be(b, 0x0001_0000); // rate 1.0
            u16be(b, 0x0100); // volume 1.0
            b.extend_from_slice(&[0; 10]);
            MATRIX.iter().for_each(|&m| u32be(b, m));
            b.extend_from_slice(&[0; 24]); // pre_defined
            u32be(b, 2); // next_track_ID
        });
        bx(b, b"trak", |b| {
            let v = version_for(movie_duration);
            // flags: track enabled | in movie | in preview
            full(b, b"tkhd", v, 0x7, |b| {
                if v == 1 {
                    u64be(b, 0);
                    u64be(b, 0);
                } else {
                    u32be(b, 0);
                    u32be(b, 0);
                }
                u32be(b, 1); // track_ID
                u32be(b, 0);
                if v == 1 {
                    u64be(b, movie_duration);
                } else {
                    u32be(b, movie_duration as u32);
                }
                b.extend_from_slice(&[0; 8]);
                u16be(b, 0); // layer
                u16be(b, 0); // alternate_group
                u16be(b, 0); // volume: video
                u16be(b, 0);
                MATRIX.iter().for_each(|&m| u32be(b, m));
                u32be(b, w << 16);
                u32be(b, h << 16);
            });
            bx(b, b"mdia", |b| {
                let v = version_for(media_duration);
                full(b, b"mdhd", v, 0, |b| {
                    times(b, v, timescale, media_duration);
                    u16be(b, 0x55c4); // language "und" (ISO-639-2/T, 5 bits a letter)
                    u16be(b, 0);
                });
                full(b, b"hdlr", 0, 0, |b| {
                    u32be(b, 0);
                    b.extend_from_slice(b"vide");
                    b.extend_from_slice(&[0; 12]);
                    b.extend_from_slice(b"VideoHandler\0");
                });
                bx(b, b"minf", |b| {
                    full(b, b"vmhd", 0, 1, |b| b.extend_from_slice(&[0; 8]));
                    bx(b, b"dinf", |b| {
                        full(b, b"dref", 0, 0, |b| {
                            u32be(b, 1);
                            // flags 1: media data is in this file
                            full(b, b"url ", 0, 1, |_| {});
                        });
                    });
                    stbl(b, stream, samples, delta, chunk_offset, co64);
                });
            });
        });
    });
    b
}

/// creation/modification time (0 = unknown: a fixed value keeps output byte-reproducible),
/// timescale, duration: the shared start of `mvhd` and `mdhd`.
fn times(b: &mut Vec<u8>, version: u8, timescale: u32, duration: u64) {
    if version == 1 {
        u64be(b, 0);
        u64be(b, 0);
        u32be(b, timescale);
        u64be(b, duration);
    } else {
        u32be(b, 0);
        u32be(b, 0);
        u32be(b, timescale);
        u32be(b, duration as u32);
    }
}

fn stbl(b: &mut Vec<u8>, stream: &Stream, samples: &[Vec<u8>], delta: u32, chunk_offset: u64, co64: bool) {
    let n = samples.len() as u32;
    bx(b, b"stbl", |b| {
        full(b, b"stsd", 0, 0, |b| {
            u32be(b, 1);
            avc1(b, stream);
        });
        full(b, b"stts", 0, 0, |b| {
            u32be(b, 1);
            u32be(b, n);
            u32be(b, delta);
        });
        // Without stss every sample counts as a keyframe, so it is left out only when true.
        let sync: Vec<u32> =
            stream.samples.iter().enumerate().filter(|(_, s)| s.sync).map(|(i, _)| i as u32 + 1).collect();
        if sync.len() != samples.len() {
            full(b, b"stss", 0, 0, |b| {
                u32be(b, sync.len() as u32);
                sync.iter().for_each(|&s| u32be(b, s));
            });
        }
        full(b, b"stsc", 0, 0, |b| {
            u32be(b, 1);
            u32be(b, 1); // first_chunk
            u32be(b, n); // samples_per_chunk: everything in one chunk
            u32be(b, 1); // sample_description_index
        });
        full(b, b"stsz", 0, 0, |b| {
            u32be(b, 0); // sizes vary
            u32be(b, n);
            samples.iter().for_each(|s| u32be(b, s.len() as u32));
        });
        if co64 {
            full(b, b"co64", 0, 0, |b| {
                u32be(b, 1);
                u64be(b, chunk_offset);
            });
        } else {
            full(b, b"stco", 0, 0, |b| {
                u32be(b, 1);
                u32be(b, chunk_offset as u32);
            });
        }
    });
}

/// `avc1` visual sample entry with its `avcC` decoder configuration and `colr`.
fn avc1(b: &mut Vec<u8>, stream: &Stream) {
    bx(b, b"avc1", |b| {
        b.extend_from_slice(&[0; 6]);
        u16be(b, 1); // data_reference_index
        b.extend_from_slice(&[0; 16]); // pre_defined, reserved
        u16be(b, stream.width);
        u16be(b, stream.height);
        u32be(b, 0x0048_0000); // 72 dpi
        u32be(b, 0x0048_0000);
        u32be(b, 0);
        u16be(b, 1); // frame_count per sample
        let mut name = [0u8; 32];
        let label = b"t2v OpenH264";
        name[0] = label.len() as u8;
        name[1..=label.len()].copy_from_slice(label);
        b.extend_from_slice(&name);
        u16be(b, 0x0018); // depth: colour, no alpha
        u16be(b, 0xffff); // pre_defined = -1
        bx(b, b"avcC", |b| {
            // profile, compatibility flags and level are SPS bytes 1..=3 by definition.
            let sps0 = &stream.sps[0];
            b.push(1); // configurationVersion
            b.extend_from_slice(&[sps0[1], sps0[2], sps0[3]]);
            b.push(0xfc | 3); // 4-byte NAL lengths
            b.push(0xe0 | stream.sps.len() as u8);
            for sps in &stream.sps {
                u16be(b, sps.len() as u16);
                b.extend_from_slice(sps);
            }
            b.push(stream.pps.len() as u8);
            for pps in &stream.pps {
                u16be(b, pps.len() as u16);
                b.extend_from_slice(pps);
            }
        });
        // Same BT.601 limited-range signalling as the SPS VUI; some players read only this.
        bx(b, b"colr", |b| {
            b.extend_from_slice(b"nclx");
            u16be(b, 6); // colour_primaries: SMPTE 170M
            u16be(b, 6); // transfer_characteristics: SMPTE 170M
            u16be(b, 6); // matrix_coefficients: SMPTE 170M (BT.601)
            b.push(0); // full_range_flag = 0
        });
        bx(b, b"pasp", |b| {
            u32be(b, 1);
            u32be(b, 1);
        });
    });
}
