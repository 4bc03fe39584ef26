// Wan's 3-D rotary position embedding applied in place to q or k rows [B·L, H·D] (diffusers'
// WanAttnProcessor `apply_rotary_emb`, interleaved pairs): for channel pair j of every head,
//   x[2j]   ← x[2j]·cos[2j] − x[2j+1]·sin[2j+1]
//   x[2j+1] ← x[2j]·sin[2j+1] + x[2j+1]·cos[2j]
// where column c of the per-token tables reads the axis table of the axis that *split* assigns c
// to (frame, row or column position of the token) at the frequency its *build* position gives.
// The host fills `table` with (cos, sin) of pos·freq_j for every axis position and pair j, so the
// tables never exist per token (at 32,760 tokens they would be 2 × 16.8 MB).
//
// One invocation per channel pair; pure bandwidth. Rows are chunked by the host, `row0` is this
// chunk's first global row.

struct Params {
    pairs: u32,     // pairs in this dispatch: rows × H × D/2
    half: u32,      // D/2
    heads: u32,
    tokens: u32,    // L (rows of one batch item)
    row0: u32,      // global row of this dispatch's first row
    x_off: u32,
    t_off: u32,     // table window shift, in vec2 units
    hh: u32,        // post-patch height H'
    ww: u32,        // post-patch width W'
    ff: u32,        // post-patch frames F'
    split_h: u32,   // first column of the height part
    split_w: u32,   // first column of the width part
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> x: array<f32>;
// Rows: F' frame positions, then H' height positions, then W' width positions; D/2 (cos, sin)
// pairs each.
@group(0) @binding(2) var<storage, read> table: array<vec2<f32>>;

// Table row of column `c` for the token at (f, h, w).
fn table_row(c: u32, f: u32, h: u32, w: u32) -> u32 {
    if (c < p.split_h) {
        return f;
    }
    if (c < p.split_w) {
        return p.ff + h;
    }
    return p.ff + p.hh + w;
}

@compute @workgroup_size(256)
fn rope_inplace(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = wg_linear(wid, nwg) * 256u + lid;
    if (i >= p.pairs) {
        return;
    }
    let j = i % p.half;
    let local_row = i / (p.half * p.heads);
    let tok = (p.row0 + local_row) % p.tokens;
    let w = tok % p.ww;
    let h = (tok / p.ww) % p.hh;
    let f = tok / (p.ww * p.hh);
    let c = table[p.t_off + table_row(2u * j, f, h, w) * p.half + j].x;
    let s = table[p.t_off + table_row(2u * j + 1u, f, h, w) * p.half + j].y;
    let at = p.x_off + 2u * i;
    let x1 = x[at];
    let x2 = x[at + 1u];
    x[at] = x1 * c - x2 * s;
    x[at + 1u] = x1 * s + x2 * c;
}
