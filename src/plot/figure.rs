//! What a plot shows, apart from how it is drawn: a titled grid of panels, each a bar chart,
//! lines over categories, a heat map, points, a histogram or value ranges. The node kinds
//! ([`super::nodes`]) describe their figures in these terms; [`super::draw`] draws them on any
//! plotters backend.

/// A figure: a title over a grid of panels (filled row by row).
#[derive(Debug, Clone)]
pub struct Figure {
    /// The figure's title.
    pub title: String,
    /// Panels per row of the grid.
    pub columns: usize,
    /// The panels.
    pub panels: Vec<Panel>,
}

/// One chart of a figure.
#[derive(Debug, Clone)]
pub enum Panel {
    /// One bar per category.
    Bars {
        /// The panel's title.
        title: String,
        /// Axis titles.
        x_desc: String,
        /// Axis titles.
        y_desc: String,
        /// The categories' names, one per bar.
        labels: Vec<String>,
        /// The bars' heights.
        values: Vec<f64>,
        /// The first `n` bars drawn in the main colour, the rest grey (components kept and not).
        kept: Option<usize>,
        /// A line over the bars on the same axis (a cumulative sum), with its legend.
        line: Option<(String, Vec<f64>)>,
        /// Colour bars by sign (coefficients): positive blue, negative red.
        signed: bool,
    },
    /// One line per series over the same categories.
    Lines {
        /// The panel's title.
        title: String,
        /// Axis titles.
        x_desc: String,
        /// Axis titles.
        y_desc: String,
        /// The categories (x positions).
        labels: Vec<String>,
        /// (legend, one value per category).
        series: Vec<(String, Vec<f64>)>,
    },
    /// A square matrix as coloured cells with the names on both axes.
    Heat {
        /// The panel's title.
        title: String,
        /// Row and column names.
        names: Vec<String>,
        /// The matrix, row by row.
        matrix: Vec<Vec<f64>>,
        /// Values mapped to the ends of the colour scale.
        range: (f64, f64),
    },
    /// Points, coloured by group, optionally sized and tagged.
    Points {
        /// The panel's title.
        title: String,
        /// Axis titles.
        x_desc: String,
        /// Axis titles.
        y_desc: String,
        /// (x, y) per point.
        points: Vec<(f64, f64)>,
        /// Group index per point (empty: one group).
        group: Vec<usize>,
        /// Group names, for the legend (empty: no legend).
        groups: Vec<String>,
        /// Marker radius per point in pixels (empty: small dots).
        radius: Vec<f64>,
        /// Text beside each point (empty: none).
        tags: Vec<String>,
    },
    /// Counts per bin between edges.
    Hist {
        /// The panel's title (the column).
        title: String,
        /// Bin edges (one more than counts).
        edges: Vec<f64>,
        /// Rows per bin.
        counts: Vec<f64>,
    },
    /// One column's spread: minimum to maximum, mean ± standard deviation, mean.
    Spread {
        /// The panel's title (the column).
        title: String,
        /// minimum, maximum, mean, standard deviation.
        stats: [f64; 4],
    },
}

impl Panel {
    /// The panel's title.
    pub fn title(&self) -> &str {
        match self {
            Panel::Bars { title, .. }
            | Panel::Lines { title, .. }
            | Panel::Heat { title, .. }
            | Panel::Points { title, .. }
            | Panel::Hist { title, .. }
            | Panel::Spread { title, .. } => title,
        }
    }
}

/// `name` cut to `max` characters with an ellipsis in the middle, so that 100 long column names
/// fit an axis and stay distinct (`sensor_measurement_042` → `senso…ment_042`: names often
/// differ only at the end).
pub fn abbreviate(name: &str, max: usize) -> String {
    let n = name.chars().count();
    if n <= max {
        return name.to_string();
    }
    let keep = max.saturating_sub(1).max(2);
    let head = keep * 2 / 5;
    let tail = keep - head;
    let chars: Vec<char> = name.chars().collect();
    format!("{}…{}", chars[..head].iter().collect::<String>(), chars[n - tail..].iter().collect::<String>())
}

/// Panels per row for `n` small panels: a near-square grid, wider than tall.
pub fn grid_columns(n: usize) -> usize {
    (n as f64).sqrt().ceil().max(1.0) as usize
}
