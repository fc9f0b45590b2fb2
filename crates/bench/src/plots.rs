//! `plots`: PNG charts of the protocol benchmarks, from the figures the `coap` and `mqtt`
//! suites leave in `bench/out/*.json`, written to `docs/bench/`.
//!
//! Drawn with `plotters` and its bitmap backend only. Plotters draws text through a font
//! library (font-kit with system fonts, or ab_glyph with a font file we would have to
//! ship); neither is worth it for a few labels, so text here is a classic 5×7 pixel font
//! (the one of HD44780-style displays) drawn as rectangles, and every chart is laid out
//! in pixel coordinates: plotters' own captions and axis labels, which need a font, are
//! never used. See `docs/decisions/0005-sim.md`.

use std::fmt::Write as _;
use std::path::Path;

use plotters::prelude::*;

use crate::protocols::{Bars, Curve, Figures};

/// Columns of each glyph of ASCII 32..=126, least significant bit at the top.
const FONT: [[u8; 5]; 95] = [
    [0x00, 0x00, 0x00, 0x00, 0x00],
    [0x00, 0x00, 0x5F, 0x00, 0x00],
    [0x00, 0x07, 0x00, 0x07, 0x00],
    [0x14, 0x7F, 0x14, 0x7F, 0x14],
    [0x24, 0x2A, 0x7F, 0x2A, 0x12],
    [0x23, 0x13, 0x08, 0x64, 0x62],
    [0x36, 0x49, 0x55, 0x22, 0x50],
    [0x00, 0x05, 0x03, 0x00, 0x00],
    [0x00, 0x1C, 0x22, 0x41, 0x00],
    [0x00, 0x41, 0x22, 0x1C, 0x00],
    [0x08, 0x2A, 0x1C, 0x2A, 0x08],
    [0x08, 0x08, 0x3E, 0x08, 0x08],
    [0x00, 0x50, 0x30, 0x00, 0x00],
    [0x08, 0x08, 0x08, 0x08, 0x08],
    [0x00, 0x60, 0x60, 0x00, 0x00],
    [0x20, 0x10, 0x08, 0x04, 0x02],
    [0x3E, 0x51, 0x49, 0x45, 0x3E],
    [0x00, 0x42, 0x7F, 0x40, 0x00],
    [0x42, 0x61, 0x51, 0x49, 0x46],
    [0x21, 0x41, 0x45, 0x4B, 0x31],
    [0x18, 0x14, 0x12, 0x7F, 0x10],
    [0x27, 0x45, 0x45, 0x45, 0x39],
    [0x3C, 0x4A, 0x49, 0x49, 0x30],
    [0x01, 0x71, 0x09, 0x05, 0x03],
    [0x36, 0x49, 0x49, 0x49, 0x36],
    [0x06, 0x49, 0x49, 0x29, 0x1E],
    [0x00, 0x36, 0x36, 0x00, 0x00],
    [0x00, 0x56, 0x36, 0x00, 0x00],
    [0x00, 0x08, 0x14, 0x22, 0x41],
    [0x14, 0x14, 0x14, 0x14, 0x14],
    [0x41, 0x22, 0x14, 0x08, 0x00],
    [0x02, 0x01, 0x51, 0x09, 0x06],
    [0x32, 0x49, 0x79, 0x41, 0x3E],
    [0x7E, 0x11, 0x11, 0x11, 0x7E],
    [0x7F, 0x49, 0x49, 0x49, 0x36],
    [0x3E, 0x41, 0x41, 0x41, 0x22],
    [0x7F, 0x41, 0x41, 0x22, 0x1C],
    [0x7F, 0x49, 0x49, 0x49, 0x41],
    [0x7F, 0x09, 0x09, 0x01, 0x01],
    [0x3E, 0x41, 0x41, 0x51, 0x32],
    [0x7F, 0x08, 0x08, 0x08, 0x7F],
    [0x00, 0x41, 0x7F, 0x41, 0x00],
    [0x20, 0x40, 0x41, 0x3F, 0x01],
    [0x7F, 0x08, 0x14, 0x22, 0x41],
    [0x7F, 0x40, 0x40, 0x40, 0x40],
    [0x7F, 0x02, 0x04, 0x02, 0x7F],
    [0x7F, 0x04, 0x08, 0x10, 0x7F],
    [0x3E, 0x41, 0x41, 0x41, 0x3E],
    [0x7F, 0x09, 0x09, 0x09, 0x06],
    [0x3E, 0x41, 0x51, 0x21, 0x5E],
    [0x7F, 0x09, 0x19, 0x29, 0x46],
    [0x46, 0x49, 0x49, 0x49, 0x31],
    [0x01, 0x01, 0x7F, 0x01, 0x01],
    [0x3F, 0x40, 0x40, 0x40, 0x3F],
    [0x1F, 0x20, 0x40, 0x20, 0x1F],
    [0x7F, 0x20, 0x18, 0x20, 0x7F],
    [0x63, 0x14, 0x08, 0x14, 0x63],
    [0x03, 0x04, 0x78, 0x04, 0x03],
    [0x61, 0x51, 0x49, 0x45, 0x43],
    [0x00, 0x00, 0x7F, 0x41, 0x41],
    [0x02, 0x04, 0x08, 0x10, 0x20],
    [0x41, 0x41, 0x7F, 0x00, 0x00],
    [0x04, 0x02, 0x01, 0x02, 0x04],
    [0x40, 0x40, 0x40, 0x40, 0x40],
    [0x00, 0x01, 0x02, 0x04, 0x00],
    [0x20, 0x54, 0x54, 0x54, 0x78],
    [0x7F, 0x48, 0x44, 0x44, 0x38],
    [0x38, 0x44, 0x44, 0x44, 0x20],
    [0x38, 0x44, 0x44, 0x48, 0x7F],
    [0x38, 0x54, 0x54, 0x54, 0x18],
    [0x08, 0x7E, 0x09, 0x01, 0x02],
    [0x0C, 0x52, 0x52, 0x52, 0x3E],
    [0x7F, 0x08, 0x04, 0x04, 0x78],
    [0x00, 0x44, 0x7D, 0x40, 0x00],
    [0x20, 0x40, 0x44, 0x3D, 0x00],
    [0x00, 0x7F, 0x10, 0x28, 0x44],
    [0x00, 0x41, 0x7F, 0x40, 0x00],
    [0x7C, 0x04, 0x18, 0x04, 0x78],
    [0x7C, 0x08, 0x04, 0x04, 0x78],
    [0x38, 0x44, 0x44, 0x44, 0x38],
    [0x7C, 0x14, 0x14, 0x14, 0x08],
    [0x08, 0x14, 0x14, 0x18, 0x7C],
    [0x7C, 0x08, 0x04, 0x04, 0x08],
    [0x48, 0x54, 0x54, 0x54, 0x20],
    [0x04, 0x3F, 0x44, 0x40, 0x20],
    [0x3C, 0x40, 0x40, 0x20, 0x7C],
    [0x1C, 0x20, 0x40, 0x20, 0x1C],
    [0x3C, 0x40, 0x30, 0x40, 0x3C],
    [0x44, 0x28, 0x10, 0x28, 0x44],
    [0x0C, 0x50, 0x50, 0x50, 0x3C],
    [0x44, 0x64, 0x54, 0x4C, 0x44],
    [0x00, 0x08, 0x36, 0x41, 0x00],
    [0x00, 0x00, 0x7F, 0x00, 0x00],
    [0x00, 0x41, 0x36, 0x08, 0x00],
    [0x08, 0x04, 0x08, 0x10, 0x08],
];

type Area<'a> = DrawingArea<BitMapBackend<'a>, plotters::coord::Shift>;

/// Width in pixels of `text` at `scale`.
fn text_width(text: &str, scale: i32) -> i32 {
    text.chars().count() as i32 * 6 * scale
}

/// Draws `text` with its top-left corner at (`x`, `y`); characters outside ASCII are
/// drawn as `?`.
fn text(
    area: &Area,
    x: i32,
    y: i32,
    text: &str,
    scale: i32,
    color: RGBColor,
) -> anyhow::Result<()> {
    for (i, c) in text.chars().enumerate() {
        let code = c as u32;
        let glyph = if (32..=126).contains(&code) {
            FONT[(code - 32) as usize]
        } else {
            FONT[(b'?' - 32) as usize]
        };
        let cx = x + i as i32 * 6 * scale;
        for (col, bits) in glyph.iter().enumerate() {
            for row in 0..7 {
                if bits >> row & 1 == 1 {
                    let px = cx + col as i32 * scale;
                    let py = y + row * scale;
                    for dx in 0..scale {
                        for dy in 0..scale {
                            draw(area.draw_pixel((px + dx, py + dy), &color))?;
                        }
                    }
                }
            }
        }
    }
    Ok(())
}

fn draw<E: std::fmt::Display>(r: Result<(), E>) -> anyhow::Result<()> {
    r.map_err(|e| anyhow::anyhow!("drawing failed: {e}"))
}

const INGOT: RGBColor = RGBColor(230, 115, 0);
const PEER: RGBColor = RGBColor(110, 120, 135);
const INK: RGBColor = RGBColor(30, 30, 30);
const GRID: RGBColor = RGBColor(225, 225, 225);

/// "123k", "1.2M": short axis numbers.
fn short(v: f64) -> String {
    if v >= 1e6 {
        format!("{:.1}M", v / 1e6)
    } else if v >= 1e3 {
        format!("{:.0}k", v / 1e3)
    } else {
        format!("{v:.0}")
    }
}

/// A step for about `n` grid lines up to `max`: 1, 2 or 5 × a power of ten.
fn nice_step(max: f64, n: f64) -> f64 {
    let raw = (max / n).max(1e-9);
    let power = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * power)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * power)
}

/// Bars of Ingot and the peer per comparison, each panel with its own scale, medians
/// with min–max whiskers.
pub fn throughput(path: &Path, bars: &[Bars]) -> anyhow::Result<()> {
    let panel_w = 340;
    let (w, h) = ((panel_w * bars.len().max(1)) as u32 + 40, 460u32);
    let root = BitMapBackend::new(path, (w, h)).into_drawing_area();
    draw(root.fill(&WHITE))?;
    text(
        &root,
        20,
        12,
        "Throughput: Ingot (durable acks) vs peer (in memory), per second",
        2,
        INK,
    )?;
    let (top, bottom) = (70, h as i32 - 80);
    for (k, b) in bars.iter().enumerate() {
        let x0 = 30 + (k * panel_w) as i32;
        let max = b.ingot[2].max(b.peer[2]).max(1.0) * 1.15;
        let step = nice_step(max, 5.0);
        let y = |v: f64| bottom - ((v / max) * f64::from(bottom - top)) as i32;
        let mut t = 0.0;
        while t <= max {
            draw(root.draw(&PathElement::new(
                vec![(x0 + 50, y(t)), (x0 + panel_w as i32 - 20, y(t))],
                GRID,
            )))?;
            let label = short(t);
            text(
                &root,
                x0 + 44 - text_width(&label, 1),
                y(t) - 3,
                &label,
                1,
                INK,
            )?;
            t += step;
        }
        for (i, (name, v, color)) in [
            ("Ingot", b.ingot, INGOT),
            (b.peer_name.as_str(), b.peer, PEER),
        ]
        .into_iter()
        .enumerate()
        {
            let bx = x0 + 80 + i as i32 * 120;
            if v[1].is_finite() {
                draw(root.draw(&Rectangle::new(
                    [(bx, y(v[1])), (bx + 70, bottom)],
                    color.filled(),
                )))?;
                // Whisker: min to max.
                let cx = bx + 35;
                let whisker = BLACK.stroke_width(2);
                draw(root.draw(&PathElement::new(
                    vec![(cx, y(v[0])), (cx, y(v[2]))],
                    whisker,
                )))?;
                draw(root.draw(&PathElement::new(
                    vec![(cx - 8, y(v[0])), (cx + 8, y(v[0]))],
                    whisker,
                )))?;
                draw(root.draw(&PathElement::new(
                    vec![(cx - 8, y(v[2])), (cx + 8, y(v[2]))],
                    whisker,
                )))?;
                let value = short(v[1]);
                text(
                    &root,
                    cx - text_width(&value, 2) / 2,
                    y(v[2]) - 20,
                    &value,
                    2,
                    INK,
                )?;
            }
            text(
                &root,
                bx + 35 - text_width(name, 1) / 2,
                bottom + 8,
                name,
                1,
                INK,
            )?;
        }
        draw(root.draw(&PathElement::new(
            vec![(x0 + 50, bottom), (x0 + panel_w as i32 - 20, bottom)],
            INK,
        )))?;
        let ratio = if b.peer[1] > 0.0 {
            format!("ratio {:.2}", b.ingot[1] / b.peer[1])
        } else {
            String::new()
        };
        text(&root, x0 + 60, bottom + 32, &b.label, 2, INK)?;
        text(&root, x0 + 60, bottom + 52, &ratio, 2, INK)?;
    }
    draw(root.present())
}

/// Latency percentiles (log scale), one line per server.
pub fn latency(path: &Path, curves: &[Curve]) -> anyhow::Result<()> {
    let (w, h) = (1060u32, 520u32);
    let root = BitMapBackend::new(path, (w, h)).into_drawing_area();
    draw(root.fill(&WHITE))?;
    text(
        &root,
        20,
        12,
        "Latency at a paced 20,000 requests/s (ms, log scale)",
        2,
        INK,
    )?;
    let (left, right, top, bottom) = (80, w as i32 - 360, 60, h as i32 - 60);
    let values: Vec<f64> = curves
        .iter()
        .flat_map(|c| c.ms)
        .filter(|v| v.is_finite() && *v > 0.0)
        .collect();
    let lo = values
        .iter()
        .copied()
        .fold(f64::INFINITY, f64::min)
        .max(0.001);
    let hi = values.iter().copied().fold(0.0f64, f64::max).max(lo * 10.0);
    let (lo, hi) = (
        10f64.powf(lo.log10().floor()),
        10f64.powf(hi.log10().ceil()),
    );
    let y = |v: f64| {
        let f = (v.max(lo).log10() - lo.log10()) / (hi.log10() - lo.log10());
        bottom - (f * f64::from(bottom - top)) as i32
    };
    let names = ["p5", "p25", "p50", "p75", "p95", "p99"];
    let x = |i: usize| left + 20 + (i as i32) * (right - left - 40) / 5;
    let mut decade = lo;
    while decade <= hi * 1.0001 {
        draw(root.draw(&PathElement::new(
            vec![(left, y(decade)), (right, y(decade))],
            GRID,
        )))?;
        let label = if decade < 1.0 {
            format!("{decade}")
        } else {
            format!("{decade:.0}")
        };
        text(
            &root,
            left - 8 - text_width(&label, 1),
            y(decade) - 3,
            &label,
            1,
            INK,
        )?;
        decade *= 10.0;
    }
    for (i, name) in names.iter().enumerate() {
        text(
            &root,
            x(i) - text_width(name, 2) / 2,
            bottom + 12,
            name,
            2,
            INK,
        )?;
    }
    draw(root.draw(&PathElement::new(
        vec![(left, bottom), (right, bottom)],
        INK,
    )))?;
    draw(root.draw(&PathElement::new(vec![(left, top), (left, bottom)], INK)))?;
    let palette = [
        INGOT,
        PEER,
        RGBColor(200, 40, 40),
        RGBColor(40, 90, 200),
        RGBColor(40, 150, 60),
        RGBColor(140, 60, 170),
    ];
    for (k, curve) in curves.iter().enumerate() {
        let color = palette[k % palette.len()];
        let points: Vec<(i32, i32)> = curve
            .ms
            .iter()
            .enumerate()
            .filter(|(_, v)| v.is_finite())
            .map(|(i, v)| (x(i), y(*v)))
            .collect();
        draw(root.draw(&PathElement::new(points.clone(), color.stroke_width(3))))?;
        for p in points {
            draw(root.draw(&Circle::new(p, 5, color.filled())))?;
        }
        let ly = top + 10 + k as i32 * 30;
        draw(root.draw(&Rectangle::new(
            [(right + 20, ly), (right + 40, ly + 12)],
            color.filled(),
        )))?;
        text(&root, right + 48, ly + 2, &curve.label, 1, INK)?;
        let p99 = format!("p99 {:.2} ms", curve.ms[5]);
        text(&root, right + 48, ly + 14, &p99, 1, INK)?;
    }
    draw(root.present())
}

/// The `plots` suite: draws what the protocol suites measured.
pub fn run() -> anyhow::Result<String> {
    let mut all = Figures::default();
    for name in ["coap", "mqtt"] {
        let path = format!("bench/out/{name}.json");
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                let figures: Figures = serde_json::from_str(&text)?;
                all.bars.extend(figures.bars);
                all.curves.extend(figures.curves);
            }
            Err(_) => eprintln!("no {path}: run the {name} suite first"),
        }
    }
    std::fs::create_dir_all("docs/bench")?;
    let mut out = String::new();
    let _ = writeln!(out, "### Plots\n");
    if !all.bars.is_empty() {
        throughput(Path::new("docs/bench/throughput.png"), &all.bars)?;
        let _ = writeln!(
            out,
            "![Throughput of Ingot and its peers](bench/throughput.png)\n\nMedians of the runs, whiskers from \
             the slowest to the fastest; each panel has its own scale.\n"
        );
    }
    if !all.curves.is_empty() {
        latency(Path::new("docs/bench/latency.png"), &all.curves)?;
        let _ = writeln!(
            out,
            "![Latency percentiles of Ingot and its peers](bench/latency.png)\n\nEach percentile is the median \
             over the runs paced at 20,000 requests/s (CoAP: 256 clients; MQTT: 64 publishers, QoS 1).\n"
        );
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charts_are_drawn_without_a_font_library() {
        let dir = tempfile::tempdir().unwrap();
        let bars = vec![Bars {
            label: "CoAP CON, 256 clients".into(),
            ingot: [30_000.0, 32_000.0, 33_000.0],
            peer: [20_000.0, 21_000.0, 23_000.0],
            peer_name: "libcoap".into(),
        }];
        throughput(&dir.path().join("t.png"), &bars).unwrap();
        let curves = vec![Curve {
            label: "Ingot CoAP (20k/s)".into(),
            ms: [0.1, 0.2, 0.3, 0.5, 1.0, 2.5],
        }];
        latency(&dir.path().join("l.png"), &curves).unwrap();
        for f in ["t.png", "l.png"] {
            let bytes = std::fs::read(dir.path().join(f)).unwrap();
            assert_eq!(&bytes[1..4], b"PNG");
        }
        assert_eq!(nice_step(100.0, 5.0), 20.0);
        assert_eq!(short(123_456.0), "123k");
    }
}
