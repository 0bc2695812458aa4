//! The rollout chart: the seed's four rates per day, its expected bands, and the rollout
//! changes as vertical phase boundaries, drawn server-side as SVG (plotters), so a team
//! without Grafana still sees its rollout.

use chrono::{DateTime, Duration, Utc};
use plotters::prelude::*;

use crate::report::{Criteria, rates};
use crate::store::console::{DayCounts, RolloutChange};

/// The chart's size in SVG units (it scales to the page's width).
pub const SIZE: (u32, u32) = (960, 400);

/// One series: its name, colour and band (the seed's expected range).
struct Series {
    name: &'static str,
    color: RGBColor,
    band: (f64, f64),
    rate: fn(&crate::report::Rates) -> f64,
}

fn series(criteria: &Criteria) -> [Series; 4] {
    [
        Series {
            name: "auto-reject %",
            color: RGBColor(0xb3, 0x26, 0x1e),
            band: criteria.auto_reject_band,
            rate: |rates| rates.auto_reject,
        },
        Series {
            name: "auto-approve %",
            color: RGBColor(0x1a, 0x7f, 0x37),
            band: criteria.auto_approve_band,
            rate: |rates| rates.auto_approve,
        },
        Series {
            name: "manual review %",
            color: RGBColor(0x1f, 0x4e, 0xa8),
            band: criteria.manual_review_band,
            rate: |rates| rates.manual_review,
        },
        Series {
            name: "false positives % (target)",
            color: RGBColor(0x8a, 0x4b, 0x00),
            band: (0.0, criteria.false_positive_target),
            rate: |rates| rates.false_positive,
        },
    ]
}

/// Days since `start`, the x coordinate.
fn day_of(start: DateTime<Utc>, at: DateTime<Utc>) -> f64 {
    (at - start).num_seconds() as f64 / 86_400.0
}

/// The chart over `[start, end]`: each day's four rates (of the validated requests that day),
/// the bands shaded, and a dashed line at each rollout change labelled with its percentage.
///
/// # Errors
/// When plotters cannot draw (it does not, on a string).
pub fn rates_svg(
    days: &[DayCounts],
    changes: &[RolloutChange],
    criteria: &Criteria,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> anyhow::Result<String> {
    let mut svg = String::new();
    draw(&mut svg, days, changes, criteria, start, end)
        .map_err(|error| anyhow::anyhow!("draw the rollout chart: {error}"))?;
    Ok(svg)
}

fn draw(
    svg: &mut String,
    days: &[DayCounts],
    changes: &[RolloutChange],
    criteria: &Criteria,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> Result<(), Box<dyn std::error::Error>> {
    let root = SVGBackend::with_string(svg, SIZE).into_drawing_area();
    root.fill(&WHITE)?;
    let width = day_of(start, end).max(1.0);
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "Validation rollout: the seed's rates per day",
            ("sans-serif", 20),
        )
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(48)
        .build_cartesian_2d(0.0..width, 0.0..100.0)?;
    chart
        .configure_mesh()
        .y_desc("% of validated requests")
        .x_desc("day (UTC)")
        .x_labels(8)
        .x_label_formatter(&|x| {
            (start + Duration::seconds((*x * 86_400.0) as i64))
                .format("%m-%d")
                .to_string()
        })
        .light_line_style(WHITE)
        .label_style(("sans-serif", 14))
        .draw()?;
    for line in series(criteria) {
        chart.draw_series(std::iter::once(Rectangle::new(
            [(0.0, line.band.0), (width, line.band.1)],
            line.color.mix(0.10).filled(),
        )))?;
    }
    for line in series(criteria) {
        let points: Vec<(f64, f64)> = days
            .iter()
            .filter(|day| day.counts.validated > 0)
            .map(|day| {
                (
                    day_of(start, day.day) + 0.5,
                    (line.rate)(&rates(&day.counts, crate::report::Basis::Cohort)),
                )
            })
            .collect();
        let color = line.color;
        chart
            .draw_series(LineSeries::new(points.clone(), color.stroke_width(3)))?
            .label(line.name)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(3))
            });
        chart.draw_series(
            points
                .into_iter()
                .map(|point| Circle::new(point, 4, color.filled())),
        )?;
    }
    for change in changes {
        let x = day_of(start, change.at);
        if !(0.0..=width).contains(&x) {
            continue;
        }
        chart.draw_series(DashedLineSeries::new(
            vec![(x, 0.0), (x, 100.0)],
            6,
            4,
            BLACK.stroke_width(1),
        ))?;
        let label = change.percent.map_or_else(
            || "rollout ?".to_string(),
            |percent| format!("→ {percent} %"),
        );
        chart.draw_series(std::iter::once(Text::new(
            label,
            (x, 97.0),
            ("sans-serif", 14).into_font().color(&BLACK),
        )))?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::MiddleRight)
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .label_font(("sans-serif", 14))
        .draw()?;
    root.present()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::Counts;

    #[test]
    fn the_chart_draws_the_four_rates_their_bands_and_the_phase_boundaries() {
        let start = Utc::now() - Duration::days(7);
        let day = |offset: i64, validated: i64, rejected: i64| DayCounts {
            day: start + Duration::days(offset),
            counts: Counts {
                total: validated,
                validated,
                auto_rejected: rejected,
                auto_approved: validated / 4,
                manual_review: validated - rejected - validated / 4,
                false_positives: 0,
                validation_errors: 0,
                ..Counts::default()
            },
        };
        let changes = [RolloutChange {
            at: start + Duration::days(3),
            percent: Some(50),
            by: "ops".into(),
        }];
        let svg = rates_svg(
            &[day(1, 20, 2), day(4, 40, 3)],
            &changes,
            &Criteria::default(),
            start,
            start + Duration::days(7),
        )
        .unwrap();
        assert!(svg.starts_with("<svg"), "{}", &svg[..40]);
        for name in [
            "auto-reject %",
            "auto-approve %",
            "manual review %",
            "false positives",
        ] {
            assert!(svg.contains(name), "{name} is not in the legend");
        }
        assert!(svg.contains("→ 50 %"), "the phase boundary is not labelled");
        assert!(
            svg.matches("<polyline").count() >= 4,
            "four series are drawn"
        );
    }
}
