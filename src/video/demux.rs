//! MP4 (ISO BMFF) → the H.264 track's parameter sets and samples, for video-to-video input.
//!
//! Reads what t2v, ffmpeg and phones write: `moov/trak/mdia/minf/stbl` with an `avc1`/`avc3`
//! sample entry (`avcC`), sample sizes (`stsz` or `stz2`), sample-to-chunk (`stsc`) and chunk
//! offsets (`stco`/`co64`); 32- and 64-bit box sizes; `moov` before or after `mdat`. Samples are
//! returned in decode order with their presentation times (`stts` + `ctts`), by which
//! the decoded pictures are put in display order. Fragmented MP4
//! (`moof`), and every other codec, are refused with the ffmpeg command that converts them.
//!
//! Every length and offset comes from an untrusted file: all arithmetic is checked and every
//! slice bounded, so a corrupt file is an error, never a panic (tests/fuzz_parsers.rs).

/// How to turn anything this reader refuses into something it reads.
pub const CONVERT_HINT: &str = "convert it with: ffmpeg -i INPUT -c:v libx264 -pix_fmt yuv420p -an OUTPUT.mp4";

/// The H.264 track of an MP4.
#[derive(Debug)]
pub struct AvcTrack {
    /// NAL length prefix size in samples (1, 2 or 4).
    pub length_size: usize,
    pub sps: Vec<Vec<u8>>,
    pub pps: Vec<Vec<u8>>,
    /// Where each sample (length-prefixed NAL units) lies in the file, in decode order. Ranges,
    /// not copies: a corrupt table may point many samples at the same bytes.
    pub samples: Vec<std::ops::Range<usize>>,
    /// Each sample's presentation time (decode time from `stts` + offset from `ctts`), in the
    /// track's timescale: with B-frames the display order differs from the decode order.
    pub presentation: Vec<i64>,
    /// `avcC`'s profile_idc (66 Baseline, 77 Main, 100 High, …), for error messages.
    pub profile: u8,
    /// Ticks per second of `presentation` (`mdhd`), 0 if the file does not say.
    pub timescale: u32,
}

impl AvcTrack {
    /// Frames per second as a player reports it for a constant-rate track: (samples − 1) over
    /// the span of their presentation times (None for one frame or no timescale).
    pub fn fps(&self) -> Option<f64> {
        let (lo, hi) = (self.presentation.iter().min()?, self.presentation.iter().max()?);
        let n = self.presentation.len();
        (n > 1 && hi > lo && self.timescale > 0).then(|| (n - 1) as f64 * self.timescale as f64 / (hi - lo) as f64)
    }
}

/// A box: type, body range in the file.
#[derive(Clone, Copy)]
struct Bx {
    kind: [u8; 4],
    start: usize,
    end: usize,
}

/// The boxes directly inside `data[start..end]`.
fn children(data: &[u8], start: usize, end: usize) -> Result<Vec<Bx>, String> {
    let mut out = Vec::new();
    let mut at = start;
    while at < end {
        if end - at < 8 {
            return Err(format!("truncated box header at byte {at}"));
        }
        let size32 = u32::from_be_bytes([data[at], data[at + 1], data[at + 2], data[at + 3]]) as u64;
        let kind = [data[at + 4], data[at + 5], data[at + 6], data[at + 7]];
        let (header, size) = match size32 {
            0 => (8u64, (end - at) as u64), // to the end of the enclosing space
            1 => {
                if end - at < 16 {
                    return Err(format!("truncated 64-bit box size at byte {at}"));
                }
                let mut b = [0u8; 8];
                b.copy_from_slice(&data[at + 8..at + 16]);
                (16, u64::from_be_bytes(b))
            }
            s => (8, s),
        };
        if size < header || size > (end - at) as u64 {
            return Err(format!("box '{}' at byte {at} claims {size} bytes, {} are left", kind_str(&kind), end - at));
        }
        let body_end = at + size as usize;
        out.push(Bx { kind, start: at + header as usize, end: body_end });
        at = body_end;
    }
    Ok(out)
}

fn kind_str(k: &[u8; 4]) -> String {
    k.iter().map(|&b| if b.is_ascii_graphic() { b as char } else { '?' }).collect()
}

fn find(boxes: &[Bx], kind: &[u8; 4]) -> Option<Bx> {
    boxes.iter().copied().find(|b| &b.kind == kind)
}

/// A bounds-checked big-endian reader over one box body.
struct Rd<'a> {
    d: &'a [u8],
    at: usize,
    what: &'static str,
}

impl<'a> Rd<'a> {
    fn new(data: &'a [u8], b: Bx, what: &'static str) -> Rd<'a> {
        Rd { d: &data[b.start..b.end], at: 0, what }
    }
    fn bytes(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.d.len()).ok_or_else(|| format!("'{}' box is truncated", self.what))?;
        let s = &self.d[self.at..end];
        self.at = end;
        Ok(s)
    }
    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.bytes(1)?[0])
    }
    fn u16(&mut self) -> Result<u16, String> {
        let b = self.bytes(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }
    fn u32(&mut self) -> Result<u32, String> {
        let b = self.bytes(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn u64(&mut self) -> Result<u64, String> {
        let b = self.bytes(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_be_bytes(a))
    }
    /// A table of `count` entries of `entry` bytes: checks the count against the box size
    /// first, so a huge count cannot make us allocate before failing.
    fn table(&mut self, count: u32, entry: usize) -> Result<(), String> {
        let need = (count as usize).checked_mul(entry);
        match need {
            Some(n) if n <= self.d.len() - self.at => Ok(()),
            _ => Err(format!("'{}' box lists {count} entries but is only {} bytes", self.what, self.d.len())),
        }
    }
}

/// Parses `data` as an MP4 and returns its first H.264 video track.
pub fn read_avc(data: &[u8]) -> Result<AvcTrack, String> {
    let top = children(data, 0, data.len())?;
    if find(&top, b"ftyp").is_none() && find(&top, b"moov").is_none() {
        return Err("not an MP4 file (no 'ftyp' or 'moov' box)".into());
    }
    if find(&top, b"moof").is_some() {
        return Err(format!("fragmented MP4 (moof boxes) is not supported; {CONVERT_HINT}"));
    }
    let moov = find(&top, b"moov").ok_or("no 'moov' box (the file is incomplete: was the recording stopped cleanly?)")?;
    let mut codecs = Vec::new();
    for trak in children(data, moov.start, moov.end)?.into_iter().filter(|b| &b.kind == b"trak") {
        let tb = children(data, trak.start, trak.end)?;
        let Some(mdia) = find(&tb, b"mdia") else { continue };
        let mb = children(data, mdia.start, mdia.end)?;
        let Some(hdlr) = find(&mb, b"hdlr") else { continue };
        // mdhd: version/flags, then creation and modification times (32 or 64 bits), timescale.
        let timescale = match find(&mb, b"mdhd") {
            Some(m) => {
                let mut r = Rd::new(data, m, "mdhd");
                let v = r.u8()?;
                r.bytes(3 + if v == 1 { 16 } else { 8 })?;
                r.u32()?
            }
            None => 0,
        };
        let mut r = Rd::new(data, hdlr, "hdlr");
        r.bytes(8)?; // version/flags, pre_defined
        if r.bytes(4)? != b"vide" {
            continue;
        }
        let minf = find(&mb, b"minf").ok_or("video track without 'minf'")?;
        let stbl = find(&children(data, minf.start, minf.end)?, b"stbl").ok_or("video track without 'stbl'")?;
        let sb = children(data, stbl.start, stbl.end)?;
        let stsd = find(&sb, b"stsd").ok_or("video track without 'stsd'")?;
        let entries = children(data, stsd.start.saturating_add(8).min(stsd.end), stsd.end)?;
        let Some(entry) = entries.first().copied() else { return Err("empty 'stsd' (no sample description)".into()) };
        if &entry.kind != b"avc1" && &entry.kind != b"avc3" {
            codecs.push(kind_str(&entry.kind));
            continue;
        }
        // VisualSampleEntry: 8 bytes SampleEntry + 70 bytes of visual fields, then child boxes.
        let inner = entry.start.checked_add(78).filter(|&s| s <= entry.end).ok_or("truncated 'avc1' sample entry")?;
        let avcc = find(&children(data, inner, entry.end)?, b"avcC").ok_or("'avc1' sample entry without 'avcC'")?;
        let (length_size, profile, sps, pps) = parse_avcc(data, avcc)?;
        let samples = samples(data, &sb)?;
        let presentation = presentation_times(data, &sb, samples.len())?;
        return Ok(AvcTrack { length_size, sps, pps, samples, presentation, profile, timescale });
    }
    if codecs.is_empty() {
        Err("no video track".into())
    } else {
        Err(format!("the video track is '{}', not H.264; {CONVERT_HINT}", codecs.join(", ")))
    }
}

type Avcc = (usize, u8, Vec<Vec<u8>>, Vec<Vec<u8>>);

fn parse_avcc(data: &[u8], b: Bx) -> Result<Avcc, String> {
    let mut r = Rd::new(data, b, "avcC");
    let version = r.u8()?;
    if version != 1 {
        return Err(format!("'avcC' version {version} is not 1"));
    }
    let profile = r.u8()?;
    r.bytes(2)?; // compatibility, level
    let length_size = (r.u8()? & 3) as usize + 1;
    if length_size == 3 {
        return Err("'avcC' NAL length size 3 is not allowed".into());
    }
    let n_sps = (r.u8()? & 31) as usize;
    let mut sps = Vec::with_capacity(n_sps);
    for _ in 0..n_sps {
        let n = r.u16()? as usize;
        sps.push(r.bytes(n)?.to_vec());
    }
    let n_pps = r.u8()? as usize;
    let mut pps = Vec::with_capacity(n_pps);
    for _ in 0..n_pps {
        let n = r.u16()? as usize;
        pps.push(r.bytes(n)?.to_vec());
    }
    if sps.is_empty() || pps.is_empty() {
        return Err("'avcC' has no SPS or no PPS".into());
    }
    Ok((length_size, profile, sps, pps))
}

/// Every sample's bytes, from the sample table.
fn samples(data: &[u8], sb: &[Bx]) -> Result<Vec<std::ops::Range<usize>>, String> {
    // Sample sizes.
    let sizes: Vec<u64> = if let Some(stsz) = find(sb, b"stsz") {
        let mut r = Rd::new(data, stsz, "stsz");
        r.u32()?;
        let uniform = r.u32()?;
        let count = r.u32()?;
        if uniform != 0 {
            // one size for all: bound the count by what the file could hold
            if count as u64 > data.len() as u64 / uniform.max(1) as u64 {
                return Err(format!("'stsz' lists {count} samples of {uniform} bytes, more than the file holds"));
            }
            vec![uniform as u64; count as usize]
        } else {
            r.table(count, 4)?;
            (0..count).map(|_| r.u32().map(u64::from)).collect::<Result<_, _>>()?
        }
    } else if let Some(stz2) = find(sb, b"stz2") {
        let mut r = Rd::new(data, stz2, "stz2");
        r.u32()?;
        r.bytes(3)?;
        let field = r.u8()?;
        let count = r.u32()?;
        match field {
            16 => {
                r.table(count, 2)?;
                (0..count).map(|_| r.u16().map(u64::from)).collect::<Result<_, _>>()?
            }
            8 => {
                r.table(count, 1)?;
                (0..count).map(|_| r.u8().map(u64::from)).collect::<Result<_, _>>()?
            }
            4 => {
                r.table(count.div_ceil(2), 1)?;
                let bytes = r.bytes(count.div_ceil(2) as usize)?;
                (0..count as usize).map(|i| Ok(u64::from(if i % 2 == 0 { bytes[i / 2] >> 4 } else { bytes[i / 2] & 15 }))).collect::<Result<_, String>>()?
            }
            f => return Err(format!("'stz2' field size {f} is not 4, 8 or 16")),
        }
    } else {
        return Err("no sample size table ('stsz')".into());
    };
    // Chunk offsets.
    let offsets: Vec<u64> = if let Some(stco) = find(sb, b"stco") {
        let mut r = Rd::new(data, stco, "stco");
        r.u32()?;
        let n = r.u32()?;
        r.table(n, 4)?;
        (0..n).map(|_| r.u32().map(u64::from)).collect::<Result<_, _>>()?
    } else if let Some(co64) = find(sb, b"co64") {
        let mut r = Rd::new(data, co64, "co64");
        r.u32()?;
        let n = r.u32()?;
        r.table(n, 8)?;
        (0..n).map(|_| r.u64()).collect::<Result<_, _>>()?
    } else {
        return Err("no chunk offset table ('stco'/'co64')".into());
    };
    // Sample-to-chunk runs: (first chunk, 1-based; samples per chunk).
    let stsc = find(sb, b"stsc").ok_or("no sample-to-chunk table ('stsc')")?;
    let mut r = Rd::new(data, stsc, "stsc");
    r.u32()?;
    let n = r.u32()?;
    r.table(n, 12)?;
    let mut runs = Vec::with_capacity(n as usize);
    for _ in 0..n {
        let first = r.u32()?;
        let per = r.u32()?;
        r.u32()?; // sample description index
        runs.push((first, per));
    }
    let mut out = Vec::with_capacity(sizes.len());
    let mut next = 0usize;
    for (ci, &off) in offsets.iter().enumerate() {
        let chunk = ci as u64 + 1;
        let per = runs.iter().rev().find(|&&(first, _)| first as u64 <= chunk).map(|&(_, p)| p).unwrap_or(0);
        let mut at = off;
        for _ in 0..per {
            let Some(&size) = sizes.get(next) else { break };
            let end = at.checked_add(size).filter(|&e| e <= data.len() as u64).ok_or_else(|| {
                format!("sample {next} (bytes {at}..+{size}) lies outside the file ({} bytes): truncated or corrupt", data.len())
            })?;
            out.push(at as usize..end as usize);
            at = end;
            next += 1;
        }
    }
    if next != sizes.len() {
        return Err(format!("the chunk tables place {next} of {} samples", sizes.len()));
    }
    Ok(out)
}

/// Presentation time per sample: decode times from `stts` (missing: one tick per sample) plus
/// composition offsets from `ctts` (version 0 unsigned, version 1 signed; missing: none).
fn presentation_times(data: &[u8], sb: &[Bx], n: usize) -> Result<Vec<i64>, String> {
    let runs = |kind: &[u8; 4], what: &'static str| -> Result<Option<(u8, Vec<(u32, u32)>)>, String> {
        let Some(b) = find(sb, kind) else { return Ok(None) };
        let mut r = Rd::new(data, b, what);
        let version = r.u8()?;
        r.bytes(3)?;
        let count = r.u32()?;
        r.table(count, 8)?;
        Ok(Some((version, (0..count).map(|_| Ok((r.u32()?, r.u32()?))).collect::<Result<_, String>>()?)))
    };
    let mut dts = Vec::with_capacity(n);
    let mut t = 0i64;
    if let Some((_, stts)) = runs(b"stts", "stts")? {
        'fill: for (count, delta) in stts {
            for _ in 0..count {
                if dts.len() == n {
                    break 'fill;
                }
                dts.push(t);
                t = t.saturating_add(delta as i64);
            }
        }
    }
    while dts.len() < n {
        dts.push(t);
        t = t.saturating_add(1);
    }
    if let Some((version, ctts)) = runs(b"ctts", "ctts")? {
        let mut i = 0;
        'add: for (count, off) in ctts {
            let off = if version == 0 { off as i64 } else { off as i32 as i64 };
            for _ in 0..count {
                if i == n {
                    break 'add;
                }
                dts[i] = dts[i].saturating_add(off);
                i += 1;
            }
        }
    }
    Ok(dts)
}

/// A sample's length-prefixed NAL units → Annex B (start codes), as the decoder wants them.
pub fn to_annex_b(sample: &[u8], length_size: usize, out: &mut Vec<u8>) -> Result<(), String> {
    let mut at = 0usize;
    while at < sample.len() {
        let head = sample.get(at..at + length_size).ok_or("a NAL length prefix is cut off")?;
        let n = head.iter().fold(0usize, |acc, &b| (acc << 8) | b as usize);
        at += length_size;
        let nal = at.checked_add(n).and_then(|e| sample.get(at..e)).ok_or("a NAL unit runs past the end of its sample")?;
        out.extend_from_slice(&[0, 0, 0, 1]);
        out.extend_from_slice(nal);
        at += n;
    }
    Ok(())
}
