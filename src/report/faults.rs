//! The faults a trial suffered, in words and as the bands the timeline shades across every
//! lane for those of the store's servers and links (a failover's cut and promotion, a
//! partition) and for the user's own fault commands.

use maud::{Markup, html};

use super::format::{self, px};
use crate::plan::notice::FaultKind;
use crate::results::FaultEvent;

/// The bands of the faults of the store's servers and links among `faults`, from `from` to
/// `to` (ns after the gate), drawn by `x` between `top` and `bottom`.
pub fn bands_drawn(
    faults: &[(&FaultEvent, Option<usize>)],
    x: impl Fn(u64) -> f64,
    (from, to): (u64, u64),
    (top, bottom): (f64, f64),
) -> Markup {
    html! {
        @for (f, _) in faults.iter().filter(|(f, _)| band(f.kind).is_some()) {
            @let (x0, x1) = (x(f.at_ns.max(from)), x(f.until_ns.unwrap_or(to).min(to)));
            rect class=(band(f.kind).unwrap_or_default()) x=(px(x0)) y=(px(top)) width=(px((x1 - x0).max(1.5))) height=(px(bottom - top)) {
                title { (fault_title(f)) }
            }
        }
    }
}

/// The class of the band a fault of the store's servers and links is shaded with, if it
/// is one.
fn band(kind: FaultKind) -> Option<&'static str> {
    match kind {
        FaultKind::Failover => Some("cut"),
        FaultKind::Promotion => Some("promotion"),
        FaultKind::Partition => Some("partition"),
        FaultKind::Command => Some("command"),
        _ => None,
    }
}

/// A fault in words, as its hover text says it.
pub fn fault_title(f: &FaultEvent) -> String {
    let until = |f: &FaultEvent| f.until_ns.map_or("never".to_string(), format::ms);
    match f.kind {
        FaultKind::Failover => format!(
            "failover: {} from {} to {} ([faults] lag_ms), while the sale went on",
            f.process,
            format::ms(f.at_ns),
            until(f)
        ),
        FaultKind::KillPrimary => format!("{} at {}", f.process, format::ms(f.at_ns)),
        FaultKind::Promotion => format!(
            "promotion: the primary was killed at {}, and a replica promoted at {}: {}",
            format::ms(f.at_ns),
            until(f),
            f.process
        ),
        FaultKind::Partition => format!(
            "partition: {} from {} to {} ([faults] partition_ms)",
            f.process,
            format::ms(f.at_ns),
            until(f)
        ),
        FaultKind::Command => format!(
            "{} ([[faults.commands]]) from {} to {}",
            f.process,
            format::ms(f.at_ns),
            until(f)
        ),
        FaultKind::Stop => format!(
            "{} stopped (SIGSTOP) at {}, {}",
            f.process,
            format::ms(f.at_ns),
            f.until_ns
                .map_or("never resumed".to_string(), |u| format!("resumed at {}", format::ms(u)))
        ),
        FaultKind::Kill => format!("{} killed (SIGKILL) at {}", f.process, format::ms(f.at_ns)),
        FaultKind::KillStore => format!(
            "store killed: {} sent SIGKILL to the store's server at {} ([faults] kill_store)",
            f.process,
            format::ms(f.at_ns)
        ),
    }
}
