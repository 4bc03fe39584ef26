//! The comparison report, built from whatever records exist (so shards can finish in any
//! order and `t2v compare --report` can run at any time): `report.html` (self-contained: CSS,
//! SVG plots and the player script inline; videos referenced beside it), `results.json` and
//! `results.csv` with every number of every video.

use super::store::Record;
use crate::error::{Error, Result};
use plotters::prelude::*;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

/// Two-sided 95% Student t quantiles for 1..=30 degrees of freedom; above that 1.96.
const T95: [f64; 30] = [
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110,
    2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042,
];

/// Mean and the half-width of its 95% confidence interval (t · s / √n; None below 2 values).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Interval {
    pub mean: f64,
    pub half: Option<f64>,
    pub n: usize,
}

pub fn interval(values: &[f64]) -> Option<Interval> {
    let n = values.len();
    if n == 0 {
        return None;
    }
    let mean = values.iter().sum::<f64>() / n as f64;
    let half = (n >= 2).then(|| {
        let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
        let t = T95.get(n - 2).copied().unwrap_or(1.96);
        t * (var / n as f64).sqrt()
    });
    Some(Interval { mean, half, n })
}

/// A per-video number the report summarises: name, unit/scale note, how to read it.
struct Metric {
    name: &'static str,
    get: fn(&Record) -> Option<f64>,
    digits: usize,
    better: &'static str,
    /// Wall-clock numbers differ run to run; the report marks them (`<span class=t>`).
    timing: bool,
}

const METRICS: [Metric; 13] = [
    Metric { name: "CLIPSIM", get: |r| Some(r.clipsim), digits: 2, better: "higher", timing: false },
    Metric { name: "FETV CLIPScore", get: |r| Some(r.fetv_clipscore), digits: 4, better: "higher", timing: false },
    Metric { name: "CLIP-Temp", get: |r| r.clip_temp, digits: 4, better: "higher", timing: false },
    Metric { name: "Flicker (VBench)", get: |r| r.flicker, digits: 4, better: "higher", timing: false },
    Metric { name: "s / video", get: |r| Some(r.generate_s()), digits: 2, better: "lower", timing: true },
    Metric { name: "s / step", get: |r| Some(r.s_per_step), digits: 3, better: "lower", timing: true },
    Metric { name: "load s", get: |r| Some(r.load_s), digits: 2, better: "lower", timing: true },
    Metric { name: "peak GiB (plan)", get: |r| Some(gib(r.planned_peak_bytes)), digits: 3, better: "lower", timing: false },
    Metric { name: "peak GiB (measured)", get: |r| Some(gib(r.measured_peak_bytes)), digits: 3, better: "lower", timing: false },
    Metric { name: "Background consistency (VBench)", get: |r| r.background_consistency, digits: 4, better: "higher", timing: false },
    Metric { name: "Subject consistency (VBench)", get: |r| r.subject_consistency, digits: 4, better: "higher", timing: false },
    Metric { name: "Aesthetic quality (VBench)", get: |r| r.aesthetic_quality, digits: 4, better: "higher", timing: false },
    Metric { name: "Dynamic degree (VBench)", get: |r| r.dynamic_degree, digits: 2, better: "higher", timing: false },
];

/// The quality metrics (not costs) some record has a value of, in table order.
fn quality_metrics(records: &[Record]) -> Vec<usize> {
    (0..METRICS.len()).filter(|&i| !METRICS[i].timing && !METRICS[i].name.starts_with("peak") && records.iter().any(|r| (METRICS[i].get)(r).is_some())).collect()
}

fn gib(b: u64) -> f64 {
    b as f64 / (1u64 << 30) as f64
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// Records in report order: by model, prompt id, seed (the same whichever process made them).
pub fn sorted(mut records: Vec<Record>) -> Vec<Record> {
    records.sort_by(|a, b| (&a.model, &a.prompt_id, a.seed, &a.key).cmp(&(&b.model, &b.prompt_id, b.seed, &b.key)));
    records
}

/// A model's name in plots and tables: a folder by its last component (`…/tiny-t2v` →
/// `tiny-t2v`), a hub name as it is.
pub fn label(model: &str) -> String {
    let p = Path::new(model);
    if p.components().count() > 1 {
        p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| model.to_string())
    } else {
        model.to_string()
    }
}

fn models(records: &[Record]) -> Vec<String> {
    let mut m: Vec<String> = records.iter().map(|r| r.model.clone()).collect();
    m.dedup();
    m
}

fn summary(records: &[Record]) -> BTreeMap<String, Vec<Option<Interval>>> {
    let mut out = BTreeMap::new();
    for m in models(records) {
        let rs: Vec<&Record> = records.iter().filter(|r| r.model == m).collect();
        out.insert(m, METRICS.iter().map(|k| interval(&rs.iter().filter_map(|r| (k.get)(r)).collect::<Vec<_>>())).collect());
    }
    out
}

/// Per prompt category of the suite (subjects, motion, scenes, styles, …): each model's quality
/// metrics over the videos of that category, the best mean in bold — which model wins where.
/// Empty when no prompt has a category.
fn category_table(records: &[Record], names: &[String]) -> String {
    let cats: std::collections::BTreeSet<&str> = records.iter().filter_map(|r| r.category.as_deref()).collect();
    if cats.is_empty() {
        return String::new();
    }
    let mut h = String::from("<h2>Per prompt category</h2><div style=\"overflow-x:auto\"><table><tr><th class=l>category</th><th class=l>metric</th>");
    for (i, n) in names.iter().enumerate() {
        let _ = write!(h, "<th title=\"{}\">{}. {}</th>", esc(n), i + 1, esc(&label(n)));
    }
    h += "</tr>";
    for cat in cats {
        for m in quality_metrics(records).into_iter().map(|i| &METRICS[i]) {
            let cells: Vec<Option<Interval>> = names
                .iter()
                .map(|n| interval(&records.iter().filter(|r| &r.model == n && r.category.as_deref() == Some(cat)).filter_map(|r| (m.get)(r)).collect::<Vec<_>>()))
                .collect();
            let best = cells.iter().flatten().map(|i| i.mean).fold(f64::NEG_INFINITY, f64::max);
            let _ = write!(h, "<tr><td class=l>{}</td><td class=l>{}</td>", esc(cat), esc(m.name));
            for c in &cells {
                let text = fmt_interval(c, m.digits);
                let top = names.len() > 1 && c.as_ref().is_some_and(|i| i.mean == best);
                let _ = if top { write!(h, "<td><b>{text}</b></td>") } else { write!(h, "<td>{text}</td>") };
            }
            h += "</tr>";
        }
    }
    h + "</table></div>"
}

fn fmt_interval(i: &Option<Interval>, digits: usize) -> String {
    match i {
        None => "–".into(),
        Some(Interval { mean, half: Some(h), .. }) => format!("{mean:.digits$} ± {h:.digits$}"),
        Some(Interval { mean, half: None, .. }) => format!("{mean:.digits$}"),
    }
}

fn plot_err(e: impl std::fmt::Display) -> Error {
    Error::Other(format!("report plot: {e}"))
}

const COLORS: [RGBColor; 6] = [RGBColor(31, 119, 180), RGBColor(255, 127, 14), RGBColor(44, 160, 44), RGBColor(214, 39, 40), RGBColor(148, 103, 189), RGBColor(140, 86, 75)];

/// The models' numbers and colours in the plots, as HTML (wraps with the page, unlike SVG text).
fn legend(names: &[String]) -> String {
    let items: Vec<(String, RGBColor)> = names.iter().enumerate().map(|(i, n)| (format!("{}. {n}", i + 1), COLORS[i % COLORS.len()])).collect();
    legend_items(&items)
}

fn legend_items(items: &[(String, RGBColor)]) -> String {
    let mut h = String::from("<div class=legend>");
    for (text, RGBColor(r, g, b)) in items {
        let _ = write!(h, "<span><i style=\"background:rgb({r},{g},{b})\"></i>{}</span>", esc(text));
    }
    h + "</div>"
}

/// One metric per model: the mean with its 95% interval as a whisker.
fn metric_plot(title: &str, names: &[String], values: &[Option<Interval>]) -> Result<String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (360, 240)).into_drawing_area();
        root.fill(&WHITE).map_err(plot_err)?;
        let lo_hi: Vec<(f64, f64)> = values.iter().flatten().map(|i| (i.mean - i.half.unwrap_or(0.0), i.mean + i.half.unwrap_or(0.0))).collect();
        let (mut lo, mut hi) = lo_hi.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &(l, h)| (a.min(l), b.max(h)));
        if !lo.is_finite() {
            (lo, hi) = (0.0, 1.0);
        }
        let pad = ((hi - lo) * 0.15).max(hi.abs().max(1e-3) * 0.01);
        let n = names.len();
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 16))
            .margin(8)
            .x_label_area_size(28)
            .y_label_area_size(56)
            .build_cartesian_2d(-0.5f64..(n as f64 - 0.5), (lo - pad)..(hi + pad))
            .map_err(plot_err)?;
        let labels = names.to_vec();
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(n.max(1))
            // Models by number (the legend under the plots names them): names of any length
            // and any count never overlap or run off the axis.
            .x_label_formatter(&|x| {
                let i = x.round();
                if (x - i).abs() < 1e-6 && i >= 0.0 && (i as usize) < labels.len() { format!("{}", i as usize + 1) } else { String::new() }
            })
            .draw()
            .map_err(plot_err)?;
        for (i, v) in values.iter().enumerate() {
            let Some(v) = v else { continue };
            let c = COLORS[i % COLORS.len()];
            let h = v.half.unwrap_or(0.0);
            chart
                .draw_series(std::iter::once(ErrorBar::new_vertical(i as f64, v.mean - h, v.mean, v.mean + h, c.filled(), 12)))
                .map_err(plot_err)?;
            chart.draw_series(std::iter::once(Circle::new((i as f64, v.mean), 5, c.filled()))).map_err(plot_err)?;
        }
        root.present().map_err(plot_err)?;
    }
    Ok(svg)
}

/// Quality (y) against a cost (x), one labelled point per model with both intervals.
fn tradeoff_plot(title: &str, x_label: &str, xs: &[Option<Interval>], ys: &[Option<Interval>]) -> Result<String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (480, 300)).into_drawing_area();
        root.fill(&WHITE).map_err(plot_err)?;
        let pts: Vec<(usize, Interval, Interval)> =
            xs.iter().zip(ys).enumerate().filter_map(|(i, (x, y))| Some((i, (*x)?, (*y)?))).collect();
        // Costs (x) are never negative: their axis starts at 0 even when an interval of few
        // videos reaches below it.
        let range = |f: &dyn Fn(&(usize, Interval, Interval)) -> Interval, from_zero: bool| {
            let (lo, hi) = pts.iter().map(f).fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), i| {
                (a.min(i.mean - i.half.unwrap_or(0.0)), b.max(i.mean + i.half.unwrap_or(0.0)))
            });
            if !lo.is_finite() {
                return (0.0, 1.0);
            }
            // Padding from the axis' own span, so a point (and its number) at the largest cost
            // stays inside the plot.
            let lo = if from_zero { 0.0 } else { lo };
            let pad = ((hi - lo) * 0.15).max(hi.abs().max(1e-3) * 0.05);
            (if from_zero { 0.0 } else { lo - pad }, hi + pad)
        };
        let (x0, x1) = range(&|p| p.1, true);
        let (y0, y1) = range(&|p| p.2, false);
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 16))
            .margin(10)
            .x_label_area_size(36)
            .y_label_area_size(56)
            .build_cartesian_2d(x0..x1, y0..y1)
            .map_err(plot_err)?;
        chart.configure_mesh().x_desc(x_label).y_desc("CLIPSIM").draw().map_err(plot_err)?;
        for (i, x, y) in pts {
            let c = COLORS[i % COLORS.len()];
            let (hx, hy) = (x.half.unwrap_or(0.0), y.half.unwrap_or(0.0));
            chart
                .draw_series(std::iter::once(ErrorBar::new_vertical(x.mean, y.mean - hy, y.mean, y.mean + hy, c.filled(), 8)))
                .map_err(plot_err)?;
            chart
                .draw_series(std::iter::once(ErrorBar::new_horizontal(y.mean, x.mean - hx, x.mean, x.mean + hx, c.filled(), 8)))
                .map_err(plot_err)?;
            chart.draw_series(std::iter::once(Circle::new((x.mean, y.mean), 5, c.filled()))).map_err(plot_err)?;
            chart
                .draw_series(std::iter::once(Text::new(format!(" {}", i + 1), (x.mean, y.mean), ("sans-serif", 13).into_font().color(&c))))
                .map_err(plot_err)?;
        }
        root.present().map_err(plot_err)?;
    }
    Ok(svg)
}

/// The VBench dimensions a video has, for its caption ("" when none).
fn vbench_line(r: &Record) -> String {
    let mut parts: Vec<String> = [("background", r.background_consistency), ("subject", r.subject_consistency), ("aesthetic", r.aesthetic_quality)]
        .into_iter()
        .filter_map(|(n, v)| Some(format!("{n} {:.4}", v?)))
        .collect();
    if let Some(d) = r.dynamic_degree {
        parts.push(format!("{} (dynamic degree {d:.0})", if d > 0.5 { "moving" } else { "static" }));
    }
    if let Some(s) = r.is_static {
        parts.push(if s { "static filter: kept for flickering".into() } else { "static filter: dropped for flickering".into() });
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!("<br>VBench: {}", parts.join(" · "))
    }
}

/// A video's VBench quality dimensions (raw 0..1), as VBench names them. With the static filter
/// run, temporal flickering only where VBench's filter keeps the video.
fn record_dimensions(r: &Record) -> Vec<(&'static str, f64)> {
    [
        ("subject_consistency", r.subject_consistency),
        ("background_consistency", r.background_consistency),
        ("temporal_flickering", r.flicker.filter(|_| r.is_static != Some(false))),
        ("dynamic_degree", r.dynamic_degree),
        ("aesthetic_quality", r.aesthetic_quality),
    ]
    .into_iter()
    .filter_map(|(n, v)| Some((n, v?)))
    .collect()
}

/// Per model: the dimensions every one of its videos has (temporal flickering: every video the
/// static filter keeps, when it ran), and the Quality Score over them per video (mean and 95%
/// interval over videos; the mean equals the score of the dimension means, the score being
/// linear in each dimension). A video the static filter drops enters with the model's filtered
/// flickering mean, so the mean stays the score of the dimension means.
fn quality_by_model(records: &[Record], names: &[String]) -> Vec<(Vec<&'static str>, Option<Interval>)> {
    names
        .iter()
        .map(|n| {
            let rs: Vec<&Record> = records.iter().filter(|r| &r.model == n).collect();
            let has = |r: &Record, d: &str| {
                record_dimensions(r).iter().any(|(k, _)| *k == d) || (d == "temporal_flickering" && r.is_static == Some(false) && r.flicker.is_some())
            };
            let kept: Vec<f64> = rs.iter().filter_map(|r| r.flicker.filter(|_| r.is_static != Some(false))).collect();
            let kept_mean = (!kept.is_empty()).then(|| kept.iter().sum::<f64>() / kept.len() as f64);
            let dims: Vec<&'static str> = super::vbench::QUALITY_DIMENSIONS
                .iter()
                .map(|d| d.name)
                .filter(|d| rs.iter().all(|r| has(r, d)) && (*d != "temporal_flickering" || kept_mean.is_some()))
                .collect();
            let per_video: Vec<f64> = rs
                .iter()
                .filter_map(|r| {
                    let mut v: Vec<(&str, f64)> = record_dimensions(r).into_iter().filter(|(k, _)| dims.contains(k)).collect();
                    if r.is_static == Some(false) && dims.contains(&"temporal_flickering") {
                        v.push(("temporal_flickering", kept_mean?));
                    }
                    super::vbench::quality_score(&v).ok().flatten().map(|q| q.value * 100.0)
                })
                .collect();
            (dims, interval(&per_video))
        })
        .collect()
}

/// How temporal flickering was measured: VBench's static filter on every video, or unfiltered.
fn flicker_note(records: &[Record]) -> String {
    let filtered = records.iter().filter(|r| r.is_static.is_some()).count();
    let kept = records.iter().filter(|r| r.is_static == Some(true)).count();
    if filtered == 0 {
        "Temporal flickering is <b>unfiltered</b>: computed on every video, without VBench's static filter (add static_filter to --metrics).".into()
    } else {
        format!(
            "Temporal flickering with VBench's static filter (RAFT): only the {kept} of {filtered} filtered videos VBench would keep enter it{}.",
            if filtered < records.len() { format!("; {} videos were not filtered and enter unfiltered", records.len() - filtered) } else { String::new() }
        )
    }
}

/// Grouped bars: per VBench dimension (x), each model's mean in % (t2v's models in their
/// colours, VBench's published ModelScope row in grey).
fn dimension_bars(dims: &[&str], names: &[String], records: &[Record]) -> Result<String> {
    let mut svg = String::new();
    {
        let width = (160 + dims.len() as u32 * (40 + 22 * (names.len() as u32 + 1))).max(420);
        let root = SVGBackend::with_string(&mut svg, (width, 300)).into_drawing_area();
        root.fill(&WHITE).map_err(plot_err)?;
        let series: Vec<Vec<Option<f64>>> = names
            .iter()
            .map(|n| {
                dims.iter()
                    .map(|d| {
                        let v: Vec<f64> =
                            records.iter().filter(|r| &r.model == n).filter_map(|r| record_dimensions(r).into_iter().find(|(k, _)| k == d).map(|x| x.1 * 100.0)).collect();
                        interval(&v).map(|i| i.mean)
                    })
                    .collect()
            })
            .collect();
        let published: Vec<Option<f64>> = dims.iter().map(|d| super::vbench::PUBLISHED[0].dim(d).map(|v| v * 100.0)).collect();
        let all: Vec<f64> = series.iter().flatten().flatten().chain(published.iter().flatten()).copied().collect();
        let lo = all.iter().copied().fold(f64::INFINITY, f64::min).min(100.0);
        let y0 = if lo.is_finite() { (lo - 10.0).max(0.0).floor() } else { 0.0 };
        let k = names.len() + 1;
        let mut chart = ChartBuilder::on(&root)
            .caption("VBench dimensions (%)", ("sans-serif", 16))
            .margin(10)
            .x_label_area_size(30)
            .y_label_area_size(48)
            .build_cartesian_2d(0f64..dims.len() as f64, y0..100.0)
            .map_err(plot_err)?;
        let labels: Vec<String> = dims.iter().map(|d| d.replace('_', " ")).collect();
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(dims.len() * 2 + 1)
            .x_label_formatter(&|x| {
                let i = (x - 0.5).round();
                if (x - 0.5 - i).abs() < 1e-6 && i >= 0.0 && (i as usize) < labels.len() { labels[i as usize].clone() } else { String::new() }
            })
            .draw()
            .map_err(plot_err)?;
        let bar = 0.8 / k as f64;
        for (j, d) in dims.iter().enumerate() {
            let _ = d;
            for (m, vals) in series.iter().enumerate() {
                if let Some(v) = vals[j] {
                    let x = j as f64 + 0.1 + m as f64 * bar;
                    chart.draw_series(std::iter::once(Rectangle::new([(x, y0), (x + bar * 0.9, v)], COLORS[m % COLORS.len()].filled()))).map_err(plot_err)?;
                }
            }
            if let Some(v) = published[j] {
                let x = j as f64 + 0.1 + names.len() as f64 * bar;
                chart.draw_series(std::iter::once(Rectangle::new([(x, y0), (x + bar * 0.9, v)], RGBColor(170, 170, 170).filled()))).map_err(plot_err)?;
            }
        }
        root.present().map_err(plot_err)?;
    }
    Ok(svg)
}

/// The VBench section: per-dimension bars, each model's Quality Score (partial: over the
/// dimensions its videos have) with its 95% interval, and VBench's published rows beside.
fn vbench_section(records: &[Record], names: &[String]) -> Result<String> {
    use super::vbench::{QUALITY_DIMENSIONS, PUBLISHED};
    let q = quality_by_model(records, names);
    let dims: Vec<&'static str> = QUALITY_DIMENSIONS.iter().map(|d| d.name).filter(|d| q.iter().any(|(ds, _)| ds.contains(d))).collect();
    if dims.is_empty() {
        return Ok(String::new());
    }
    let mut h = String::from("<h2>VBench quality dimensions and Quality Score (partial)</h2>");
    h += "<p class=muted>VBench's own formulas and preprocessing (Huang et al., CVPR 2024), each dimension min/max-normalised and weighted as VBench's           <code>cal_final_score</code> does, renormalised by the weights of the dimensions measured — <b>not</b> the leaderboard's Quality Score,           which needs all seven (motion smoothness and imaging quality are not implemented in t2v). {FLICKER} The published rows are VBench's own runs (VBench++ Table II): other prompts           (VBench's suite, 5 videos each), resolutions and decoders — protocols differ, compare with care.</p>";
    h = h.replace("{FLICKER}", &flicker_note(records));
    h += &dimension_bars(&dims, names, records)?;
    let mut items: Vec<(String, RGBColor)> = names.iter().enumerate().map(|(i, n)| (format!("{}. {}", i + 1, label(n)), COLORS[i % COLORS.len()])).collect();
    items.push((format!("VBench's published {} ({})", PUBLISHED[0].model, PUBLISHED[0].sampling), RGBColor(170, 170, 170)));
    h += &legend_items(&items);
    h += "<div style=\"overflow-x:auto\"><table><tr><th class=l>model</th><th>Quality Score % (partial)</th><th class=l>dimensions in it</th>";
    for d in &dims {
        let _ = write!(h, "<th>{} %</th>", esc(&d.replace('_', " ")));
    }
    h += "</tr>";
    for (n, (ds, qi)) in names.iter().zip(&q) {
        let short: Vec<&str> = ds.iter().map(|&d| if d == "temporal_flickering" { "flickering" } else { d.split('_').next().unwrap_or(d) }).collect();
        let _ = write!(h, "<tr><td class=l title=\"{}\">{}</td><td>{}</td><td class=l title=\"{}\">{}</td>", esc(n), esc(&label(n)), fmt_interval(qi, 2), esc(&ds.join(", ")), esc(&short.join(", ")));
        for d in &dims {
            let v: Vec<f64> = records.iter().filter(|r| &r.model == n).filter_map(|r| record_dimensions(r).into_iter().find(|(k, _)| k == d).map(|x| x.1 * 100.0)).collect();
            let _ = write!(h, "<td>{}</td>", fmt_interval(&interval(&v), 2));
        }
        h += "</tr>";
    }
    for p in &PUBLISHED {
        let same = p.quality(&dims).map(|q| format!("{:.2}", 100.0 * q.value)).unwrap_or_default();
        let all = p.quality(&QUALITY_DIMENSIONS.map(|d| d.name)).map(|q| format!("{:.2}", 100.0 * q.value)).unwrap_or_default();
        let _ = write!(
            h,
            "<tr class=muted><td class=l>VBench: {} <span class=muted>({})</span></td><td>{same} <span class=muted>(all seven: {all})</span></td><td class=l>published</td>",
            esc(p.model),
            esc(p.sampling)
        );
        for d in &dims {
            let _ = write!(h, "<td>{}</td>", p.dim(d).map(|v| format!("{:.2}", 100.0 * v)).unwrap_or_default());
        }
        h += "</tr>";
    }
    h += "</table></div>";
    Ok(h)
}

const CSV_COLUMNS: [&str; 38] = [
    "key", "video_key", "video", "model", "model_hash", "prompt_id", "prompt", "category", "negative_prompt", "seed", "num_frames",
    "height", "width", "num_inference_steps", "guidance_scale", "scheduler", "fps", "weights_dtype", "scorer", "scorer_hash",
    "clipsim", "fetv_clipscore", "clip_temp", "flicker", "load_s", "encode_s", "denoise_s", "decode_s", "s_per_step",
    "generate_s", "planned_peak_bytes", "measured_peak_bytes", "planned_peak_gib", "background_consistency",
    "subject_consistency", "aesthetic_quality", "dynamic_degree", "static",
];

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

pub fn csv(records: &[Record]) -> String {
    let mut s = CSV_COLUMNS.join(",") + "\n";
    let opt = |v: Option<f64>| v.map(|v| v.to_string()).unwrap_or_default();
    for r in records {
        let row = [
            r.key.clone(), r.video_key.clone(), r.video.clone(), r.model.clone(), r.model_hash.clone(), r.prompt_id.clone(),
            r.prompt.clone(), r.category.clone().unwrap_or_default(), r.negative_prompt.clone(), r.seed.to_string(),
            r.num_frames.to_string(), r.height.to_string(), r.width.to_string(), r.num_inference_steps.to_string(),
            r.guidance_scale.to_string(), r.scheduler.clone(), r.fps.to_string(), r.weights_dtype.clone(), r.scorer.clone(),
            r.scorer_hash.clone(), r.clipsim.to_string(), r.fetv_clipscore.to_string(), opt(r.clip_temp), opt(r.flicker),
            r.load_s.to_string(), r.encode_s.to_string(), r.denoise_s.to_string(), r.decode_s.to_string(), r.s_per_step.to_string(),
            r.generate_s().to_string(), r.planned_peak_bytes.to_string(), r.measured_peak_bytes.to_string(),
            gib(r.planned_peak_bytes).to_string(), opt(r.background_consistency), opt(r.subject_consistency),
            opt(r.aesthetic_quality), opt(r.dynamic_degree), r.is_static.map(|s| s.to_string()).unwrap_or_default(),
        ];
        s += &row.iter().map(|f| csv_field(f)).collect::<Vec<_>>().join(",");
        s.push('\n');
    }
    s
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:1.5em;color:#222}table{border-collapse:collapse;margin:.5em 0}\
td,th{border:1px solid #ccc;padding:.25em .6em;text-align:right;white-space:nowrap}th{background:#f3f3f3}td.l,th.l{text-align:left}\
.plots{display:flex;flex-wrap:wrap;gap:.5em}.legend{display:flex;flex-wrap:wrap;gap:.4em 1.2em;font-size:.9em;margin:.3em 0 .8em}\
.legend i{display:inline-block;width:.8em;height:.8em;border-radius:50%;margin-right:.35em;vertical-align:-.05em}.row{border-top:1px solid #ddd;padding:.6em 0}.vids{display:flex;flex-wrap:wrap;gap:1em}\
.vid{text-align:center;font-size:.85em}.vid video{display:block;max-width:320px;min-width:128px;image-rendering:pixelated;background:#000}\
tr.muted td{color:#666}.prompt{font-weight:600}.muted{color:#777;font-size:.85em}button{margin-left:1em}";

/// Plays each row's videos together: one leads, the others follow its clock.
const PLAYER: &str = r#"document.querySelectorAll('.row').forEach(function(row){
  var v=[].slice.call(row.querySelectorAll('video')); if(!v.length) return; var lead=v[0];
  function follow(){ v.slice(1).forEach(function(o){ if(Math.abs(o.currentTime-lead.currentTime)>0.05) o.currentTime=Math.min(lead.currentTime,(o.duration||1e9)); }); }
  lead.addEventListener('timeupdate',follow); lead.addEventListener('seeked',follow);
  lead.addEventListener('play',function(){v.forEach(function(o){o.play();});});
  lead.addEventListener('pause',function(){v.forEach(function(o){o.pause();});});
  var b=row.querySelector('button'); if(b) b.onclick=function(){ v.forEach(function(o){o.currentTime=0; o.play();}); };
});
// report.html#selftest: how many videos decoded and how many play, kept up to date (the
// browser check in tests/cli_compare.rs polls it until all play).
if(location.hash=='#selftest') setInterval(function(){
  var v=[].slice.call(document.querySelectorAll('video'));
  var loaded=v.filter(function(x){return x.readyState>=2&&!x.error;}).length;
  var playing=v.filter(function(x){return !x.paused&&x.currentTime>0;}).length;
  document.body.setAttribute('data-selftest','videos='+v.length+' loaded='+loaded+' playing='+playing);
},200);"#;

pub fn html(records: &[Record]) -> Result<String> {
    let names = models(records);
    let labels: Vec<String> = names.iter().map(|n| label(n)).collect();
    let sum = summary(records);
    let mut h = String::new();
    let _ = write!(h, "<!doctype html><html><head><meta charset=\"utf-8\"><title>t2v compare</title><style>{STYLE}</style></head><body>");
    let scorers: std::collections::BTreeSet<&str> = records.iter().map(|r| r.scorer.as_str()).collect();
    let _ = write!(
        h,
        "<h1>t2v compare</h1><p>{} videos from {} model(s); scored by {}. Means with 95% confidence intervals (Student t over videos). \
         Definitions and sources of every number: t2v's README, section <i>What the numbers mean</i>.</p>",
        records.len(),
        names.len(),
        // A local scorer folder by its name, not the machine's path (hub ids stay as they are).
        esc(&scorers.into_iter().map(label).collect::<Vec<_>>().join(", "))
    );
    h += "<div style=\"overflow-x:auto\"><table><tr><th class=l>model</th><th>videos</th>";
    // Columns some video has a number for (a metric not chosen in any run is left out).
    let shown: Vec<usize> = (0..METRICS.len()).filter(|&i| records.iter().any(|r| (METRICS[i].get)(r).is_some())).collect();
    for m in shown.iter().map(|&i| &METRICS[i]) {
        let _ = write!(h, "<th>{}<br><span class=muted>{} is better</span></th>", esc(m.name), m.better);
    }
    h += "</tr>";
    for (name, vals) in &sum {
        let n = records.iter().filter(|r| &r.model == name).count();
        let _ = write!(h, "<tr><td class=l title=\"{}\">{}</td><td>{n}</td>", esc(name), esc(&label(name)));
        for (m, v) in shown.iter().map(|&i| (&METRICS[i], &vals[i])) {
            let cell = fmt_interval(v, m.digits);
            let _ = if m.timing { write!(h, "<td><span class=t>{cell}</span></td>") } else { write!(h, "<td>{cell}</td>") };
        }
        h += "</tr>";
    }
    h += "</table></div>";
    h += &category_table(records, &names);
    h += &vbench_section(records, &names)?;
    h += "<h2>Per model</h2><div class=plots>";
    let col = |i: usize| names.iter().map(|n| sum[n][i]).collect::<Vec<_>>();
    for i in quality_metrics(records) {
        h += &metric_plot(METRICS[i].name, &labels, &col(i))?;
    }
    h += "</div>";
    h += &legend(&labels);
    h += "<h2>Quality against cost</h2><div class=plots>";
    h += &tradeoff_plot("CLIPSIM vs time", "seconds per video (loaded model)", &col(4), &col(0))?;
    h += &tradeoff_plot("CLIPSIM vs memory", "measured peak device memory (GiB)", &col(8), &col(0))?;
    h += "</div>";
    h += &legend(&labels);
    h += "<h2>Videos</h2><p class=muted>Each row plays in sync (the first video leads); ▶ restarts the row.</p>";
    // Rows: one per (prompt, seed), the models side by side.
    let mut rows: BTreeMap<(String, u64), Vec<&Record>> = BTreeMap::new();
    for r in records {
        rows.entry((r.prompt_id.clone(), r.seed)).or_default().push(r);
    }
    for ((id, seed), rs) in &rows {
        let first = rs[0];
        let _ = write!(
            h,
            "<div class=row><div><span class=prompt>{}</span> <span class=muted>{} · seed {seed}{}</span><button>▶ play together</button></div><div class=vids>",
            esc(&first.prompt),
            esc(id),
            first.category.as_ref().map(|c| format!(" · {}", esc(c))).unwrap_or_default()
        );
        for r in rs {
            let opt = |v: Option<f64>| v.map(|v| format!("{v:.4}")).unwrap_or_else(|| "–".into());
            let _ = write!(
                h,
                "<div class=vid><video src=\"{}\" muted loop autoplay playsinline width=\"{}\"></video><b>{}</b><br>CLIPSIM {:.2} · FETV {:.4}<br>\
                 CLIP-Temp {} · flicker {}{}<br>{}×{}×{} · <span class=t>{:.2}</span> s · {:.3} GiB</div>",
                esc(&r.video),
                r.width.clamp(128, 320),
                esc(&label(&r.model)),
                r.clipsim,
                r.fetv_clipscore,
                opt(r.clip_temp),
                opt(r.flicker),
                vbench_line(r),
                r.num_frames,
                r.width,
                r.height,
                r.generate_s(),
                gib(r.measured_peak_bytes)
            );
        }
        h += "</div></div>";
    }
    let _ = writeln!(h, "<script>{PLAYER}</script></body></html>");
    Ok(h)
}

fn write_text(path: &Path, text: &str) -> Result<()> {
    crate::video::write_atomic(path, |w| w.write_all(text.as_bytes()).map_err(|e| Error::Other(format!("{}: {e}", path.display()))))
}

/// Writes report.html, results.json and results.csv into `out` from `records`.
pub fn write_all(out: &Path, records: Vec<Record>) -> Result<()> {
    let records = sorted(records);
    let json = serde_json::to_string_pretty(&records).map_err(|e| Error::Other(e.to_string()))?;
    write_text(&out.join("results.json"), &(json + "\n"))?;
    write_text(&out.join("results.csv"), &csv(&records))?;
    write_text(&out.join("report.html"), &html(&records)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals() {
        let i = interval(&[1.0, 2.0, 3.0]).unwrap();
        assert_eq!(i.mean, 2.0);
        // s = 1, t(2) = 4.303: 4.303 / √3
        assert!((i.half.unwrap() - 4.303 / 3f64.sqrt()).abs() < 1e-12);
        assert_eq!(interval(&[5.0]).unwrap().half, None);
        assert!(interval(&[]).is_none());
    }
}
