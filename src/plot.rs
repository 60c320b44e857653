//! The load run's plot (plotters, SVG): requests answered per second on the left axis and the
//! 99th-percentile response time in milliseconds on the right one, against seconds since the
//! start, with ticks, axis labels, a legend and the sign-in phase shaded.

use plotters::prelude::*;
use rcc_simulators::lync::load::Row;

/// The SVG of a load run's per-second rows.
pub fn load_svg(rows: &[Row], title: &str) -> anyhow::Result<String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (900, 420)).into_drawing_area();
        let fail = |e: &dyn std::fmt::Display| anyhow::anyhow!("drawing the load plot: {e}");
        root.fill(&WHITE).map_err(|e| fail(&e))?;
        let t_max = rows.iter().map(|r| r.t).max().unwrap_or(1).max(1);
        let req_max = rows.iter().map(|r| r.requests).max().unwrap_or(1).max(1) as f64 * 1.1;
        let p99_max = rows
            .iter()
            .map(|r| r.p99_ms)
            .fold(0.0_f64, f64::max)
            .max(0.001)
            * 1.1;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .right_y_label_area_size(60)
            .build_cartesian_2d(0u64..t_max, 0f64..req_max)
            .map_err(|e| fail(&e))?
            .set_secondary_coord(0u64..t_max, 0f64..p99_max);
        chart
            .configure_mesh()
            .x_desc("seconds since start")
            .y_desc("requests answered per second")
            .draw()
            .map_err(|e| fail(&e))?;
        chart
            .configure_secondary_axes()
            .y_desc("p99 response time, ms")
            .draw()
            .map_err(|e| fail(&e))?;
        let sign_in_end = rows
            .iter()
            .filter(|r| r.phase == "sign-in")
            .map(|r| r.t)
            .max();
        if let Some(end) = sign_in_end {
            chart
                .draw_series(std::iter::once(Rectangle::new(
                    [(0, 0.0), (end, req_max)],
                    RGBColor(230, 230, 230).filled(),
                )))
                .map_err(|e| fail(&e))?
                .label("sign-in phase")
                .legend(|(x, y)| {
                    Rectangle::new(
                        [(x, y - 5), (x + 16, y + 5)],
                        RGBColor(230, 230, 230).filled(),
                    )
                });
        }
        let blue = RGBColor(31, 111, 178);
        let orange = RGBColor(194, 65, 12);
        chart
            .draw_series(LineSeries::new(
                rows.iter().map(|r| (r.t, r.requests as f64)),
                blue.stroke_width(2),
            ))
            .map_err(|e| fail(&e))?
            .label("requests answered per second")
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 16, y)], blue.stroke_width(2)));
        chart
            .draw_secondary_series(LineSeries::new(
                rows.iter().map(|r| (r.t, r.p99_ms)),
                orange.stroke_width(2),
            ))
            .map_err(|e| fail(&e))?
            .label("p99 response time (ms, right axis)")
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 16, y)], orange.stroke_width(2)));
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()
            .map_err(|e| fail(&e))?;
        root.present().map_err(|e| fail(&e))?;
    }
    Ok(svg)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(t: u64, phase: &'static str, requests: u64, p99_ms: f64) -> Row {
        Row {
            t,
            phase,
            sessions: 10,
            requests,
            failures: 0,
            p50_ms: p99_ms / 2.0,
            p99_ms,
            events: 0,
        }
    }

    #[test]
    fn the_plot_has_both_axes_titled_and_a_legend() {
        let rows = [
            row(0, "sign-in", 0, 0.0),
            row(1, "sign-in", 0, 0.0),
            row(2, "calls", 900, 1.5),
            row(3, "calls", 1000, 2.5),
        ];
        let svg = load_svg(&rows, "rcc-gateway under load").expect("svg");
        for text in [
            "seconds since start",
            "requests answered per second",
            "p99 response time, ms",
            "p99 response time (ms, right axis)",
            "sign-in phase",
            "rcc-gateway under load",
        ] {
            assert!(svg.contains(text), "{text} missing");
        }
        assert!(svg.matches("<polyline").count() >= 2, "two series");
        // Tick labels on the request axis reach the largest value.
        let labels: Vec<&str> = svg.lines().map(str::trim).collect();
        assert!(
            labels.iter().any(|l| l.starts_with("1000")),
            "ticks: {labels:?}"
        );
    }
}
