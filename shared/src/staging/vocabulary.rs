//! The staging vocabulary: operations, room types and decor styles. One enumeration serves request
//! validation, the database CHECK constraints (a test keeps them in step), prompts and docs.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

macro_rules! vocabulary {
    ($(#[$meta:meta])* $name:ident, $label:literal { $($(#[$vmeta:meta])* $variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        /// Stored as its text (a CHECK constraint lists the same values) and decoded back to the
        /// enum, so it stays typed from the request to the row and back.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, sqlx::Type)]
        #[serde(rename_all = "snake_case")]
        #[sqlx(type_name = "text")]
        pub enum $name { $($(#[$vmeta])* #[sqlx(rename = $text)] $variant),+ }

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

vocabulary!(
    /// What a job does to the photo.
    Operation, "operation" {
        /// Furnish an empty room in a style (the default).
        Stage => "stage",
        /// Empty the room: remove furniture and clutter, keep everything built in.
        Declutter => "declutter",
        /// Replace an occupied room's furniture with new furniture in a style.
        DeclutterAndStage => "declutter_and_stage",
        /// Turn a daytime exterior photo into a dusk photo.
        Twilight => "twilight",
    }
);

impl Operation {
    /// Whether the operation furnishes the room, and so needs a style.
    pub fn furnishes(self) -> bool {
        matches!(self, Operation::Stage | Operation::DeclutterAndStage)
    }

    /// Twilight is for exterior photos (room type `outdoor`); every other operation suits every
    /// room type. Returns why not, for a 422.
    pub fn check_room(self, room: RoomType) -> Result<(), String> {
        if self == Operation::Twilight && room != RoomType::Outdoor {
            return Err("twilight is for exterior photos: use room_type outdoor".into());
        }
        Ok(())
    }
}

/// What a job does, parsed: the operation together with the style it furnishes in, when it
/// furnishes. Built only by [`Treatment::new`], so a stage without a style or a declutter with
/// one cannot exist past validation (the `images_style_fits_operation` CHECK says the same).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Treatment {
    Stage(Style),
    Declutter,
    DeclutterAndStage(Style),
    Twilight,
}

impl Treatment {
    /// Pairs an operation with its style, or says what is wrong with the pair (field, message).
    pub fn new(operation: Operation, style: Option<Style>) -> Result<Self, (&'static str, String)> {
        match (operation, style) {
            (Operation::Stage, Some(style)) => Ok(Treatment::Stage(style)),
            (Operation::DeclutterAndStage, Some(style)) => Ok(Treatment::DeclutterAndStage(style)),
            (Operation::Declutter, None) => Ok(Treatment::Declutter),
            (Operation::Twilight, None) => Ok(Treatment::Twilight),
            (operation, None) => Err(("style", format!("is required for {operation}"))),
            (operation, Some(_)) => Err((
                "style",
                format!("does not apply to {operation} (only stage and declutter_and_stage furnish a room)"),
            )),
        }
    }

    pub fn operation(self) -> Operation {
        match self {
            Treatment::Stage(_) => Operation::Stage,
            Treatment::Declutter => Operation::Declutter,
            Treatment::DeclutterAndStage(_) => Operation::DeclutterAndStage,
            Treatment::Twilight => Operation::Twilight,
        }
    }

    pub fn style(self) -> Option<Style> {
        match self {
            Treatment::Stage(style) | Treatment::DeclutterAndStage(style) => Some(style),
            Treatment::Declutter | Treatment::Twilight => None,
        }
    }
}

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
        for operation in Operation::ALL {
            assert_eq!(operation.as_str().parse::<Operation>().unwrap(), *operation);
            assert_eq!(serde_json::to_value(operation).unwrap(), operation.as_str());
        }
    }

    #[test]
    fn a_treatment_has_a_style_exactly_when_it_furnishes() {
        for operation in Operation::ALL {
            for style in [None, Some(Style::Modern)] {
                let treatment = Treatment::new(*operation, style);
                assert_eq!(
                    treatment.is_ok(),
                    operation.furnishes() == style.is_some(),
                    "{operation} {style:?}"
                );
                if let Ok(treatment) = treatment {
                    assert_eq!(treatment.operation(), *operation);
                    assert_eq!(treatment.style(), style);
                }
            }
        }
        assert_eq!(
            Treatment::new(Operation::Declutter, Some(Style::Modern)).unwrap_err().1,
            "does not apply to declutter (only stage and declutter_and_stage furnish a room)"
        );
    }

    #[test]
    fn twilight_is_for_exteriors_only() {
        assert!(Operation::Twilight.check_room(RoomType::Outdoor).is_ok());
        assert!(Operation::Twilight.check_room(RoomType::Bedroom).is_err());
        for room in RoomType::ALL {
            assert!(Operation::Declutter.check_room(*room).is_ok());
        }
    }
}
