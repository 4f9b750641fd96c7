//! The names of the fields a scenario file may hold, read from the serde schema itself, so
//! that the reference in docs/ can be checked against what the validator accepts.

use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};

use super::raw;

/// Every field a scenario file may hold, as `table.field` (or `field` at the top level).
pub fn accepted_fields() -> Vec<String> {
    let mut names = Vec::new();
    for top in fields_of::<raw::RawScenario>() {
        let inner = match *top {
            "stock" => fields_of::<raw::RawStock>(),
            "buyers" => fields_of::<raw::RawBuyers>(),
            "producers" => fields_of::<raw::RawProducers>(),
            "semaphore" => fields_of::<raw::RawSemaphore>(),
            "lock" => fields_of::<raw::RawLock>(),
            "transaction" => fields_of::<raw::RawTransaction>(),
            "faults" => fields_of::<raw::RawFaults>(),
            // Each `[service.NAME]` table holds these; the reference lists them under `[service]`.
            "service" => fields_of::<raw::RawService>(),
            _ => {
                names.push(top.to_string());
                continue;
            }
        };
        names.push(top.to_string());
        names.extend(inner.iter().map(|f| format!("{top}.{f}")));
        if *top == "faults" {
            // Each `[[faults.commands]]` table holds these.
            let command = fields_of::<super::commands::RawCommand>();
            names.extend(command.iter().map(|f| format!("faults.commands.{f}")));
        }
    }
    names
}

/// The field names serde's derive hands to `deserialize_struct` for `T`.
fn fields_of<'de, T: Deserialize<'de>>() -> &'static [&'static str] {
    let mut found: &'static [&'static str] = &[];
    let _ = T::deserialize(Introspect(&mut found));
    found
}

/// A deserializer that answers nothing and notes the fields it was asked for.
struct Introspect<'a>(&'a mut &'static [&'static str]);

/// The error that ends every introspection: it carries nothing.
#[derive(Debug)]
struct Stop;

impl std::fmt::Display for Stop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("introspection stops here")
    }
}

impl std::error::Error for Stop {}

impl de::Error for Stop {
    fn custom<T: std::fmt::Display>(_: T) -> Self {
        Stop
    }
}

impl<'de> Deserializer<'de> for Introspect<'_> {
    type Error = Stop;

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Stop> {
        Err(Stop)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        fields: &'static [&'static str],
        _: V,
    ) -> Result<V::Value, Stop> {
        *self.0 = fields;
        Err(Stop)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf option
        unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier ignored_any
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fields_come_from_the_schema() {
        let fields = accepted_fields();
        for name in [
            "name",
            "stock",
            "stock.initial",
            "buyers.hold_us",
            "faults.kill_store",
            "expect",
        ] {
            assert!(fields.iter().any(|f| f == name), "{name} missing from {fields:?}");
        }
    }
}
