//! The colours of the report: one per strategy, one per outcome, one per verdict, shared by
//! every chart so that a colour means the same thing everywhere on the page.

use plotters::style::RGBColor;

use crate::checker::Verdict;
use crate::scenario::StrategyName;

/// Categorical colours (Tableau 10, then three of Tableau 20), enough for every strategy.
const CATEGORICAL: [RGBColor; 13] = [
    RGBColor(0xe1, 0x57, 0x59), // red
    RGBColor(0x4e, 0x79, 0xa7), // blue
    RGBColor(0xf2, 0x8e, 0x2b), // orange
    RGBColor(0x59, 0xa1, 0x4f), // green
    RGBColor(0xb0, 0x7a, 0xa1), // purple
    RGBColor(0x9c, 0x75, 0x5f), // brown
    RGBColor(0x76, 0xb7, 0xb2), // teal
    RGBColor(0xed, 0xc9, 0x48), // yellow
    RGBColor(0xff, 0x9d, 0xa7), // pink
    RGBColor(0xba, 0xb0, 0xac), // grey
    RGBColor(0x8c, 0xd1, 0x7d), // light green
    RGBColor(0xa0, 0xcb, 0xe8), // light blue
    RGBColor(0xd3, 0x72, 0x95), // rose
];

/// A strategy's colour, by its place in the list of strategies: `none`, the unguarded one,
/// is red. A service's variants take the colours in the order they were first named.
pub fn strategy(name: StrategyName) -> RGBColor {
    let at = match name.variant() {
        Some(variant) => variant.index(),
        None => StrategyName::ALL.iter().position(|s| *s == name).unwrap_or(0),
    };
    CATEGORICAL[at % CATEGORICAL.len()]
}

/// The CSS form of a colour: `#e15759`.
pub fn css(c: RGBColor) -> String {
    format!("#{:02x}{:02x}{:02x}", c.0, c.1, c.2)
}

pub fn verdict(v: Verdict) -> &'static str {
    match v {
        Verdict::Safe => "#3b7d34",
        Verdict::Inconsistent => "#c26a00",
        Verdict::Oversold => "#c0392b",
        Verdict::Crashed => "#7d3c98",
        Verdict::Deadlock => "#222222",
    }
}

/// The counts of the outcomes chart, each with its colour.
pub const OVERSOLD: RGBColor = RGBColor(0xe1, 0x57, 0x59);
pub const DUPLICATE: RGBColor = RGBColor(0xff, 0x9d, 0xa7);
pub const LOST: RGBColor = RGBColor(0x9c, 0x75, 0x5f);
pub const TORN: RGBColor = RGBColor(0xf2, 0x8e, 0x2b);
pub const ORDER: RGBColor = RGBColor(0xed, 0xc9, 0x48);
pub const PHANTOM: RGBColor = RGBColor(0x76, 0xb7, 0xb2);
pub const LOST_ACKNOWLEDGED: RGBColor = RGBColor(0x1b, 0x1b, 0x1b);

/// A killed store's server, as the stock chart draws it; the page's CSS has it for the
/// timeline (`g.store-killed`).
pub const STORE_KILLED: RGBColor = RGBColor(0x8c, 0x1c, 0x13);

pub const INK: RGBColor = RGBColor(0x33, 0x33, 0x33);
pub const FAINT: RGBColor = RGBColor(0x99, 0x99, 0x99);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_strategy_has_its_own_colour() {
        let colours: Vec<String> = StrategyName::ALL.iter().map(|s| css(strategy(*s))).collect();
        let mut unique = colours.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), colours.len());
        assert_eq!(css(strategy(StrategyName::None)), "#e15759");
    }
}
