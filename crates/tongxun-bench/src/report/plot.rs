//! The curves' plots: one SVG line chart per curve (plotters' SVG backend), sizes on a log
//! scale, one line per peer.

use anyhow::{Result, anyhow};
use plotters::prelude::*;

/// Width and height of a plot, in pixels.
const SIZE: (u32, u32) = (760, 440);
/// One color per line, in order: blue, orange, green, red (matplotlib's first four).
const COLORS: [RGBColor; 4] = [
    RGBColor(0x1f, 0x77, 0xb4),
    RGBColor(0xff, 0x7f, 0x0e),
    RGBColor(0x2c, 0xa0, 0x2c),
    RGBColor(0xd6, 0x27, 0x28),
];

/// One line: its name in the legend and its `(size, value)` points.
#[derive(Debug, Clone)]
pub(crate) struct Series {
    pub(crate) name: String,
    pub(crate) points: Vec<(f64, f64)>,
}

/// What a plot shows.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Axes<'a> {
    pub(crate) title: &'a str,
    pub(crate) x: &'a str,
    pub(crate) y: &'a str,
    /// Writes a size on the x axis (`10k`, `4 KiB`).
    pub(crate) x_label: fn(f64) -> String,
}

/// The SVG text of a line chart of `series`: log-scale x, linear y from 0, a legend.
pub(crate) fn line_chart(axes: Axes<'_>, series: &[Series]) -> Result<String> {
    let xs = series.iter().flat_map(|s| s.points.iter().map(|p| p.0));
    let (x_min, x_max) = xs.fold((f64::INFINITY, 0.0f64), |(lo, hi), x| {
        (lo.min(x), hi.max(x))
    });
    let (x_min, x_max) = if x_min.is_finite() && x_min > 0.0 {
        (x_min / 1.5, x_max * 1.5)
    } else {
        (1.0, 10.0)
    };
    let y_max = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.1))
        .filter(|y| y.is_finite())
        .fold(0.0f64, f64::max);
    // Headroom above the highest point for the legend, in the upper left.
    let y_max = if y_max > 0.0 { y_max * 1.4 } else { 1.0 };
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(draw_error)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(axes.title, ("sans-serif", 20))
            .margin(16)
            .x_label_area_size(48)
            .y_label_area_size(72)
            .build_cartesian_2d((x_min..x_max).log_scale(), 0.0..y_max)
            .map_err(draw_error)?;
        chart
            .configure_mesh()
            .x_desc(axes.x)
            .y_desc(axes.y)
            .x_label_formatter(&|x| (axes.x_label)(*x))
            .y_label_formatter(&|y| short_number(*y))
            .label_style(("sans-serif", 13))
            .axis_desc_style(("sans-serif", 15))
            .light_line_style(WHITE)
            .draw()
            .map_err(draw_error)?;
        for (line, color) in series.iter().zip(COLORS.iter().cycle()) {
            let color = *color;
            chart
                .draw_series(LineSeries::new(
                    line.points.iter().copied(),
                    color.stroke_width(2),
                ))
                .map_err(draw_error)?
                .label(line.name.as_str())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
                });
            chart
                .draw_series(
                    line.points
                        .iter()
                        .map(|&point| Circle::new(point, 4, color.filled())),
                )
                .map_err(draw_error)?;
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.9))
            .border_style(BLACK.mix(0.4))
            .label_font(("sans-serif", 14))
            .draw()
            .map_err(draw_error)?;
        root.present().map_err(draw_error)?;
    }
    Ok(svg)
}

fn draw_error<E: std::error::Error + Send + Sync>(e: DrawingAreaErrorKind<E>) -> anyhow::Error {
    anyhow!("drawing a plot: {e}")
}

/// `12000` as `12k`, `2500000` as `2.5M`, `0.25` as `0.25`.
pub(crate) fn short_number(v: f64) -> String {
    let trim = |text: String| {
        if text.contains('.') {
            text.trim_end_matches('0').trim_end_matches('.').to_owned()
        } else {
            text
        }
    };
    let a = v.abs();
    if a >= 1e6 {
        format!("{}M", trim(format!("{:.1}", v / 1e6)))
    } else if a >= 1e3 {
        format!("{}k", trim(format!("{:.1}", v / 1e3)))
    } else if a >= 10.0 || a == 0.0 {
        format!("{v:.0}")
    } else {
        trim(format!("{v:.2}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chart(series: &[Series]) -> String {
        let axes = Axes {
            title: "Idle memory",
            x: "idle connections",
            y: "KiB per connection",
            x_label: short_number,
        };
        line_chart(axes, series).expect("the chart draws")
    }

    #[test]
    fn draws_one_line_and_one_dot_per_point_for_each_series() {
        let series = vec![
            Series {
                name: "tongxun".to_owned(),
                points: vec![(1e3, 20.0), (1e4, 19.0), (1e5, 18.5)],
            },
            Series {
                name: "Node socket.io".to_owned(),
                points: vec![(1e3, 15.0), (1e4, 14.0)],
            },
        ];
        let svg = chart(&series);
        let doc = roxmltree::Document::parse(&svg).expect("well-formed XML");
        let root = doc.root_element();
        assert_eq!(root.tag_name().name(), "svg");
        // Each series: its data line (one vertex per point) then its legend entry, in its
        // color and twice as wide as the axes and the mesh; a dot per point.
        let lines: Vec<(&str, usize)> = root
            .descendants()
            .filter(|n| n.has_tag_name("polyline") && n.attribute("stroke-width") == Some("2"))
            .map(|n| {
                let points = n.attribute("points").unwrap_or_default();
                (
                    n.attribute("stroke").unwrap_or_default(),
                    points.split_whitespace().count(),
                )
            })
            .collect();
        assert_eq!(lines.len(), 2 * series.len(), "{lines:?}");
        for (s, color) in series.iter().zip(COLORS) {
            let color = format!("#{:02X}{:02X}{:02X}", color.0, color.1, color.2);
            let drawn: Vec<usize> = lines
                .iter()
                .filter(|(stroke, _)| *stroke == color)
                .map(|&(_, n)| n)
                .collect();
            assert_eq!(drawn, [s.points.len(), 2], "{}", s.name);
        }
        let circles = root.descendants().filter(|n| n.has_tag_name("circle"));
        assert_eq!(circles.count(), 5);
        let texts: Vec<&str> = root.descendants().filter_map(|n| n.text()).collect();
        for label in [
            "tongxun",
            "Node socket.io",
            "idle connections",
            "KiB per connection",
        ] {
            assert!(texts.iter().any(|t| t.contains(label)), "{label} missing");
        }
    }

    #[test]
    fn draws_an_empty_chart_without_points() {
        let svg = chart(&[]);
        roxmltree::Document::parse(&svg).expect("well-formed XML");
    }

    #[test]
    fn writes_short_numbers() {
        assert_eq!(short_number(100_000.0), "100k");
        assert_eq!(short_number(1_500.0), "1.5k");
        assert_eq!(short_number(2_500_000.0), "2.5M");
        assert_eq!(short_number(12.0), "12");
        assert_eq!(short_number(0.25), "0.25");
        assert_eq!(short_number(0.0), "0");
    }
}
