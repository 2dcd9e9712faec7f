//! A figure rendered to the bytes of an SVG or PNG file. The font is embedded (DejaVu Sans, see
//! `FONT-LICENSE`): text is measured and, for PNG, drawn with it, so plots need no system font
//! configuration; SVG text names the family `sans-serif`, which any viewer has.

use super::draw::FONT;
use super::figure::Figure;
use plotters::prelude::*;
use std::path::Path;

static DEJAVU: &[u8] = include_bytes!("DejaVuSans.ttf");

/// File kinds a plot is written as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Scalable vector graphics.
    Svg,
    /// A PNG bitmap.
    Png,
}

impl Kind {
    /// The kind for `path`'s extension; an error names the ones there are.
    pub fn of(path: &Path) -> std::result::Result<Kind, String> {
        match path.extension().and_then(|e| e.to_str()).map(|e| e.to_ascii_lowercase()).as_deref() {
            Some("svg") => Ok(Kind::Svg),
            Some("png") => Ok(Kind::Png),
            _ => Err(format!("{}: a plot is written as .svg or .png (by its name)", path.display())),
        }
    }
}

fn register_font() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        for style in [FontStyle::Normal, FontStyle::Bold] {
            plotters::style::register_font(FONT, style, DEJAVU).map_err(|_| ()).expect("the embedded font parses");
        }
    });
}

/// `fig` drawn at `size` pixels as the bytes of a `kind` file.
pub fn render(fig: &Figure, kind: Kind, size: (u32, u32)) -> std::result::Result<Vec<u8>, String> {
    register_font();
    match kind {
        Kind::Svg => {
            let mut text = String::new();
            {
                let root = SVGBackend::with_string(&mut text, size).into_drawing_area();
                super::draw::figure(fig, &root)?;
            }
            Ok(text.into_bytes())
        }
        Kind::Png => {
            let mut rgb = vec![255u8; size.0 as usize * size.1 as usize * 3];
            {
                let root = BitMapBackend::with_buffer(&mut rgb, size).into_drawing_area();
                super::draw::figure(fig, &root)?;
            }
            let mut out = Vec::new();
            let mut enc = png::Encoder::new(&mut out, size.0, size.1);
            enc.set_color(png::ColorType::Rgb);
            enc.set_depth(png::BitDepth::Eight);
            // Plots are flat colours: the best deflate with adaptive filters makes them a
            // fraction of the default's size, for a few milliseconds more.
            enc.set_compression(png::Compression::Best);
            enc.set_adaptive_filter(png::AdaptiveFilterType::Adaptive);
            let mut w = enc.write_header().map_err(|e| e.to_string())?;
            w.write_image_data(&rgb).map_err(|e| e.to_string())?;
            w.finish().map_err(|e| e.to_string())?;
            Ok(out)
        }
    }
}
