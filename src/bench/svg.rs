// SPDX-License-Identifier: MIT OR Apache-2.0
//! A roofline plot of a [`BenchReport`] as SVG: arithmetic intensity
//! (FLOP per byte) against GFLOP/s, both logarithmic; the memory roof from
//! the read probe, the FMA and dot4 ceilings, one point per result.

use std::fmt::Write;

use crate::bench::BenchReport;

const WIDTH: f64 = 900.0;
const HEIGHT: f64 = 560.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 250.0;
const TOP: f64 = 40.0;
const BOTTOM: f64 = 50.0;
const COLORS: [&str; 10] = [
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
    "#bcbd22", "#17becf",
];

/// Escapes text for SVG.
fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

impl BenchReport {
    /// The roofline plot, as an SVG document.
    pub fn to_svg(&self) -> String {
        let p = &self.probes;
        let bandwidth = p
            .read_gbps
            .values()
            .copied()
            .fold(p.memory_gbps.1, f64::max);
        let ceiling = p.fma_gflops.max(p.dot4_gops).max(1e-3);
        let points: Vec<(f64, f64)> = self
            .results
            .iter()
            .map(|r| (r.intensity(), r.gflops))
            .collect();
        let decade = |v: f64, up: bool| {
            let l = v.max(1e-6).log10();
            10f64.powf(if up { l.ceil() } else { l.floor() })
        };
        let x_min = decade(points.iter().map(|p| p.0).fold(0.25, f64::min), false);
        let x_max = decade(
            points
                .iter()
                .map(|p| p.0)
                .fold(ceiling / bandwidth * 4.0, f64::max),
            true,
        );
        let y_min = decade(
            points.iter().map(|p| p.1).fold(ceiling / 10.0, f64::min),
            false,
        );
        let y_max = decade(ceiling * 1.5, true);
        let sx = |x: f64| {
            LEFT + (x.log10() - x_min.log10()) / (x_max.log10() - x_min.log10())
                * (WIDTH - LEFT - RIGHT)
        };
        let sy = |y: f64| {
            HEIGHT
                - BOTTOM
                - (y.log10() - y_min.log10()) / (y_max.log10() - y_min.log10())
                    * (HEIGHT - TOP - BOTTOM)
        };
        let mut s = String::new();
        let _ = writeln!(
            s,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" font-family="sans-serif" font-size="12">"#
        );
        let _ = writeln!(s, r#"<rect width="100%" height="100%" fill="white"/>"#);
        let _ = writeln!(
            s,
            r#"<text x="{LEFT}" y="22" font-size="15">Roofline on {} ({}), {}</text>"#,
            escape(&self.adapter.adapter_name),
            escape(&self.adapter.backend),
            self.timing
        );
        // Axes with a grid line per decade.
        let mut x = x_min;
        while x <= x_max * 1.0001 {
            let px = sx(x);
            let _ = writeln!(
                s,
                r##"<line x1="{px:.1}" y1="{TOP}" x2="{px:.1}" y2="{:.1}" stroke="#ddd"/><text x="{px:.1}" y="{:.1}" text-anchor="middle">{x}</text>"##,
                HEIGHT - BOTTOM,
                HEIGHT - BOTTOM + 16.0
            );
            x *= 10.0;
        }
        let mut y = y_min;
        while y <= y_max * 1.0001 {
            let py = sy(y);
            let _ = writeln!(
                s,
                r##"<line x1="{LEFT}" y1="{py:.1}" x2="{:.1}" y2="{py:.1}" stroke="#ddd"/><text x="{:.1}" y="{:.1}" text-anchor="end">{y}</text>"##,
                WIDTH - RIGHT,
                LEFT - 6.0,
                py + 4.0
            );
            y *= 10.0;
        }
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">arithmetic intensity (FLOP per byte read + written)</text>"#,
            (LEFT + WIDTH - RIGHT) / 2.0,
            HEIGHT - 12.0
        );
        let _ = writeln!(
            s,
            r#"<text transform="translate(18 {:.1}) rotate(-90)" text-anchor="middle">GFLOP/s</text>"#,
            (TOP + HEIGHT - BOTTOM) / 2.0
        );
        // Roofs: bandwidth × intensity up to each ceiling.
        for (peak, name, dash) in [
            (p.fma_gflops, "FMA", ""),
            (p.dot4_gops, "dot4I8Packed", "6 4"),
        ] {
            if peak <= 0.0 {
                continue;
            }
            let knee = peak / bandwidth;
            let x0 = x_min;
            let _ = writeln!(
                s,
                r##"<polyline fill="none" stroke="#333" stroke-width="1.5" stroke-dasharray="{dash}" points="{:.1},{:.1} {:.1},{:.1} {:.1},{:.1}"/><text x="{:.1}" y="{:.1}" text-anchor="end">{name} {peak:.1} G/s</text>"##,
                sx(x0),
                sy((bandwidth * x0).max(y_min)),
                sx(knee),
                sy(peak),
                sx(x_max),
                sy(peak),
                sx(x_max) - 4.0,
                sy(peak) - 5.0
            );
        }
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{:.1}">read {bandwidth:.1} GB/s</text>"#,
            sx(x_min) + 6.0,
            sy((bandwidth * x_min * 2.0).max(y_min)) - 6.0
        );
        // Points, one colour per policy, legend on the right.
        let mut policies: Vec<&str> = Vec::new();
        for r in &self.results {
            if !policies.contains(&r.policy.as_str()) {
                policies.push(&r.policy);
            }
        }
        for (r, &(ai, g)) in self.results.iter().zip(&points) {
            let i = policies.iter().position(|p| *p == r.policy).unwrap_or(0);
            let _ = writeln!(
                s,
                r#"<circle cx="{:.1}" cy="{:.1}" r="5" fill="{}"><title>{} {}x{}x{}: {g:.2} GFLOP/s, {:.0}% of roof</title></circle>"#,
                sx(ai),
                sy(g.max(y_min)),
                COLORS[i % COLORS.len()],
                escape(&r.policy),
                r.m,
                r.k,
                r.n,
                r.roofline_fraction * 100.0
            );
        }
        for (i, policy) in policies.iter().enumerate() {
            let y = TOP + 10.0 + 18.0 * i as f64;
            let _ = writeln!(
                s,
                r#"<circle cx="{:.1}" cy="{y:.1}" r="5" fill="{}"/><text x="{:.1}" y="{:.1}">{}</text>"#,
                WIDTH - RIGHT + 20.0,
                COLORS[i % COLORS.len()],
                WIDTH - RIGHT + 30.0,
                y + 4.0,
                escape(policy)
            );
        }
        s.push_str("</svg>\n");
        s
    }
}
