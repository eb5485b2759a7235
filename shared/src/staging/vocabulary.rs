//! The staging vocabulary: room types and decor styles. One enumeration serves request
//! validation, the database CHECK constraints (a test keeps them in step), prompts and docs.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

macro_rules! vocabulary {
    ($(#[$meta:meta])* $name:ident, $label:literal { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        /// Stored as its text (a CHECK constraint lists the same values) and decoded back to the
        /// enum, so it stays typed from the request to the row and back.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, sqlx::Type)]
        #[serde(rename_all = "snake_case")]
        #[sqlx(type_name = "text")]
        pub enum $name { $(#[sqlx(rename = $text)] $variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                $name::ALL
                    .iter()
                    .copied()
                    .find(|v| v.as_str() == s)
                    .ok_or_else(|| format!(
                        "must be one of: {}",
                        $name::ALL.iter().map(|v| v.as_str()).collect::<Vec<_>>().join(", ")
                    ))
            }
        }
    };
}

vocabulary!(
    /// The kind of room in the photo.
    RoomType, "room type" {
        LivingRoom => "living_room",
        Bedroom => "bedroom",
        Kitchen => "kitchen",
        Bathroom => "bathroom",
        DiningRoom => "dining_room",
        Office => "office",
        Entryway => "entryway",
        Outdoor => "outdoor",
    }
);

vocabulary!(
    /// The decor style to stage the room in.
    Style, "style" {
        Modern => "modern",
        Contemporary => "contemporary",
        Traditional => "traditional",
        Industrial => "industrial",
        Scandinavian => "scandinavian",
    }
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_round_trips_and_matches_serde() {
        for room in RoomType::ALL {
            assert_eq!(room.as_str().parse::<RoomType>().unwrap(), *room);
            assert_eq!(serde_json::to_value(room).unwrap(), room.as_str());
        }
        for style in Style::ALL {
            assert_eq!(style.as_str().parse::<Style>().unwrap(), *style);
            assert_eq!(serde_json::to_value(style).unwrap(), style.as_str());
        }
        assert!("Bedroom".parse::<RoomType>().unwrap_err().contains("living_room"));
    }
}
