//! A tiny bitmap font, drawn here so that pictures carry titles, tick labels and camera names
//! without a font file, a font crate or a system font (none exists on a headless server).
//!
//! Each glyph is 5 columns wide on a 9-row cell: rows 0-6 hold capitals and digits (row 6 is
//! the baseline row), rows 7-8 hold descenders (`g j p q y , ;`). The glyphs are written below
//! as ASCII art (`#` = ink) so that a reader can check and fix them by eye; [`GLYPHS`] turns
//! the art into bit rows at compile time. Text is scaled by whole pixels (a 5×9 glyph drawn
//! at scale 2 is 10×18 px), which keeps strokes crisp at every size.
//!
//! Covered: printable ASCII (32-126) plus `² ° µ × ± −` (the minus sign draws as `-`).
//! Anything else draws as a hollow box so that a missing glyph is visible, never silent.

/// Glyph width in font pixels.
pub(crate) const GLYPH_WIDTH: usize = 5;
/// Glyph cell height in font pixels (7 above the baseline, 2 for descenders).
pub(crate) const GLYPH_HEIGHT: usize = 9;
/// Horizontal advance per character in font pixels (glyph plus one column of spacing).
pub(crate) const ADVANCE: usize = GLYPH_WIDTH + 1;

/// One glyph: nine rows of five bits, bit 4 the leftmost column.
pub(crate) type Glyph = [u8; GLYPH_HEIGHT];

/// The glyph of `c`: printable ASCII and a few symbols units need; a hollow box otherwise.
pub(crate) fn glyph(c: char) -> Glyph {
    let code = c as u32;
    if (32..=126).contains(&code) {
        return GLYPHS[(code - 32) as usize];
    }
    match c {
        '²' => EXTRA[0],
        '°' => EXTRA[1],
        'µ' | 'μ' => EXTRA[2],
        '×' => EXTRA[3],
        '±' => EXTRA[4],
        '−' | '–' => GLYPHS[('-' as usize) - 32],
        _ => EXTRA[5],
    }
}

/// Width in font pixels of `text` on one line (no trailing spacing column).
pub(crate) fn text_width_px(text: &str) -> usize {
    let n = text.chars().count();
    if n == 0 { 0 } else { n * ADVANCE - 1 }
}

/// Printable ASCII from `' '` (32) to `'~'` (126), in code order.
const ASCII_ART: [&str; 95] = [
    "",                                                      // ' '
    "..#..|..#..|..#..|..#..|..#..|.....|..#..",             // !
    ".#.#.|.#.#.|.#.#.",                                     // "
    ".#.#.|.#.#.|#####|.#.#.|#####|.#.#.|.#.#.",             // #
    "..#..|.####|#.#..|.###.|..#.#|####.|..#..",             // $
    "##...|##..#|...#.|..#..|.#...|#..##|...##",             // %
    ".##..|#..#.|#.#..|.#...|#.#.#|#..#.|.##.#",             // &
    "..#..|..#..|..#..",                                     // '
    "...#.|..#..|.#...|.#...|.#...|..#..|...#.",             // (
    ".#...|..#..|...#.|...#.|...#.|..#..|.#...",             // )
    ".....|..#..|#.#.#|.###.|#.#.#|..#..",                   // *
    ".....|..#..|..#..|#####|..#..|..#..",                   // +
    ".....|.....|.....|.....|.....|.##..|.##..|..#..|.#...", // ,
    ".....|.....|.....|#####",                               // -
    ".....|.....|.....|.....|.....|.##..|.##..",             // .
    "....#|....#|...#.|..#..|.#...|#....|#....",             // /
    ".###.|#...#|#..##|#.#.#|##..#|#...#|.###.",             // 0
    "..#..|.##..|..#..|..#..|..#..|..#..|.###.",             // 1
    ".###.|#...#|....#|...#.|..#..|.#...|#####",             // 2
    "#####|...#.|..#..|...#.|....#|#...#|.###.",             // 3
    "...#.|..##.|.#.#.|#..#.|#####|...#.|...#.",             // 4
    "#####|#....|####.|....#|....#|#...#|.###.",             // 5
    "..##.|.#...|#....|####.|#...#|#...#|.###.",             // 6
    "#####|....#|...#.|..#..|.#...|.#...|.#...",             // 7
    ".###.|#...#|#...#|.###.|#...#|#...#|.###.",             // 8
    ".###.|#...#|#...#|.####|....#|...#.|.##..",             // 9
    ".....|.##..|.##..|.....|.##..|.##..",                   // :
    ".....|.##..|.##..|.....|.##..|.##..|..#..|.#...",       // ;
    "...#.|..#..|.#...|#....|.#...|..#..|...#.",             // <
    ".....|.....|#####|.....|#####",                         // =
    ".#...|..#..|...#.|....#|...#.|..#..|.#...",             // >
    ".###.|#...#|....#|...#.|..#..|.....|..#..",             // ?
    ".###.|#...#|....#|.##.#|#.#.#|#.#.#|.###.",             // @
    ".###.|#...#|#...#|#####|#...#|#...#|#...#",             // A
    "####.|#...#|#...#|####.|#...#|#...#|####.",             // B
    ".###.|#...#|#....|#....|#....|#...#|.###.",             // C
    "###..|#..#.|#...#|#...#|#...#|#..#.|###..",             // D
    "#####|#....|#....|####.|#....|#....|#####",             // E
    "#####|#....|#....|####.|#....|#....|#....",             // F
    ".###.|#...#|#....|#.###|#...#|#...#|.####",             // G
    "#...#|#...#|#...#|#####|#...#|#...#|#...#",             // H
    ".###.|..#..|..#..|..#..|..#..|..#..|.###.",             // I
    "..###|...#.|...#.|...#.|...#.|#..#.|.##..",             // J
    "#...#|#..#.|#.#..|##...|#.#..|#..#.|#...#",             // K
    "#....|#....|#....|#....|#....|#....|#####",             // L
    "#...#|##.##|#.#.#|#.#.#|#...#|#...#|#...#",             // M
    "#...#|#...#|##..#|#.#.#|#..##|#...#|#...#",             // N
    ".###.|#...#|#...#|#...#|#...#|#...#|.###.",             // O
    "####.|#...#|#...#|####.|#....|#....|#....",             // P
    ".###.|#...#|#...#|#...#|#.#.#|#..#.|.##.#",             // Q
    "####.|#...#|#...#|####.|#.#..|#..#.|#...#",             // R
    ".####|#....|#....|.###.|....#|....#|####.",             // S
    "#####|..#..|..#..|..#..|..#..|..#..|..#..",             // T
    "#...#|#...#|#...#|#...#|#...#|#...#|.###.",             // U
    "#...#|#...#|#...#|#...#|#...#|.#.#.|..#..",             // V
    "#...#|#...#|#...#|#.#.#|#.#.#|#.#.#|.#.#.",             // W
    "#...#|#...#|.#.#.|..#..|.#.#.|#...#|#...#",             // X
    "#...#|#...#|.#.#.|..#..|..#..|..#..|..#..",             // Y
    "#####|....#|...#.|..#..|.#...|#....|#####",             // Z
    ".###.|.#...|.#...|.#...|.#...|.#...|.###.",             // [
    "#....|#....|.#...|..#..|...#.|....#|....#",             // \
    ".###.|...#.|...#.|...#.|...#.|...#.|.###.",             // ]
    "..#..|.#.#.|#...#",                                     // ^
    ".....|.....|.....|.....|.....|.....|.....|#####",       // _
    ".#...|..#..|...#.",                                     // `
    ".....|.....|.###.|....#|.####|#...#|.####",             // a
    "#....|#....|####.|#...#|#...#|#...#|####.",             // b
    ".....|.....|.###.|#....|#....|#...#|.###.",             // c
    "....#|....#|.####|#...#|#...#|#...#|.####",             // d
    ".....|.....|.###.|#...#|#####|#....|.###.",             // e
    "..##.|.#..#|.#...|###..|.#...|.#...|.#...",             // f
    ".....|.....|.####|#...#|#...#|#...#|.####|....#|.###.", // g
    "#....|#....|#.##.|##..#|#...#|#...#|#...#",             // h
    "..#..|.....|.##..|..#..|..#..|..#..|.###.",             // i
    "...#.|.....|..##.|...#.|...#.|...#.|...#.|#..#.|.##..", // j
    "#....|#....|#..#.|#.#..|##...|#.#..|#..#.",             // k
    ".##..|..#..|..#..|..#..|..#..|..#..|.###.",             // l
    ".....|.....|##.#.|#.#.#|#.#.#|#.#.#|#.#.#",             // m
    ".....|.....|#.##.|##..#|#...#|#...#|#...#",             // n
    ".....|.....|.###.|#...#|#...#|#...#|.###.",             // o
    ".....|.....|####.|#...#|#...#|#...#|####.|#....|#....", // p
    ".....|.....|.####|#...#|#...#|#...#|.####|....#|....#", // q
    ".....|.....|#.##.|##..#|#....|#....|#....",             // r
    ".....|.....|.####|#....|.###.|....#|####.",             // s
    ".#...|.#...|###..|.#...|.#...|.#..#|..##.",             // t
    ".....|.....|#...#|#...#|#...#|#..##|.##.#",             // u
    ".....|.....|#...#|#...#|#...#|.#.#.|..#..",             // v
    ".....|.....|#...#|#...#|#.#.#|#.#.#|.#.#.",             // w
    ".....|.....|#...#|.#.#.|..#..|.#.#.|#...#",             // x
    ".....|.....|#...#|#...#|#...#|#...#|.####|....#|.###.", // y
    ".....|.....|#####|...#.|..#..|.#...|#####",             // z
    "...#.|..#..|..#..|.#...|..#..|..#..|...#.",             // {
    "..#..|..#..|..#..|..#..|..#..|..#..|..#..",             // |
    ".#...|..#..|..#..|...#.|..#..|..#..|.#...",             // }
    ".....|.....|.#...|#.#.#|...#.",                         // ~
];

/// `² ° µ × ±` and the box drawn for characters without a glyph.
const EXTRA_ART: [&str; 6] = [
    ".##..|...#.|..#..|.###.",                               // ²
    ".##..|#..#.|#..#.|.##..",                               // °
    ".....|.....|#...#|#...#|#...#|##..#|#.##.|#....|#....", // µ
    ".....|#...#|.#.#.|..#..|.#.#.|#...#",                   // ×
    "..#..|..#..|#####|..#..|..#..|.....|#####",             // ±
    "#####|#...#|#...#|#...#|#...#|#...#|#####",             // missing glyph
];

/// Glyph bit rows of printable ASCII (32-126), built at compile time from the ASCII art in
/// this file.
pub(crate) const GLYPHS: [Glyph; 95] = pack_all(&ASCII_ART);
const EXTRA: [Glyph; 6] = pack_all(&EXTRA_ART);

/// Turns `|`-separated rows of `#`/`.` into bit rows. Malformed art (a row longer than five
/// columns, more than nine rows, another character) fails the build, not a picture.
const fn pack(art: &str) -> Glyph {
    let bytes = art.as_bytes();
    let mut rows = [0u8; GLYPH_HEIGHT];
    let (mut row, mut col, mut i) = (0, 0, 0);
    while i < bytes.len() {
        match bytes[i] {
            b'|' => {
                assert!(col == GLYPH_WIDTH, "glyph row is not five columns wide");
                row += 1;
                col = 0;
            }
            b'#' | b'.' => {
                assert!(row < GLYPH_HEIGHT && col < GLYPH_WIDTH, "glyph art too large");
                if bytes[i] == b'#' {
                    rows[row] |= 1 << (GLYPH_WIDTH - 1 - col);
                }
                col += 1;
            }
            _ => panic!("glyph art may only contain '#', '.' and '|'"),
        }
        i += 1;
    }
    assert!(col == 0 || col == GLYPH_WIDTH, "last glyph row is not five columns wide");
    rows
}

const fn pack_all<const N: usize>(art: &[&str; N]) -> [Glyph; N] {
    let mut out = [[0u8; GLYPH_HEIGHT]; N];
    let mut i = 0;
    while i < N {
        out[i] = pack(art[i]);
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_visible_ascii_glyph_has_ink_and_is_unique() {
        for (i, g) in GLYPHS.iter().enumerate().skip(1) {
            assert!(g.iter().any(|&r| r != 0), "glyph {:?} is empty", (i as u8 + 32) as char);
        }
        assert!(GLYPHS[0].iter().all(|&r| r == 0), "space has ink");
        for (i, a) in GLYPHS.iter().enumerate().skip(1) {
            for (j, b) in GLYPHS.iter().enumerate().skip(i + 1) {
                let (ca, cb) = ((i as u8 + 32) as char, (j as u8 + 32) as char);
                assert_ne!(a, b, "{ca:?} and {cb:?} look the same");
            }
        }
    }

    #[test]
    fn capitals_and_digits_sit_on_the_baseline_and_descenders_go_below() {
        for c in ('A'..='Z').chain('0'..='9') {
            let g = glyph(c);
            assert!(g[6] != 0 && g[7] == 0 && g[8] == 0, "{c}");
        }
        for c in ['g', 'j', 'p', 'q', 'y'] {
            assert!(glyph(c)[8] != 0, "{c} has no descender");
        }
    }

    #[test]
    fn symbols_and_unknown_characters() {
        assert_eq!(glyph('−'), glyph('-'));
        assert_ne!(glyph('²'), glyph('?'));
        // An unknown character is a visible box, never blank.
        let boxed = glyph('\u{4e00}');
        assert_eq!(boxed[0], 0b11111);
        assert_eq!(text_width_px(""), 0);
        assert_eq!(text_width_px("ab"), 11);
    }
}
