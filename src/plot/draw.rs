//! Drawing a [`Figure`] on a plotters drawing area (SVG or bitmap alike): the layout of the
//! panel grid, category axes that stay readable with a hundred names (abbreviated, rotated,
//! thinned), colours, and number labels.

use super::figure::{abbreviate, Figure, Panel};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::FontTransform;

/// The font family every text uses (registered once, embedded: [`super::canvas`]).
pub const FONT: &str = "sans-serif";

type Drawn = std::result::Result<(), String>;

fn fail<E: std::fmt::Display>(e: E) -> String {
    e.to_string()
}

/// Ten distinguishable colours (matplotlib's "tab10"), for classes and clusters.
pub const PALETTE: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];
const MAIN: RGBColor = PALETTE[0];
const LINE: RGBColor = PALETTE[1];
const MUTED: RGBColor = RGBColor(190, 190, 190);
const NEGATIVE: RGBColor = PALETTE[3];

/// Colour `i` of the palette (it repeats after ten).
pub fn color(i: usize) -> RGBColor {
    PALETTE[i % PALETTE.len()]
}

/// A number for an axis: four significant digits, scientific when very large or small.
pub fn number(v: f64) -> String {
    let a = v.abs();
    if v == 0.0 {
        "0".into()
    } else if !(1e-3..1e5).contains(&a) {
        let s = format!("{v:.1e}");
        s.replace("e0", "").replace(".0e", "e")
    } else {
        let s = format!("{v:.4}");
        let s = if s.contains('.') { s.trim_end_matches('0').trim_end_matches('.').to_string() } else { s };
        if s == "-0" {
            "0".into()
        } else {
            s
        }
    }
}

/// [`number`], but a tick within a billionth of the axis span of zero is zero (a tick at
/// -2.8e-17 is round-off of 0).
fn tick(v: f64, span: f64) -> String {
    number(if v.abs() <= span * 1e-9 { 0.0 } else { v })
}

/// Draw `fig` on `root` (white background, the title on top, the panels in a grid).
pub fn figure<DB: DrawingBackend>(fig: &Figure, root: &DrawingArea<DB, Shift>) -> Drawn {
    root.fill(&WHITE).map_err(fail)?;
    let (w, _) = root.dim_in_pixel();
    // The title's font shrinks until the title fits the width (about 0.55 em per character).
    let fits = (w as f64 * 0.95 / (fig.title.chars().count().max(1) as f64 * 0.55)) as u32;
    let title_size = (if w < 600 { 17 } else { 21 }).min(fits).max(11);
    let body = root.titled(&fig.title, (FONT, title_size)).map_err(fail)?;
    let cols = fig.columns.clamp(1, fig.panels.len().max(1));
    let rows = fig.panels.len().div_ceil(cols).max(1);
    let cells = body.split_evenly((rows, cols));
    let small = rows * cols > 4;
    for (panel, area) in fig.panels.iter().zip(&cells) {
        draw_panel(panel, &area.margin(4, 4, 6, 6), small)?;
    }
    root.present().map_err(fail)
}

/// Sizes of a panel's texts.
struct Fonts {
    caption: u32,
    label: u32,
    desc: u32,
}

fn fonts(small: bool) -> Fonts {
    if small {
        Fonts { caption: 14, label: 11, desc: 12 }
    } else {
        Fonts { caption: 17, label: 13, desc: 14 }
    }
}

fn draw_panel<DB: DrawingBackend>(p: &Panel, area: &DrawingArea<DB, Shift>, small: bool) -> Drawn {
    match p {
        Panel::Bars { title, x_desc, y_desc, labels, values, kept, line, signed } => {
            bars(area, small, title, x_desc, y_desc, labels, values, *kept, line.as_ref(), *signed)
        }
        Panel::Lines { title, x_desc, y_desc, labels, series } => lines(area, small, title, x_desc, y_desc, labels, series),
        Panel::Heat { title, names, matrix, range } => heat(area, small, title, names, matrix, *range),
        Panel::Points { title, x_desc, y_desc, points, group, groups, radius, tags } => {
            scatter(area, small, title, x_desc, y_desc, points, group, groups, radius, tags)
        }
        Panel::Hist { title, edges, counts } => hist(area, title, edges, counts),
        Panel::Spread { title, stats } => spread(area, title, *stats),
    }
}

/// How category names fit under an axis `width` pixels wide: (rotate them, characters kept,
/// pixels of label area, at most this many labels).
fn category_axis(labels: &[String], width: u32, font: u32) -> (bool, usize, u32, usize) {
    let n = labels.len().max(1);
    let char_px = font as f64 * 0.62;
    let longest = labels.iter().map(|l| l.chars().count()).max().unwrap_or(1);
    let room = width as f64 * 0.85 / n as f64;
    if longest as f64 * char_px <= room {
        return (false, longest, font + 14, n);
    }
    let keep = longest.min(14);
    // Rotated, a label takes its height (about the font size) along the axis.
    let most = ((width as f64 * 0.85) / (font as f64 * 1.3)).floor().max(2.0) as usize;
    (true, keep, (keep as f64 * char_px) as u32 + 14, most.min(n))
}

/// `n` categories on an axis: segments 0 to n-1, labelled at their centres.
fn categories(n: usize) -> plotters::coord::ranged1d::SegmentedCoord<plotters::coord::types::RangedCoordi32> {
    (0..(n as i32 - 1).max(0)).into_segmented()
}

/// Category labels turned to read downwards from below their place on the axis (the mesh
/// centres turned labels on the tick, so half of each would stand inside the plot): every
/// `labels.len() / most`-th of them, cut to `keep` characters, under the plotting area
/// `plot` (absolute pixels) of a chart on `area`.
fn turned_labels<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    plot: (std::ops::Range<i32>, std::ops::Range<i32>),
    labels: &[String],
    keep: usize,
    most: usize,
    size: u32,
) -> Drawn {
    use plotters::style::text_anchor::{HPos, Pos, VPos};
    let style = TextStyle::from((FONT, size).into_font().transform(FontTransform::Rotate90)).pos(Pos::new(HPos::Left, VPos::Center));
    let n = labels.len().max(1);
    let step = n.div_ceil(most.max(1)).max(1);
    let (xs, ys) = plot;
    let base = area.get_base_pixel();
    for (i, label) in labels.iter().enumerate().step_by(step) {
        let x = xs.start + ((i as f64 + 0.5) * (xs.end - xs.start) as f64 / n as f64).round() as i32;
        area.draw_text(&abbreviate(label, keep), &style, (x - base.0, ys.end - base.1 + 8)).map_err(fail)?;
    }
    Ok(())
}

/// A value range that includes zero (for bars), padded by 5 %.
fn value_range(values: impl Iterator<Item = f64>, from_zero: bool) -> (f64, f64) {
    let (mut lo, mut hi) = values.filter(|v| v.is_finite()).fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| (a.min(v), b.max(v)));
    if !lo.is_finite() {
        return (0.0, 1.0);
    }
    if from_zero {
        lo = lo.min(0.0);
        hi = hi.max(0.0);
    }
    if hi - lo <= f64::EPSILON * hi.abs().max(lo.abs()).max(1e-300) {
        let pad = if hi == 0.0 { 1.0 } else { hi.abs() * 0.1 };
        return (lo - pad, hi + pad);
    }
    let pad = (hi - lo) * 0.05;
    (if from_zero && lo == 0.0 { 0.0 } else { lo - pad }, if from_zero && hi == 0.0 { 0.0 } else { hi + pad })
}

/// The chart's legend (its series' labels) in a light box at `at`.
fn legend<'a, DB: DrawingBackend + 'a, CT: plotters::coord::CoordTranslate>(chart: &mut ChartContext<'a, DB, CT>, at: SeriesLabelPosition, size: u32) -> Drawn {
    chart
        .configure_series_labels()
        .position(at)
        .background_style(WHITE.mix(0.85))
        .border_style(RGBColor(200, 200, 200))
        .label_font((FONT, size))
        .draw()
        .map_err(fail)
}

/// A chart of `labels` categories along x and values `lo..hi` up y, its axes drawn (vertical
/// grid lines only with `x_mesh`), crowded category names turned ([`turned_labels`]).
fn category_chart<'a, DB: DrawingBackend>(
    area: &'a DrawingArea<DB, Shift>,
    small: bool,
    title: &str,
    (x_desc, y_desc): (&str, &str),
    labels: &[String],
    (lo, hi): (f64, f64),
    x_mesh: bool,
) -> std::result::Result<
    ChartContext<
        'a,
        DB,
        Cartesian2d<plotters::coord::ranged1d::SegmentedCoord<plotters::coord::types::RangedCoordi32>, plotters::coord::types::RangedCoordf64>,
    >,
    String,
> {
    let f = fonts(small);
    let (w, _) = area.dim_in_pixel();
    let (rotate, keep, label_px, most) = category_axis(labels, w.saturating_sub(70), f.label);
    let mut chart = ChartBuilder::on(area)
        .caption(title, (FONT, f.caption))
        .margin(6)
        .x_label_area_size(label_px + f.desc + 4)
        .y_label_area_size(if small { 44 } else { 62 })
        .build_cartesian_2d(categories(labels.len()), lo..hi)
        .map_err(fail)?;
    let label = |v: &SegmentValue<i32>| match v {
        SegmentValue::CenterOf(i) if !rotate => labels.get(*i as usize).map(|s| abbreviate(s, keep)).unwrap_or_default(),
        _ => String::new(),
    };
    let mut mesh = chart.configure_mesh();
    if !x_mesh {
        mesh.disable_x_mesh();
    }
    mesh.x_labels(most)
        .x_label_formatter(&label)
        .x_label_style((FONT, f.label))
        .y_label_formatter(&|v| tick(*v, hi - lo))
        .y_label_style((FONT, f.label))
        .x_desc(x_desc)
        .y_desc(y_desc)
        .axis_desc_style((FONT, f.desc))
        .light_line_style(RGBColor(244, 244, 244))
        .max_light_lines(2)
        .draw()
        .map_err(fail)?;
    if rotate {
        turned_labels(area, chart.plotting_area().get_pixel_range(), labels, keep, most, f.label)?;
    }
    Ok(chart)
}

#[allow(clippy::too_many_arguments)]
fn bars<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    small: bool,
    title: &str,
    x_desc: &str,
    y_desc: &str,
    labels: &[String],
    values: &[f64],
    kept: Option<usize>,
    line: Option<&(String, Vec<f64>)>,
    signed: bool,
) -> Drawn {
    let f = fonts(small);
    let n = values.len();
    let (lo, hi) = value_range(values.iter().copied().chain(line.iter().flat_map(|l| l.1.iter().copied())), true);
    let mut chart = category_chart(area, small, title, (x_desc, y_desc), labels, (lo, hi), false)?;
    let gap = if n > 40 { 0 } else { 2 };
    chart
        .draw_series(values.iter().enumerate().map(|(i, &v)| {
            let colour = match (signed, kept) {
                (true, _) if v < 0.0 => NEGATIVE,
                (_, Some(k)) if i >= k => MUTED,
                _ => MAIN,
            };
            let mut r = Rectangle::new([(SegmentValue::Exact(i as i32), 0.0), (SegmentValue::Exact(i as i32 + 1), v)], colour.filled());
            r.set_margin(0, 0, gap, gap);
            r
        }))
        .map_err(fail)?;
    // The values over the bars when there are few: a delta of 1e-4 beside one of 0.7 is
    // invisible as a bar but not as a number.
    if n <= 16 {
        use plotters::style::text_anchor::{HPos, Pos, VPos};
        let above = TextStyle::from((FONT, f.label).into_font()).pos(Pos::new(HPos::Center, VPos::Bottom));
        let below = TextStyle::from((FONT, f.label).into_font()).pos(Pos::new(HPos::Center, VPos::Top));
        // With a line over the bars (which starts at the first bar's top), tall bars carry their
        // value inside, in white.
        let inside = (FONT, f.label).into_font().color(&WHITE).pos(Pos::new(HPos::Center, VPos::Top));
        chart
            .draw_series(values.iter().enumerate().map(|(i, &v)| {
                let (style, dy) = match v {
                    v if line.is_some() && v > 0.12 * (hi - lo) => (inside.clone(), 4),
                    v if v < 0.0 => (below.clone(), 3),
                    _ => (above.clone(), -3),
                };
                EmptyElement::at((SegmentValue::CenterOf(i as i32), v)) + Text::new(number(v), (0, dy), style)
            }))
            .map_err(fail)?;
    }
    if let Some((name, ys)) = line {
        let pts: Vec<_> = ys.iter().enumerate().map(|(i, &y)| (SegmentValue::CenterOf(i as i32), y)).collect();
        chart
            .draw_series(LineSeries::new(pts.clone(), LINE.stroke_width(2)))
            .map_err(fail)?
            .label(name.as_str())
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], LINE.stroke_width(2)));
        if n <= 40 {
            chart.draw_series(pts.into_iter().map(|p| Circle::new(p, 3, LINE.filled()))).map_err(fail)?;
        }
        if let Some(k) = kept.filter(|&k| k < n) {
            chart
                .draw_series(std::iter::once(Rectangle::new([(SegmentValue::Exact(0), lo), (SegmentValue::Exact(0), lo)], MUTED.filled())))
                .map_err(fail)?
                .label(format!("not kept (after {k})"))
                .legend(|(x, y)| Rectangle::new([(x, y - 5), (x + 14, y + 5)], MUTED.filled()));
        }
        legend(&mut chart, SeriesLabelPosition::MiddleRight, f.label)?;
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn lines<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    small: bool,
    title: &str,
    x_desc: &str,
    y_desc: &str,
    labels: &[String],
    series: &[(String, Vec<f64>)],
) -> Drawn {
    let f = fonts(small);
    let n = labels.len();
    let (lo, hi) = value_range(series.iter().flat_map(|s| s.1.iter().copied()), false);
    let mut chart = category_chart(area, small, title, (x_desc, y_desc), labels, (lo, hi), true)?;
    for (k, (name, ys)) in series.iter().enumerate() {
        let c = color(k);
        let pts: Vec<_> = ys.iter().enumerate().map(|(i, &y)| (SegmentValue::CenterOf(i as i32), y)).collect();
        chart
            .draw_series(LineSeries::new(pts.clone(), c.stroke_width(2)))
            .map_err(fail)?
            .label(abbreviate(name, 20))
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], c.stroke_width(2)));
        if n <= 60 {
            chart.draw_series(pts.into_iter().map(|p| Circle::new(p, 3, c.filled()))).map_err(fail)?;
        }
    }
    legend(&mut chart, SeriesLabelPosition::UpperRight, f.label)
}

/// Blue (low) through white to red (high): a diverging scale for correlations.
fn diverging(t: f64) -> RGBColor {
    let t = t.clamp(-1.0, 1.0);
    let (end, s) = if t < 0.0 { ((33.0, 102.0, 172.0), -t) } else { ((178.0, 24.0, 43.0), t) };
    let mix = |e: f64| (255.0 + (e - 255.0) * s).round() as u8;
    RGBColor(mix(end.0), mix(end.1), mix(end.2))
}

fn heat<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, small: bool, title: &str, names: &[String], m: &[Vec<f64>], (lo, hi): (f64, f64)) -> Drawn {
    let f = fonts(small);
    let n = names.len();
    let (w, h) = area.dim_in_pixel();
    let (main, bar) = area.split_horizontally(w.saturating_sub(80));
    let side = w.saturating_sub(80).min(h);
    let (rotate, keep, label_px, most) = category_axis(names, side.saturating_sub(60), f.label);
    let y_px = (names.iter().map(|s| abbreviate(s, keep).chars().count()).max().unwrap_or(1) as f64 * f.label as f64 * 0.62) as u32 + 12;
    let mut chart = ChartBuilder::on(&main)
        .caption(title, (FONT, f.caption))
        .margin(6)
        .x_label_area_size(label_px)
        .y_label_area_size(y_px)
        .build_cartesian_2d(categories(n), categories(n))
        .map_err(fail)?;
    let x_label = |v: &SegmentValue<i32>| match v {
        SegmentValue::CenterOf(i) if !rotate => names.get(*i as usize).map(|s| abbreviate(s, keep)).unwrap_or_default(),
        _ => String::new(),
    };
    // Row 0 at the top, as a matrix is read.
    let y_label = |v: &SegmentValue<i32>| match v {
        SegmentValue::CenterOf(j) if (*j as usize) < n => abbreviate(&names[n - 1 - *j as usize], keep),
        _ => String::new(),
    };
    let style = (FONT, f.label);
    chart
        .configure_mesh()
        .disable_mesh()
        .x_labels(most)
        .y_labels(most)
        .x_label_formatter(&x_label)
        .y_label_formatter(&y_label)
        .x_label_style(style)
        .y_label_style((FONT, f.label))
        .draw()
        .map_err(fail)?;
    if rotate {
        turned_labels(&main, chart.plotting_area().get_pixel_range(), names, keep, most, f.label)?;
    }
    let scale = |v: f64| if hi > lo { 2.0 * (v - lo) / (hi - lo) - 1.0 } else { 0.0 };
    chart
        .draw_series((0..n).flat_map(|i| (0..n).map(move |j| (i, j))).map(|(i, j)| {
            let y = (n - 1 - i) as i32;
            let v = m[i][j];
            let c = if v.is_finite() { diverging(scale(v)) } else { MUTED };
            Rectangle::new(
                [(SegmentValue::Exact(j as i32), SegmentValue::Exact(y)), (SegmentValue::Exact(j as i32 + 1), SegmentValue::Exact(y + 1))],
                c.filled(),
            )
        }))
        .map_err(fail)?;
    // The values in the cells when there is room for them.
    let cell = side as f64 / n.max(1) as f64;
    if cell >= 34.0 {
        let size = if cell >= 48.0 { 11 } else { 9 };
        chart
            .draw_series((0..n).flat_map(|i| (0..n).map(move |j| (i, j))).map(|(i, j)| {
                let v = m[i][j];
                let ink = if scale(v).abs() > 0.6 { WHITE } else { BLACK };
                let pos = (SegmentValue::CenterOf(j as i32), SegmentValue::CenterOf((n - 1 - i) as i32));
                Text::new(
                    format!("{v:.2}"),
                    pos,
                    (FONT, size)
                        .into_font()
                        .color(&ink)
                        .pos(plotters::style::text_anchor::Pos::new(plotters::style::text_anchor::HPos::Center, plotters::style::text_anchor::VPos::Center)),
                )
            }))
            .map_err(fail)?;
    }
    // The colour scale.
    let mut key = ChartBuilder::on(&bar.margin(40, 60, 8, 0)).y_label_area_size(40).build_cartesian_2d(0f64..1.0, lo..hi).map_err(fail)?;
    key.configure_mesh().disable_mesh().disable_x_axis().y_labels(5).y_label_formatter(&|v| number(*v)).y_label_style((FONT, f.label)).draw().map_err(fail)?;
    let steps = 64;
    key.draw_series((0..steps).map(|s| {
        let a = lo + (hi - lo) * s as f64 / steps as f64;
        let b = lo + (hi - lo) * (s + 1) as f64 / steps as f64;
        Rectangle::new([(0.0, a), (1.0, b)], diverging(scale((a + b) / 2.0)).filled())
    }))
    .map_err(fail)?;
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn scatter<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    small: bool,
    title: &str,
    x_desc: &str,
    y_desc: &str,
    points: &[(f64, f64)],
    group: &[usize],
    groups: &[String],
    radius: &[f64],
    tags: &[String],
) -> Drawn {
    let f = fonts(small);
    let (x0, x1) = value_range(points.iter().map(|p| p.0), false);
    let (y0, y1) = value_range(points.iter().map(|p| p.1), false);
    // Room for the markers and tags at the edges.
    let (px, py) = ((x1 - x0) * 0.08, (y1 - y0) * 0.08);
    let mut chart = ChartBuilder::on(area)
        .caption(title, (FONT, f.caption))
        .margin(8)
        .x_label_area_size(f.label + f.desc + 18)
        .y_label_area_size(if small { 44 } else { 62 })
        .build_cartesian_2d(x0 - px..x1 + px, y0 - py..y1 + py)
        .map_err(fail)?;
    chart
        .configure_mesh()
        .x_label_formatter(&|v| tick(*v, x1 - x0))
        .y_label_formatter(&|v| tick(*v, y1 - y0))
        .label_style((FONT, f.label))
        .x_desc(x_desc)
        .y_desc(y_desc)
        .axis_desc_style((FONT, f.desc))
        .light_line_style(RGBColor(244, 244, 244))
        .max_light_lines(2)
        .draw()
        .map_err(fail)?;
    let ngroups = groups.len().max(group.iter().copied().max().map_or(1, |g| g + 1));
    let dot = if points.len() > 2000 { 2 } else { 3 };
    for g in 0..ngroups {
        let c = color(g);
        let alpha = if radius.is_empty() { 0.6 } else { 0.45 };
        let mine: Vec<usize> = (0..points.len()).filter(|&i| group.get(i).copied().unwrap_or(0) == g).collect();
        let drawn = chart
            .draw_series(mine.iter().map(|&i| {
                let r = radius.get(i).map_or(dot, |r| r.round().max(2.0) as i32);
                EmptyElement::at(points[i]) + Circle::new((0, 0), r, c.mix(alpha).filled()) + Circle::new((0, 0), r, c.stroke_width(1))
            }))
            .map_err(fail)?;
        if let Some(name) = groups.get(g) {
            drawn.label(abbreviate(name, 20)).legend(move |(x, y)| Circle::new((x + 6, y), 4, c.filled()));
        }
    }
    if !tags.is_empty() {
        chart
            .draw_series(points.iter().zip(tags).enumerate().map(|(i, (&p, t))| {
                let r = radius.get(i).map_or(4, |r| r.round() as i32);
                EmptyElement::at(p) + Text::new(t.clone(), (r / 2 + 4, -(r / 2) - 14), (FONT, f.label + 1).into_font())
            }))
            .map_err(fail)?;
    }
    if !groups.is_empty() {
        legend(&mut chart, SeriesLabelPosition::UpperRight, f.label)?;
    }
    Ok(())
}

fn hist<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, title: &str, edges: &[f64], counts: &[f64]) -> Drawn {
    let f = fonts(true);
    let (x0, x1) = (edges.first().copied().unwrap_or(0.0), edges.last().copied().unwrap_or(1.0));
    let (x0, x1) = if x1 > x0 { (x0, x1) } else { (x0 - 0.5, x1 + 0.5) };
    let top = counts.iter().copied().fold(0.0, f64::max).max(1.0) * 1.08;
    let mut chart = ChartBuilder::on(area)
        .caption(abbreviate(title, 30), (FONT, f.caption))
        .margin(4)
        .x_label_area_size(f.label + 8)
        .y_label_area_size(40)
        .build_cartesian_2d(x0..x1, 0.0..top)
        .map_err(fail)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(4)
        .y_labels(4)
        .x_label_formatter(&|v| number(*v))
        .y_label_formatter(&|v| number(*v))
        .label_style((FONT, f.label))
        .light_line_style(RGBColor(244, 244, 244))
        .max_light_lines(2)
        .draw()
        .map_err(fail)?;
    chart
        .draw_series(edges.windows(2).zip(counts).map(|(e, &c)| {
            let mut r = Rectangle::new([(e[0], 0.0), (e[1], c)], MAIN.filled());
            r.set_margin(0, 0, 1, 0);
            r
        }))
        .map_err(fail)?;
    Ok(())
}

fn spread<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, title: &str, [min, max, mean, std]: [f64; 4]) -> Drawn {
    let f = fonts(true);
    let (lo, hi) = value_range([min, max].into_iter(), false);
    let mut chart = ChartBuilder::on(area)
        .caption(abbreviate(title, 30), (FONT, f.caption))
        .margin(4)
        .x_label_area_size(f.label + 8)
        .y_label_area_size(6)
        .build_cartesian_2d(lo..hi, 0.0..1.0)
        .map_err(fail)?;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .disable_y_axis()
        .x_labels(4)
        .x_label_formatter(&|v| number(*v))
        .label_style((FONT, f.label))
        .light_line_style(RGBColor(244, 244, 244))
        .max_light_lines(2)
        .draw()
        .map_err(fail)?;
    let (a, b) = ((mean - std).max(lo), (mean + std).min(hi));
    chart.draw_series(std::iter::once(PathElement::new(vec![(min, 0.5), (max, 0.5)], BLACK.stroke_width(1)))).map_err(fail)?;
    for end in [min, max] {
        chart.draw_series(std::iter::once(PathElement::new(vec![(end, 0.4), (end, 0.6)], BLACK.stroke_width(1)))).map_err(fail)?;
    }
    chart.draw_series(std::iter::once(Rectangle::new([(a, 0.35), (b, 0.65)], MAIN.mix(0.5).filled()))).map_err(fail)?;
    chart.draw_series(std::iter::once(Circle::new((mean, 0.5), 4, LINE.filled()))).map_err(fail)?;
    Ok(())
}
