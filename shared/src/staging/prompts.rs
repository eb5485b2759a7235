//! The prompt library: one prompt per operation, room type and style, as data. Staging has one
//! per room and style (8 × 5 = 40); declutter and twilight one per room; declutter-and-stage
//! reuses the staging furnishing after an emptying step.
//!
//! Every prompt has the same shape, in this order, because image-edit models weigh the start of a
//! prompt most and the worst failure of virtual staging is an altered room (a moved window or a
//! repainted wall is misrepresentation in a property listing):
//! 1. structural preservation: walls, windows, doors, floors, ceilings and fixtures stay as shot;
//! 2. what to change: for staging, the room's rules, then the style's furniture, materials and
//!    palette; for declutter, what to take out; for twilight, the light;
//! 3. the finish: clear paths, furniture to scale, light and shadows that match.
//!
//! A custom prompt (validated at 10..=2000 characters when the image is created) replaces the
//! library prompt entirely; nothing is prepended or appended to it.
//!
//! The file is long because it is mostly the prompt text itself: the library is kept in one place
//! so it can be read and reviewed as one document.

use crate::staging::vocabulary::{RoomType, Style, Treatment};

/// The library prompt for a room and what is done to it.
pub fn library_prompt(room: RoomType, treatment: Treatment) -> String {
    match treatment {
        Treatment::Stage(style) => stage_prompt(room, style),
        Treatment::DeclutterAndStage(style) => declutter_and_stage_prompt(room, style),
        Treatment::Declutter => declutter_prompt(room),
        Treatment::Twilight => twilight_prompt(room),
    }
}

/// The prompt sent to the model: the custom prompt verbatim (trimmed) when there is one,
/// otherwise the library prompt.
pub fn build_prompt(room: RoomType, treatment: Treatment, custom: Option<&str>) -> String {
    match custom.map(str::trim).filter(|text| !text.is_empty()) {
        Some(text) => text.to_owned(),
        None => library_prompt(room, treatment),
    }
}

fn stage_prompt(room: RoomType, style: Style) -> String {
    let preservation = match room {
        RoomType::Outdoor => OUTDOOR_PRESERVATION,
        _ => INDOOR_PRESERVATION,
    };
    format!(
        "Virtually stage this {room_label} in {style_label} style for a real-estate listing photo. \
         {preservation} {rules} {furnishing} {placement}",
        room_label = room_label(room),
        style_label = style_label(style),
        rules = room_rules(room),
        furnishing = furnishing(room, style),
        placement = placement(room),
    )
}

/// An occupied room re-furnished: the same preservation, an emptying step naming no furniture of
/// its own (so the old furniture's look does not leak into the new), then the staging furnishing.
fn declutter_and_stage_prompt(room: RoomType, style: Style) -> String {
    let preservation = match room {
        RoomType::Outdoor => OUTDOOR_PRESERVATION,
        _ => INDOOR_PRESERVATION,
    };
    format!(
        "Replace the existing furniture of this {room_label} with new furniture in {style_label} style for a \
         real-estate listing photo. {preservation} {emptying} Then furnish it anew. {rules} {furnishing} \
         {placement}",
        room_label = room_label(room),
        style_label = style_label(style),
        emptying = EMPTYING,
        rules = room_rules(room),
        furnishing = furnishing(room, style),
        placement = placement(room),
    )
}

fn declutter_prompt(room: RoomType) -> String {
    let preservation = match room {
        RoomType::Outdoor => OUTDOOR_DECLUTTER_PRESERVATION,
        _ => INDOOR_DECLUTTER_PRESERVATION,
    };
    format!(
        "Empty this {room_label} for a real-estate listing photo: remove the furniture and clutter and show the \
         room as if it were vacant. {preservation} {emptying} {finish}",
        room_label = room_label(room),
        emptying = EMPTYING,
        finish = DECLUTTER_FINISH,
    )
}

fn twilight_prompt(room: RoomType) -> String {
    format!(
        "Turn this daytime photo of the {room_label} into a twilight photo for a real-estate listing, as if \
         taken at dusk. {TWILIGHT_PRESERVATION} {TWILIGHT_LIGHT}",
        room_label = room_label(room),
    )
}

fn placement(room: RoomType) -> &'static str {
    match room {
        RoomType::Outdoor => OUTDOOR_PLACEMENT,
        _ => INDOOR_PLACEMENT,
    }
}

/// What a declutter removes, in general words: it never names a piece of furniture, so the model
/// is not primed to draw one.
const EMPTYING: &str = "Remove every movable item: all furniture, loose floor coverings, wall art, decor, \
     personal belongings, boxes and clutter. Where an item stood, continue the floor, walls and skirting behind \
     it seamlessly, with the same material, pattern, colour and lighting, and leave no outlines, shadows or \
     marks of what was removed.";

const INDOOR_DECLUTTER_PRESERVATION: &str = "Structural preservation comes first: keep all walls, windows, \
     doors, floors, ceilings and fixtures exactly as photographed, with the same positions, sizes, materials, \
     paint colours and finishes, including light fixtures, switches, outlets, vents, radiators, fireplaces, \
     built-in cabinetry, counters and appliances that are built in. Do not add, remove, move, resize or repaint \
     any of them, and keep the camera angle, framing and perspective unchanged.";

const OUTDOOR_DECLUTTER_PRESERVATION: &str = "Structural preservation comes first: keep all walls, windows, \
     doors, floors and ground surfaces (decking, paving, lawn), ceilings of porches or overhangs, and fixtures \
     (outdoor lights, railings, steps, pergolas, built-in planters and seating) exactly as photographed. Do not \
     add, remove, move or repaint any of them, keep the landscaping, sky and view unchanged, and keep the \
     camera angle, framing and perspective unchanged.";

const DECLUTTER_FINISH: &str = "Add nothing. The result must look like a real photograph of the same space, \
     empty and clean, with the original light, not a rendering.";

const TWILIGHT_PRESERVATION: &str = "Structural preservation comes first: keep the building, roof, walls, \
     windows, doors, floors and ground surfaces, fixtures, landscaping and every object exactly as photographed, \
     with the same positions, sizes, materials and colours. Do not add, remove, move or repaint anything, and \
     keep the camera angle, framing and perspective unchanged. Only the light and the sky change.";

const TWILIGHT_LIGHT: &str = "Replace the sky with a clear dusk sky, deep blue above and warm orange and pink \
     near the horizon; lower the ambient light to dusk; show a soft warm glow from the interior through the \
     windows and switch on the existing exterior light fixtures, with realistic reflections and soft shadows. \
     The result must look like a real photograph taken at twilight, not a rendering.";

fn room_label(room: RoomType) -> &'static str {
    match room {
        RoomType::LivingRoom => "living room",
        RoomType::Bedroom => "bedroom",
        RoomType::Kitchen => "kitchen",
        RoomType::Bathroom => "bathroom",
        RoomType::DiningRoom => "dining room",
        RoomType::Office => "home office",
        RoomType::Entryway => "entryway",
        RoomType::Outdoor => "outdoor space",
    }
}

/// With its article, so the opening reads "in an industrial style".
fn style_label(style: Style) -> &'static str {
    match style {
        Style::Modern => "a modern",
        Style::Contemporary => "a contemporary",
        Style::Traditional => "a traditional",
        Style::Industrial => "an industrial",
        Style::Scandinavian => "a Scandinavian",
    }
}

const INDOOR_PRESERVATION: &str = "Structural preservation comes first: keep all walls, windows, doors, floors, \
     ceilings and fixtures exactly as photographed, with the same positions, sizes, materials, paint colours and \
     finishes, including light fixtures, switches, outlets, vents, radiators, fireplaces and built-in cabinetry. \
     Do not add, remove, move, resize or repaint any of them, and keep the camera angle, framing and perspective \
     unchanged. Only add movable furniture, rugs, art and decor.";

const OUTDOOR_PRESERVATION: &str = "Structural preservation comes first: keep all walls, windows, doors, floors and \
     ground surfaces (decking, paving, lawn), ceilings of porches or overhangs, and fixtures (outdoor lights, \
     railings, steps, pergolas, planters, built-in seating) exactly as photographed. Do not add, remove, move or \
     repaint any of them, keep the landscaping, sky and view unchanged, and keep the camera angle, framing and \
     perspective unchanged. Only add movable outdoor furniture and decor.";

const INDOOR_PLACEMENT: &str = "Placement: keep doorways, hallways and walking paths clear, scale every piece \
     correctly to the room, rest furniture on the floor with realistic contact shadows, and match lighting, \
     shadows and reflections to the existing light sources. The result must look like a real photograph of the \
     same room, not a rendering.";

const OUTDOOR_PLACEMENT: &str = "Placement: keep doors, steps and garden paths clear, scale every piece correctly \
     to the space, rest furniture on the ground with realistic contact shadows, and keep the natural daylight, \
     shadows and sky as photographed. The result must look like a real photograph of the same place, not a \
     rendering.";

/// The one sentence of a bedroom prompt that may name living-room furniture (to forbid it).
const BEDROOM_FORBIDDEN: &str = "Do not add a sofa, sectional, TV, media console or any other living-room \
     furniture.";

/// The one sentence of an outdoor prompt that may name indoor furniture (to forbid it).
const OUTDOOR_FORBIDDEN: &str = "Do not place indoor upholstered furniture, indoor rugs or indoor lamps \
     outside.";

fn room_rules(room: RoomType) -> String {
    match room {
        RoomType::LivingRoom => "Furnish it as a living room: seating grouped into a conversation area facing \
             the room's focal point, a coffee table, an area rug, a lamp and wall art."
            .to_owned(),
        RoomType::Bedroom => format!(
            "This room is for sleeping: the bed is the focal piece, headboard against the main wall, with a \
             nightstand and lamp on each side. {BEDROOM_FORBIDDEN} A single reading chair is allowed only in a \
             corner. Keep closet doors and the area in front of closets clear."
        ),
        RoomType::Kitchen => "Keep the staging deliberately minimal: do not add, replace or move appliances, \
             cabinets, countertops or the sink. Add stools only at an existing island or peninsula, and only a \
             few countertop items."
            .to_owned(),
        RoomType::Bathroom => "Keep the staging deliberately minimal: do not add, replace or move the tub, \
             shower, toilet, vanity, sink, mirror, any plumbing or any appliance. Add only towels, a bath mat, a \
             plant and a few toiletries."
            .to_owned(),
        RoomType::DiningRoom => "Furnish it as a dining room: a table with four to eight chairs sized to the \
             room, centred under the existing ceiling light (do not change that light), with a sideboard against \
             a wall."
            .to_owned(),
        RoomType::Office => "Furnish it as a home office: a desk facing the window or into the room, a desk \
             chair, a task lamp and storage."
            .to_owned(),
        RoomType::Entryway => "Furnish it as an entryway: a narrow console, a mirror or art above it, a lamp \
             and a place to sit or drop bags, keeping the path from the front door fully clear."
            .to_owned(),
        RoomType::Outdoor => format!(
            "This is an exterior space: use only weather-resistant outdoor furniture made for the outdoors \
             (powder-coated aluminium or steel, teak or acacia, all-weather wicker, outdoor-fabric cushions). \
             {OUTDOOR_FORBIDDEN} Keep the existing surfaces and built-ins as they are."
        ),
    }
}

/// The furnishing language of each room in each style: the pieces, their materials and the palette.
/// Every pair is listed once; the order follows `RoomType::ALL` then `Style::ALL`.
const FURNISHING: [(RoomType, Style, &str); 40] = [
    (
        RoomType::LivingRoom,
        Style::Modern,
        "Use a low-profile sofa with straight lines in charcoal, a white lacquer coffee table on a slim black \
         metal base, a pair of sculptural accent chairs, a low media console, a grey and black flat-weave rug, \
         a matte black floor lamp and one large abstract canvas. Palette: white, grey and black with one muted \
         accent; few accessories.",
    ),
    (
        RoomType::LivingRoom,
        Style::Contemporary,
        "Use a softly curved sofa in cream boucle, a round light-oak coffee table, two rounded accent chairs in \
         taupe, a textured greige wool rug, an arched brushed-brass floor lamp and layered neutral art. Palette: \
         cream, sand, taupe and soft sage with mixed textures.",
    ),
    (
        RoomType::LivingRoom,
        Style::Traditional,
        "Use a rolled-arm sofa in navy fabric, a pair of wingback chairs, a carved dark-walnut coffee table, a \
         Persian-style rug in burgundy and gold, brass table lamps with pleated shades and framed landscape \
         paintings, arranged symmetrically. Palette: navy, burgundy, cream and warm wood.",
    ),
    (
        RoomType::LivingRoom,
        Style::Industrial,
        "Use a cognac leather sofa, a reclaimed-wood coffee table on a blackened-steel frame, a metal-framed \
         armchair, a distressed rug in charcoal and rust, a tripod floor lamp with an Edison bulb and \
         black-framed vintage prints. Palette: charcoal, rust, concrete grey and aged wood.",
    ),
    (
        RoomType::LivingRoom,
        Style::Scandinavian,
        "Use a light-grey linen sofa on tapered pale-oak legs, a round birch coffee table, a lounge chair with a \
         sheepskin throw, a cream wool rug, a simple white floor lamp, a few green plants and minimal line-art \
         prints. Palette: white, soft grey, pale wood and muted pastels.",
    ),
    (
        RoomType::Bedroom,
        Style::Modern,
        "Use a low platform bed with a flat grey headboard, crisp white bedding with a charcoal throw, two \
         matte black nightstands with slim metal lamps, a low-pile grey rug under the bed and one large abstract \
         print above the headboard. Palette: white, grey and black.",
    ),
    (
        RoomType::Bedroom,
        Style::Contemporary,
        "Use a bed with a channel-tufted oatmeal headboard, layered cream and sand bedding with a textured \
         throw, rounded oak nightstands with ceramic lamps, a soft greige wool rug and brushed-brass framed art. \
         Palette: warm neutrals with soft sage accents.",
    ),
    (
        RoomType::Bedroom,
        Style::Traditional,
        "Use a sleigh bed in dark cherry wood, a matelasse coverlet with damask cushions in navy and cream, \
         matching wooden nightstands with brass lamps and pleated shades, a Persian-style rug and framed \
         botanical prints, arranged symmetrically. Palette: navy, cream, burgundy and warm wood.",
    ),
    (
        RoomType::Bedroom,
        Style::Industrial,
        "Use a black iron bed frame with a reclaimed-wood headboard, charcoal and rust linen bedding, \
         metal-and-wood nightstands with caged Edison-bulb lamps, a distressed flat-weave rug in grey and brick \
         and black-framed photography above the bed. Palette: charcoal, rust and aged wood.",
    ),
    (
        RoomType::Bedroom,
        Style::Scandinavian,
        "Use a pale-oak bed with a simple slatted headboard, white and soft-grey linen bedding with a knitted \
         throw, light birch nightstands with white ceramic lamps, a cream wool rug, a sheepskin at the foot of \
         the bed and a small potted plant. Palette: white, pale wood and muted sage.",
    ),
    (
        RoomType::Kitchen,
        Style::Modern,
        "Use backless matte black metal stools; on the counter place only a white ceramic bowl of green apples \
         and a slim glass vase. Palette: white, grey and black; keep surfaces mostly clear.",
    ),
    (
        RoomType::Kitchen,
        Style::Contemporary,
        "Use curved-back stools with cream seats on light-oak legs; on the counter place a wooden serving \
         board, a bowl of lemons and a small olive tree in a textured pot. Palette: cream, oak and soft green.",
    ),
    (
        RoomType::Kitchen,
        Style::Traditional,
        "Use ladder-back wooden stools in warm cherry; on the counter place a ceramic crock of wooden utensils, \
         a bowl of fruit and fresh flowers in a cream pitcher. Palette: cream, warm wood and soft red.",
    ),
    (
        RoomType::Kitchen,
        Style::Industrial,
        "Use black steel stools with reclaimed-wood seats; on the counter place a thick wooden cutting board, \
         black enamel canisters and herbs in a galvanised pot. Palette: black, steel grey and aged wood.",
    ),
    (
        RoomType::Kitchen,
        Style::Scandinavian,
        "Use pale birch stools; on the counter place a light-wood cutting board, a linen tea towel, a white bowl \
         of fruit and a small green plant. Palette: white, pale wood and soft green.",
    ),
    (
        RoomType::Bathroom,
        Style::Modern,
        "Add crisp white towels folded on the existing rails, a charcoal bath mat, a single glass vase with one \
         green stem and a matte black soap dispenser. Palette: white, charcoal and black.",
    ),
    (
        RoomType::Bathroom,
        Style::Contemporary,
        "Add plush towels in sand and cream, a textured cotton bath mat, a eucalyptus bundle in a stone vase and \
         an amber glass soap dispenser. Palette: sand, cream and stone.",
    ),
    (
        RoomType::Bathroom,
        Style::Traditional,
        "Add white towels with a navy trim, a classic cotton bath mat, a small arrangement of roses in a \
         porcelain vase and a brass-trimmed soap dish. Palette: white, navy and brass.",
    ),
    (
        RoomType::Bathroom,
        Style::Industrial,
        "Add charcoal waffle towels, a teak slatted bath mat, a small plant in a concrete pot and a matte black \
         soap dispenser. Palette: charcoal, concrete grey and teak.",
    ),
    (
        RoomType::Bathroom,
        Style::Scandinavian,
        "Add white and pale grey linen towels, a natural cotton bath mat, a small green plant in a white ceramic \
         pot and a wooden tray with a few simple toiletries. Palette: white, pale grey and light wood.",
    ),
    (
        RoomType::DiningRoom,
        Style::Modern,
        "Use a rectangular table with a black lacquer top on a slim metal base, moulded chairs in grey, a low \
         matte white sideboard, a flat-weave rug larger than the table and one bold abstract canvas. Palette: \
         white, grey and black.",
    ),
    (
        RoomType::DiningRoom,
        Style::Contemporary,
        "Use an oval light-oak table on a pedestal base, curved upholstered chairs in oatmeal, a fluted oak \
         sideboard, a textured rug in warm neutrals, a ceramic centrepiece and soft neutral art. Palette: \
         oatmeal, oak and warm white.",
    ),
    (
        RoomType::DiningRoom,
        Style::Traditional,
        "Use a polished mahogany table with turned legs, upholstered chairs in burgundy damask, a wooden buffet \
         with a framed mirror above, a Persian-style rug and a silver candelabra centrepiece. Palette: \
         burgundy, gold, cream and dark wood.",
    ),
    (
        RoomType::DiningRoom,
        Style::Industrial,
        "Use a reclaimed-wood trestle table on black steel legs, black metal chairs, a wood-and-steel \
         sideboard, a charcoal rug and a concrete bowl as the centrepiece. Palette: black, charcoal, rust and \
         aged wood.",
    ),
    (
        RoomType::DiningRoom,
        Style::Scandinavian,
        "Use a pale-oak table with wishbone-style chairs in natural wood, a simple birch sideboard, a cream wool \
         rug and a linen runner with a small vase of greenery. Palette: white, pale wood and soft green.",
    ),
    (
        RoomType::Office,
        Style::Modern,
        "Use a clean-lined white desk on a black metal frame, a black ergonomic chair, a slim matte black task \
         lamp, a low white storage cabinet, a few books and one abstract print. Palette: white, grey and black.",
    ),
    (
        RoomType::Office,
        Style::Contemporary,
        "Use a light-oak desk with rounded corners, a cream upholstered desk chair, a brushed-brass task lamp, a \
         fluted oak credenza, a textured rug in warm neutrals and a trailing plant. Palette: cream, oak and \
         brass.",
    ),
    (
        RoomType::Office,
        Style::Traditional,
        "Use a dark-walnut writing desk with brass pulls, a tufted oxblood leather desk chair, a green-shaded \
         banker's lamp, a wooden bookcase with leather-bound books and framed antique maps. Palette: walnut, \
         oxblood, green and brass.",
    ),
    (
        RoomType::Office,
        Style::Industrial,
        "Use a reclaimed-wood desk on a black steel frame, a cognac leather chair on a metal base, an \
         articulated black task lamp, a steel-and-wood bookshelf and black-framed prints. Palette: black steel, \
         cognac and aged wood.",
    ),
    (
        RoomType::Office,
        Style::Scandinavian,
        "Use a birch desk with tapered legs, a white moulded chair with a sheepskin, a simple white task lamp, a \
         pale-wood bookshelf with a few books and plants and a cream wool rug. Palette: white, pale wood and \
         soft grey.",
    ),
    (
        RoomType::Entryway,
        Style::Modern,
        "Use a slim matte black console, a round frameless mirror, a sculptural white table lamp, a low black \
         metal bench and a grey runner. Palette: white, grey and black.",
    ),
    (
        RoomType::Entryway,
        Style::Contemporary,
        "Use a curved light-oak console, an arched brass mirror, a cream ceramic lamp, a woven basket for shoes \
         and a textured greige runner. Palette: cream, oak and brass.",
    ),
    (
        RoomType::Entryway,
        Style::Traditional,
        "Use a carved walnut console table, a gilded framed mirror, a pair of brass candlestick lamps, an \
         upholstered bench and a Persian-style runner. Palette: walnut, gold, burgundy and cream.",
    ),
    (
        RoomType::Entryway,
        Style::Industrial,
        "Use a narrow steel-and-reclaimed-wood console, a black metal-framed mirror, an Edison-bulb lamp, a \
         wooden bench on a metal frame and a charcoal flat-weave runner. Palette: black, charcoal and aged wood.",
    ),
    (
        RoomType::Entryway,
        Style::Scandinavian,
        "Use a pale-oak console, a round mirror with a thin wooden frame, a white ceramic lamp, a birch bench \
         with a sheepskin, a woven basket and a cream runner. Palette: white, pale wood and natural fibres.",
    ),
    (
        RoomType::Outdoor,
        Style::Modern,
        "Use charcoal powder-coated aluminium lounge seating with grey outdoor-fabric cushions, a low \
         concrete-look coffee table, sleek sun loungers if there is space and tall planters with architectural \
         grasses. Palette: charcoal, grey and green.",
    ),
    (
        RoomType::Outdoor,
        Style::Contemporary,
        "Use curved all-weather wicker lounge chairs with cream outdoor-fabric cushions, a round teak coffee \
         table, a woven outdoor rug in sand, ceramic lanterns and potted olive trees. Palette: sand, cream and \
         olive.",
    ),
    (
        RoomType::Outdoor,
        Style::Traditional,
        "Use a teak dining set with classic slatted chairs, navy-and-white striped outdoor-fabric cushions, a \
         canvas market umbrella and terracotta pots with flowering plants. Palette: teak, navy, white and \
         terracotta.",
    ),
    (
        RoomType::Outdoor,
        Style::Industrial,
        "Use black powder-coated steel chairs, an acacia-and-steel outdoor dining table, galvanised metal \
         planters with herbs and solar lanterns on the table. Palette: black, galvanised grey and warm acacia.",
    ),
    (
        RoomType::Outdoor,
        Style::Scandinavian,
        "Use light acacia chairs with simple slatted forms, white and soft-grey outdoor-fabric cushions, a small \
         slatted side table, a natural-look outdoor rug and greenery in white planters. Palette: white, light \
         wood and green.",
    ),
];

fn furnishing(room: RoomType, style: Style) -> &'static str {
    FURNISHING
        .iter()
        .find(|(r, s, _)| *r == room && *s == style)
        .map_or("", |(_, _, text)| text)
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    fn all_prompts() -> Vec<(RoomType, Style, String)> {
        RoomType::ALL
            .iter()
            .flat_map(|room| {
                Style::ALL
                    .iter()
                    .map(move |style| (*room, *style, stage_prompt(*room, *style)))
            })
            .collect()
    }

    #[test]
    fn the_table_covers_every_room_and_style_exactly_once() {
        let pairs: HashSet<(RoomType, Style)> = FURNISHING.iter().map(|(room, style, _)| (*room, *style)).collect();
        assert_eq!(pairs.len(), RoomType::ALL.len() * Style::ALL.len());
        for (room, style, text) in &FURNISHING {
            assert!(!text.trim().is_empty(), "{room}/{style} has no furnishing text");
            assert_eq!(furnishing(*room, *style), *text);
        }
    }

    #[test]
    fn every_prompt_preserves_the_structure_first() {
        for (room, style, prompt) in all_prompts() {
            let lower = prompt.to_lowercase();
            for element in ["walls", "windows", "doors", "floors", "ceilings", "fixtures"] {
                assert!(
                    lower.contains(element),
                    "{room}/{style} does not name {element}: {prompt}"
                );
            }
            let preservation = lower.find("structural preservation").unwrap();
            let furnishing_start = lower.find(&furnishing(room, style).to_lowercase()).unwrap();
            assert!(
                preservation < furnishing_start,
                "{room}/{style}: preservation must come before furnishing"
            );
            assert!(lower.contains("do not add, remove, move"), "{room}/{style}");
        }
    }

    #[test]
    fn every_prompt_ends_with_the_placement_rules() {
        for (room, style, prompt) in all_prompts() {
            let lower = prompt.to_lowercase();
            let placement = lower.rfind("placement:").unwrap();
            assert!(placement > lower.find(&furnishing(room, style).to_lowercase()).unwrap());
            assert!(lower[placement..].contains("clear"), "{room}/{style}: paths kept clear");
            assert!(
                lower[placement..].contains("scale"),
                "{room}/{style}: furniture to scale"
            );
            assert!(
                lower[placement..].contains("shadows"),
                "{room}/{style}: realistic shadows"
            );
        }
    }

    #[test]
    fn every_prompt_names_its_room_and_style() {
        for (room, style, prompt) in all_prompts() {
            let lower = prompt.to_lowercase();
            assert!(lower.contains(style.as_str()), "{room}/{style} does not name its style");
            assert!(
                lower.contains(room_label(room)),
                "{room}/{style} does not name its room"
            );
        }
    }

    #[test]
    fn the_opening_frames_the_task() {
        assert!(
            stage_prompt(RoomType::Office, Style::Industrial).starts_with(
                "Virtually stage this home office in an industrial style for a real-estate listing photo."
            )
        );
        assert!(
            stage_prompt(RoomType::LivingRoom, Style::Scandinavian)
                .starts_with("Virtually stage this living room in a Scandinavian style for")
        );
    }

    #[test]
    fn every_pair_has_its_own_prompt() {
        let pairs = RoomType::ALL.len() * Style::ALL.len();
        let prompts = all_prompts();
        assert_eq!(prompts.len(), pairs);
        let distinct: HashSet<&str> = prompts.iter().map(|(_, _, prompt)| prompt.as_str()).collect();
        assert_eq!(distinct.len(), pairs);
        let distinct_furnishing: HashSet<&str> = FURNISHING.iter().map(|(_, _, text)| *text).collect();
        assert_eq!(distinct_furnishing.len(), pairs);
    }

    #[test]
    fn prompt_lengths_fit_the_custom_prompt_bounds() {
        for (room, style, prompt) in all_prompts() {
            let length = prompt.chars().count();
            assert!((600..=2000).contains(&length), "{room}/{style} is {length} characters");
            assert!(!prompt.contains("  "), "{room}/{style} has a double space: {prompt}");
            assert!(!prompt.contains('\n'), "{room}/{style} has a line break");
            assert_eq!(prompt.trim(), prompt);
        }
    }

    #[test]
    fn bedrooms_centre_on_the_bed_and_forbid_living_room_furniture() {
        for style in Style::ALL {
            let prompt = stage_prompt(RoomType::Bedroom, *style);
            let lower = prompt.to_lowercase();
            assert!(lower.contains("bed is the focal piece"), "{style}");
            assert!(lower.contains("main wall"), "{style}");
            assert!(lower.contains("nightstand"), "{style}");
            assert!(lower.contains("closet"), "{style}");
            assert!(prompt.contains(BEDROOM_FORBIDDEN), "{style}");
            // Outside the forbidding sentence nothing may suggest living-room furniture.
            let rest = prompt.replace(BEDROOM_FORBIDDEN, "").to_lowercase();
            for word in [
                "sofa",
                "sectional",
                " tv",
                "television",
                "media",
                "couch",
                "coffee table",
            ] {
                assert!(!rest.contains(word), "bedroom/{style} suggests {word:?}: {prompt}");
            }
        }
    }

    #[test]
    fn outdoor_prompts_use_weather_resistant_furniture_only() {
        for style in Style::ALL {
            let prompt = stage_prompt(RoomType::Outdoor, *style);
            let lower = prompt.to_lowercase();
            assert!(lower.contains("weather-resistant outdoor furniture"), "{style}");
            assert!(lower.contains("keep the existing surfaces and built-ins"), "{style}");
            assert!(prompt.contains(OUTDOOR_FORBIDDEN), "{style}");
            let rest = prompt.replace(OUTDOOR_FORBIDDEN, "").to_lowercase();
            for word in ["upholster", "leather", "velvet", "boucle", "indoor", "sofa"] {
                assert!(!rest.contains(word), "outdoor/{style} suggests {word:?}: {prompt}");
            }
        }
    }

    #[test]
    fn kitchens_and_bathrooms_stay_minimal() {
        for style in Style::ALL {
            for room in [RoomType::Kitchen, RoomType::Bathroom] {
                let lower = stage_prompt(room, *style).to_lowercase();
                assert!(lower.contains("deliberately minimal"), "{room}/{style}");
                assert!(lower.contains("do not add, replace or move"), "{room}/{style}");
                assert!(lower.contains("appliance"), "{room}/{style}");
            }
        }
    }

    #[test]
    fn styles_change_the_furnishing_language() {
        // Each style's signature materials appear in every room it furnishes.
        let signatures = [
            (Style::Modern, ["black", "white", "grey"].as_slice()),
            (
                Style::Contemporary,
                ["cream", "oak", "brass", "sand", "oatmeal", "teak", "wicker"].as_slice(),
            ),
            (
                Style::Traditional,
                ["navy", "walnut", "cherry", "mahogany", "brass", "teak", "persian"].as_slice(),
            ),
            (
                Style::Industrial,
                ["steel", "reclaimed", "edison", "concrete", "charcoal", "galvanised"].as_slice(),
            ),
            (
                Style::Scandinavian,
                ["pale", "birch", "light", "sheepskin", "linen"].as_slice(),
            ),
        ];
        for (style, words) in signatures {
            for room in RoomType::ALL {
                let text = furnishing(*room, style).to_lowercase();
                assert!(words.iter().any(|word| text.contains(word)), "{room}/{style}: {text}");
                assert!(text.contains("palette:"), "{room}/{style} names no palette");
            }
        }
    }

    #[test]
    fn a_custom_prompt_replaces_the_library_prompt_verbatim() {
        let custom = "  Add a red sofa and nothing else.\n";
        let prompt = build_prompt(RoomType::Bedroom, Treatment::Stage(Style::Modern), Some(custom));
        assert_eq!(prompt, "Add a red sofa and nothing else.");
    }

    #[test]
    fn without_a_custom_prompt_the_library_prompt_is_used() {
        for custom in [None, Some(""), Some("   \n ")] {
            assert_eq!(
                build_prompt(RoomType::Office, Treatment::Stage(Style::Industrial), custom),
                library_prompt(RoomType::Office, Treatment::Stage(Style::Industrial))
            );
        }
    }

    /// The words of a text, lower case, so "bed" does not match inside "bedroom".
    fn words(text: &str) -> HashSet<String> {
        text.to_lowercase()
            .split(|c: char| !c.is_ascii_alphabetic())
            .filter(|w| !w.is_empty())
            .map(str::to_owned)
            .collect()
    }

    const FURNITURE_WORDS: &[&str] = &[
        "bed",
        "beds",
        "nightstand",
        "nightstands",
        "sofa",
        "couch",
        "chair",
        "chairs",
        "table",
        "tables",
        "desk",
        "lamp",
        "lamps",
        "rug",
        "rugs",
        "dresser",
        "headboard",
        "bedding",
        "sectional",
        "stool",
        "stools",
        "shelf",
    ];

    #[test]
    fn declutter_prompts_keep_the_structure_and_name_no_furniture() {
        for room in RoomType::ALL {
            let prompt = library_prompt(*room, Treatment::Declutter);
            let lower = prompt.to_lowercase();
            assert!(
                lower.starts_with(&format!("empty this {}", room_label(*room))),
                "{prompt}"
            );
            for element in ["walls", "windows", "doors", "floors", "fixtures", "camera angle"] {
                assert!(lower.contains(element), "{room} declutter does not keep {element}");
            }
            assert!(lower.find("structural preservation").unwrap() < lower.find("remove every movable").unwrap());
            let found: Vec<&str> = FURNITURE_WORDS
                .iter()
                .copied()
                .filter(|w| words(&prompt).contains(*w))
                .collect();
            assert!(found.is_empty(), "{room} declutter names {found:?}: {prompt}");
            assert!(lower.contains("add nothing"), "{room}");
        }
    }

    #[test]
    fn declutter_and_stage_empties_then_furnishes_in_the_style() {
        for room in RoomType::ALL {
            for style in Style::ALL {
                let prompt = library_prompt(*room, Treatment::DeclutterAndStage(*style));
                let lower = prompt.to_lowercase();
                let preserve = lower.find("structural preservation").unwrap();
                let empty = lower.find("remove every movable").unwrap();
                let furnish = lower.find(&furnishing(*room, *style).to_lowercase()).unwrap();
                assert!(preserve < empty && empty < furnish, "{room}/{style}: {prompt}");
                assert!(lower.contains(style.as_str()), "{room}/{style}");
                assert!((600..=2000).contains(&prompt.chars().count()), "{room}/{style} length");
                assert_ne!(prompt, stage_prompt(*room, *style));
            }
        }
    }

    #[test]
    fn twilight_changes_only_the_light() {
        let prompt = library_prompt(RoomType::Outdoor, Treatment::Twilight);
        let lower = prompt.to_lowercase();
        assert!(lower.contains("dusk") && lower.contains("twilight"));
        assert!(lower.contains("do not add, remove, move or repaint anything"));
        assert!(lower.find("structural preservation").unwrap() < lower.find("replace the sky").unwrap());
        let found: Vec<&str> = FURNITURE_WORDS
            .iter()
            .copied()
            .filter(|w| words(&prompt).contains(*w))
            .collect();
        assert!(found.is_empty(), "twilight names {found:?}");
    }

    #[test]
    fn every_operation_has_its_own_prompt_within_bounds() {
        let mut seen = HashSet::new();
        for room in RoomType::ALL {
            let mut treatments = vec![Treatment::Declutter, Treatment::Twilight];
            treatments.extend(
                Style::ALL
                    .iter()
                    .flat_map(|s| [Treatment::Stage(*s), Treatment::DeclutterAndStage(*s)]),
            );
            for treatment in treatments {
                let prompt = library_prompt(*room, treatment);
                let length = prompt.chars().count();
                assert!(
                    (300..=2000).contains(&length),
                    "{room}/{treatment:?} is {length} characters"
                );
                assert!(!prompt.contains("  "), "{room}/{treatment:?} has a double space");
                assert!(seen.insert(prompt), "{room}/{treatment:?} repeats another prompt");
            }
        }
    }
}
