//! The widget's MRR-over-time chart as plain SVG geometry: one bar per month-end MRR,
//! scaled to the largest month. Drawn on the server so the page needs no script.

/// Drawing area in SVG user units (the SVG scales to its container).
pub const WIDTH: u32 = 480;
pub const HEIGHT: u32 = 160;
/// Room under the bars for month labels, above them for the value of the tallest.
const LABELS: u32 = 20;
const HEADROOM: u32 = 16;
const GAP: u32 = 6;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bar {
    pub x: u32,
    pub y: u32,
    pub width: u32,
    pub height: u32,
    /// Centre of the bar, for its label.
    pub label_x: u32,
    /// `Jan`, `Feb`, …
    pub label: String,
    /// `2026-01: $500.00`, for the bar's tooltip and the table behind the chart.
    pub month: String,
    pub value: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BarChart {
    pub currency: String,
    pub width: u32,
    pub height: u32,
    /// y of the bars' baseline; month labels sit under it.
    pub baseline: u32,
    pub label_y: u32,
    pub bars: Vec<Bar>,
    /// The largest month, as a value.
    pub peak: String,
}

fn month_label(month: &str) -> String {
    const NAMES: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    month
        .split_once('-')
        .and_then(|(_, m)| m.parse::<usize>().ok())
        .and_then(|m| NAMES.get(m.wrapping_sub(1)))
        .map_or_else(|| month.to_owned(), |name| (*name).to_owned())
}

/// Bars for `(YYYY-MM, minor units)` points in order; none without points. Negative months
/// (credits) draw as empty bars.
pub fn bar_chart(points: &[(String, i64)], format: impl Fn(i64) -> String) -> Option<BarChart> {
    if points.is_empty() {
        return None;
    }
    let peak = points.iter().map(|(_, v)| (*v).max(0)).max().unwrap_or(0);
    let baseline = HEIGHT - LABELS;
    let usable = baseline - HEADROOM;
    let slot = WIDTH / points.len() as u32;
    let width = slot.saturating_sub(GAP).max(1);
    let bars = points
        .iter()
        .enumerate()
        .map(|(i, (month, value))| {
            let height = if peak == 0 {
                0
            } else {
                ((i128::from((*value).max(0)) * i128::from(usable)) / i128::from(peak)) as u32
            };
            let x = i as u32 * slot + GAP / 2;
            Bar {
                x,
                y: baseline - height,
                width,
                height,
                label_x: x + width / 2,
                label: month_label(month),
                month: month.clone(),
                value: format(*value),
            }
        })
        .collect();
    Some(BarChart {
        currency: String::new(),
        width: WIDTH,
        height: HEIGHT,
        baseline,
        label_y: HEIGHT - 5,
        bars,
        peak: format(peak),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_scale_to_the_largest_month_and_fit_the_width() {
        let points = vec![
            ("2026-01".to_owned(), 0),
            ("2026-02".to_owned(), 50_000),
            ("2026-03".to_owned(), 100_000),
            ("2026-04".to_owned(), -500),
        ];
        let chart = bar_chart(&points, |v| format!("{v}")).unwrap();
        let heights: Vec<u32> = chart.bars.iter().map(|b| b.height).collect();
        let usable = HEIGHT - LABELS - HEADROOM;
        assert_eq!(heights, vec![0, usable / 2, usable, 0]);
        assert!(chart.bars.iter().all(|b| b.y + b.height == chart.baseline));
        assert!(chart.bars.iter().all(|b| b.x + b.width <= WIDTH));
        assert_eq!(chart.bars[2].label, "Mar");
        assert_eq!(chart.peak, "100000");
        assert!(bar_chart(&[], |v| v.to_string()).is_none());
    }

    #[test]
    fn all_zero_months_draw_no_bars_and_odd_months_keep_their_text() {
        let chart =
            bar_chart(&[("2026-13".into(), 0), ("x".into(), 0)], |v| v.to_string()).unwrap();
        assert!(chart.bars.iter().all(|b| b.height == 0));
        assert_eq!(chart.bars[0].label, "2026-13");
        assert_eq!(chart.bars[1].label, "x");
    }
}
