//! The one way settings are layered: command-line flag, then environment variable
//! (both read by clap into the same field), then the config file, then the default.
//!
//! A component's settings are one struct, declared with [`settings!`], that is at once
//! its clap flags and its config-file section: every field is "unset" or a value
//! (`Option`, an empty `Vec`, a `false` switch). [`Merge::or`] lays the flags over the
//! file field by field; a pure `resolve` function of the component then fills what is
//! still unset from the component's defaults (`NodeOptions::new`,
//! `GatewayOptions::new`) and checks the combination. Adding a setting is one field
//! (with its doc line) and its use in `resolve`.

use std::{fmt::Display, str::FromStr};

use serde::{Deserialize, Deserializer};

/// A layer of settings that lies over a lower one.
pub trait Merge {
    /// `self`, with what it leaves unset taken from `lower`.
    fn or(self, lower: Self) -> Self;
}

impl<T> Merge for Option<T> {
    fn or(self, lower: Self) -> Self {
        Option::or(self, lower)
    }
}

/// A list given in the upper layer replaces the lower one's whole.
impl<T> Merge for Vec<T> {
    fn or(self, lower: Self) -> Self {
        if self.is_empty() { lower } else { self }
    }
}

/// A switch is on when any layer turns it on (a flag cannot turn off what the file
/// turns on; the file's `false` and an absent flag both mean "unset").
impl Merge for bool {
    fn or(self, lower: Self) -> Self {
        self || lower
    }
}

/// Declares a settings struct and its field-by-field [`Merge`]. Attributes (docs,
/// `#[arg]`, `#[serde]`) pass through, so one declaration yields the clap flags, the
/// config-file section and the merge.
macro_rules! settings {
    (
        $(#[$meta:meta])*
        pub struct $name:ident {
            $( $(#[$field_meta:meta])* pub $field:ident : $ty:ty, )*
        }
    ) => {
        $(#[$meta])*
        pub struct $name {
            $( $(#[$field_meta])* pub $field: $ty, )*
        }

        impl $crate::merge::Merge for $name {
            fn or(self, lower: Self) -> Self {
                Self { $( $field: $crate::merge::Merge::or(self.$field, lower.$field), )* }
            }
        }
    };
}
pub(crate) use settings;

/// Reads a config-file value written as text (`"10m"`, `"500GiB"`) with the same parser
/// as its flag, so the file and the command line accept the same words.
pub fn text<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: FromStr,
    T::Err: Display,
{
    match Option::<String>::deserialize(d)? {
        None => Ok(None),
        Some(s) => s
            .parse()
            .map(Some)
            .map_err(|e| serde::de::Error::custom(format!("{s:?}: {e}"))),
    }
}

/// Reads a config-file size: a number of bytes, or text as its flag takes it
/// (`"500GiB"`), with an error that says which.
pub fn size<'de, D>(d: D) -> Result<Option<bytesize::ByteSize>, D::Error>
where
    D: Deserializer<'de>,
{
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Bytes(u64),
        Text(String),
    }
    match Option::<Raw>::deserialize(d)? {
        None => Ok(None),
        Some(Raw::Bytes(n)) => Ok(Some(bytesize::ByteSize(n))),
        Some(Raw::Text(s)) => s.parse().map(Some).map_err(|e| {
            serde::de::Error::custom(format!(
                "{s:?} is not a size ({e}): write e.g. \"500GiB\", or a number of bytes"
            ))
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::Merge;

    #[test]
    fn the_upper_layer_wins_where_it_has_a_value() {
        assert_eq!(Some(1).or(Some(2)), Some(1));
        assert_eq!(None.or(Some(2)), Some(2));
        assert_eq!(None::<u8>.or(None), None);
        assert_eq!(vec![1].or(vec![2, 3]), vec![1]);
        assert_eq!(Vec::<u8>::new().or(vec![2, 3]), vec![2, 3]);
        assert!(false.or(true));
        assert!(true.or(false));
        assert!(!false.or(false));
    }
}
