//! The timeline picture of a chaos run (pure): operations answered ok / failed / unknown per
//! second as stacked bars over time, each fault as a shaded band from its start to its heal,
//! and the time axis labelled every 10 s. Drawn on an indexed-colour raster ([`Canvas`]) and
//! encoded as PNG by [`super::png`]. No plotting crate: plotters draws no text without system
//! fonts or a font file, and this picture only needs rectangles and digits (a 3×5 pixel font
//! below). The colours are listed in docs/CHAOS.md.

use super::history::{Op, Outcome};
use super::summary::Fault;

const WIDTH: usize = 1000;
const HEIGHT: usize = 240;
/// Plot area: left, top, right and bottom margins.
const LEFT: usize = 40;
const TOP: usize = 10;
const RIGHT: usize = 10;
const BOTTOM: usize = 30;

/// The palette (RGB): index 0 is the background.
pub const PALETTE: [[u8; 3]; 10] = [
    [255, 255, 255], // 0 background
    [40, 40, 40],    // 1 axes and digits
    [46, 160, 67],   // 2 ok
    [240, 160, 40],  // 3 failed
    [210, 40, 40],   // 4 unknown
    [215, 215, 215], // 5 kill, kill-all, restart (process faults)
    [200, 220, 245], // 6 partitions
    [230, 210, 240], // 7 pause
    [250, 240, 190], // 8 clock skew, full disk, membership (other faults)
    [235, 235, 235], // 9 grid
];

/// A raster of palette indices.
pub struct Canvas {
    pub width: usize,
    pub height: usize,
    pub pixels: Vec<u8>,
}

impl Canvas {
    fn new(width: usize, height: usize) -> Self {
        Self {
            width,
            height,
            pixels: vec![0; width * height],
        }
    }

    /// Fills `[x0, x1) × [y0, y1)`, clipped to the canvas.
    fn fill(&mut self, x0: usize, y0: usize, x1: usize, y1: usize, colour: u8) {
        for y in y0.min(self.height)..y1.min(self.height) {
            let row = y * self.width;
            for x in x0.min(self.width)..x1.min(self.width) {
                self.pixels[row + x] = colour;
            }
        }
    }

    /// Draws the digits of `n` with their top left at (x, y), each pixel `scale` wide.
    fn number(&mut self, n: u64, x: usize, y: usize, scale: usize) {
        for (i, d) in n.to_string().bytes().enumerate() {
            let glyph = DIGITS[(d - b'0') as usize];
            let gx = x + i * 4 * scale;
            for (row, bits) in glyph.iter().enumerate() {
                for col in 0..3 {
                    if bits & (0b100 >> col) != 0 {
                        let (px, py) = (gx + col * scale, y + row * scale);
                        self.fill(px, py, px + scale, py + scale, 1);
                    }
                }
            }
        }
    }
}

/// 3×5 digits, one row per entry, the top bit leftmost.
const DIGITS: [[u8; 5]; 10] = [
    [0b111, 0b101, 0b101, 0b101, 0b111],
    [0b010, 0b110, 0b010, 0b010, 0b111],
    [0b111, 0b001, 0b111, 0b100, 0b111],
    [0b111, 0b001, 0b111, 0b001, 0b111],
    [0b101, 0b101, 0b111, 0b001, 0b001],
    [0b111, 0b100, 0b111, 0b001, 0b111],
    [0b111, 0b100, 0b111, 0b101, 0b111],
    [0b111, 0b001, 0b010, 0b010, 0b010],
    [0b111, 0b101, 0b111, 0b101, 0b111],
    [0b111, 0b101, 0b111, 0b001, 0b111],
];

/// The band colour of a fault kind.
fn band(kind: &str) -> u8 {
    match kind {
        k if k.starts_with("partition") => 6,
        "pause" => 7,
        "kill" | "kill-leader" | "kill-all" | "restart" => 5,
        _ => 8,
    }
}

/// Per-second counts (ok, failed, unknown) of operations by the time they ended (an unknown
/// one by its call), over the whole run.
pub fn per_second(ops: &[Op]) -> Vec<[u64; 3]> {
    let end = ops
        .iter()
        .map(|o| o.ret_ns.unwrap_or(o.call_ns))
        .max()
        .unwrap_or(0);
    let mut bins = vec![[0u64; 3]; (end / 1_000_000_000) as usize + 1];
    for o in ops {
        let t = o.ret_ns.unwrap_or(o.call_ns);
        let i = match o.outcome {
            Outcome::Ok(_) => 0,
            Outcome::Fail => 1,
            Outcome::Unknown => 2,
        };
        bins[(t / 1_000_000_000) as usize][i] += 1;
    }
    bins
}

/// The picture of `ops` and `faults`; `start_unix_ms` is the history's time 0.
pub fn draw(ops: &[Op], faults: &[Fault], start_unix_ms: u64) -> Canvas {
    let bins = per_second(ops);
    let mut c = Canvas::new(WIDTH, HEIGHT);
    let (w, h) = (WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM);
    let secs = bins.len().max(1) as u64;
    let x_of = |ms: u64| LEFT + ((ms.min(secs * 1000) as usize) * w / (secs as usize * 1000));
    let base = TOP + h;
    // Fault bands first, so the bars stay visible over them.
    for f in faults {
        let from = f.start_unix_ms.saturating_sub(start_unix_ms);
        let to = f
            .healed_unix_ms
            .map_or(secs * 1000, |t| t.saturating_sub(start_unix_ms));
        c.fill(
            x_of(from),
            TOP,
            x_of(to).max(x_of(from) + 1),
            base,
            band(&f.fault),
        );
    }
    let peak = bins
        .iter()
        .map(|b| b.iter().sum::<u64>())
        .max()
        .unwrap_or(0)
        .max(1);
    // Bars reach 90 % of the height at most: the top of each band stays visible.
    let bar_h = h * 9 / 10;
    for (s, b) in bins.iter().enumerate() {
        let (x0, x1) = (x_of(s as u64 * 1000), x_of((s as u64 + 1) * 1000));
        let x1 = if x1 > x0 + 1 { x1 - 1 } else { x1 };
        let mut y = base;
        for (i, colour) in [(0, 2u8), (1, 3), (2, 4)] {
            let px = (b[i] as usize * bar_h).div_ceil(peak as usize);
            c.fill(x0, y.saturating_sub(px), x1, y, colour);
            y = y.saturating_sub(px);
        }
    }
    // Axes, and a tick with its second every 10 s.
    c.fill(LEFT - 1, TOP, LEFT, base + 1, 1);
    c.fill(LEFT - 1, base, LEFT + w, base + 1, 1);
    for t in (0..=secs).step_by(10) {
        let x = x_of(t * 1000);
        c.fill(x, base, x + 1, base + 5, 1);
        c.number(t, x.saturating_sub(2), base + 8, 2);
    }
    // The peak (operations per second) at the top of the y axis.
    c.number(peak, 2, TOP, 2);
    c
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chaos::history::Func;

    fn op(t_ms: u64, outcome: Outcome) -> Op {
        let ret = (!matches!(outcome, Outcome::Unknown)).then_some(t_ms * 1_000_000 + 5);
        Op {
            process: 0,
            f: Func::Revoke,
            key: "k".into(),
            input: serde_json::Value::Null,
            outcome,
            call_ns: t_ms * 1_000_000,
            ret_ns: ret,
            node: 1,
        }
    }

    #[test]
    fn operations_are_counted_per_second_by_outcome() {
        let ops = [
            op(100, Outcome::Ok(serde_json::Value::Null)),
            op(900, Outcome::Fail),
            op(1_500, Outcome::Unknown),
            op(2_999, Outcome::Ok(serde_json::Value::Null)),
        ];
        assert_eq!(per_second(&ops), vec![[1, 1, 0], [0, 0, 1], [1, 0, 0]]);
    }

    #[test]
    fn the_picture_has_bars_and_a_band_where_the_fault_was() {
        let ops: Vec<Op> = (0..20_000)
            .step_by(50)
            .map(|t| op(t, Outcome::Ok(serde_json::Value::Null)))
            .collect();
        let fault = Fault {
            fault: "partition-split".into(),
            nodes: vec![1],
            start_unix_ms: 1_000_000 + 5_000,
            healed_unix_ms: Some(1_000_000 + 8_000),
            new_leader_ms: None,
        };
        let c = draw(&ops, &[fault], 1_000_000);
        let count = |colour: u8| c.pixels.iter().filter(|&&p| p == colour).count();
        assert!(count(2) > 0, "ok bars");
        assert!(count(6) > 0, "the partition's band");
        assert_eq!(count(4), 0, "no unknown operation");
        // The band lies between 5 s and 8 s of the 20 s on the axis.
        let w = WIDTH - LEFT - RIGHT;
        let x = LEFT + w * 6 / 20;
        assert_eq!(c.pixels[(TOP + 1) * WIDTH + x], 6);
        assert_eq!(c.pixels[(TOP + 1) * WIDTH + LEFT + w * 2 / 20], 0);
    }
}
