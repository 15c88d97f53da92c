//! SMS rules: how many segments a text takes and in which encoding, and what an inbound keyword means.
//!
//! A segment holds 140 octets. GSM-7: 160 septets alone, 153 per part when split; the extension
//! characters (form feed, `^ { } \ [ ~ ] | €`) take two septets and are never split across parts.
//! One character outside GSM-7 makes the whole message UCS-2: 70 UTF-16 units alone, 67 per part, and
//! a surrogate pair (an emoji) is never split.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Encoding {
    Gsm7,
    Ucs2,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segments {
    pub encoding: Encoding,
    pub count: u32,
}

const GSM7_BASIC: &str =
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
const GSM7_EXTENSION: &str = "\u{000C}^{}\\[~]|€";

/// Septets a character takes in GSM-7, or `None` if it is not in the alphabet.
fn gsm7_septets(c: char) -> Option<u32> {
    if GSM7_BASIC.contains(c) {
        Some(1)
    } else if GSM7_EXTENSION.contains(c) {
        Some(2)
    } else {
        None
    }
}

/// Pack units into parts of `per_part`, never splitting one character's units.
fn pack(units: impl Iterator<Item = u32>, single: u32, per_part: u32) -> u32 {
    let units: Vec<u32> = units.collect();
    let total: u32 = units.iter().sum();
    if total == 0 {
        return 0;
    }
    if total <= single {
        return 1;
    }
    let (mut parts, mut used) = (1, 0);
    for u in units {
        if used + u > per_part {
            parts += 1;
            used = 0;
        }
        used += u;
    }
    parts
}

pub fn segments(text: &str) -> Segments {
    let gsm: Option<Vec<u32>> = text.chars().map(gsm7_septets).collect();
    match gsm {
        Some(septets) => Segments { encoding: Encoding::Gsm7, count: pack(septets.into_iter(), 160, 153) },
        None => Segments { encoding: Encoding::Ucs2, count: pack(text.chars().map(|c| c.len_utf16() as u32), 70, 67) },
    }
}

/// What an inbound message says about consent, by its first word (case and punctuation tolerant).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Keyword {
    /// STOP, STOPALL, UNSUBSCRIBE, CANCEL, END, QUIT: no more messages to this contact.
    OptOut,
    /// START, UNSTOP: messages may be sent again.
    OptIn,
    /// HELP: recorded.
    Help,
}

pub fn keyword(text: &str) -> Option<Keyword> {
    let word: String = text.trim().chars().filter(|c| c.is_alphanumeric()).collect::<String>().to_uppercase();
    match word.as_str() {
        "STOP" | "STOPALL" | "UNSUBSCRIBE" | "CANCEL" | "END" | "QUIT" => Some(Keyword::OptOut),
        "START" | "UNSTOP" => Some(Keyword::OptIn),
        "HELP" => Some(Keyword::Help),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(text: &str) -> (Encoding, u32) {
        let s = segments(text);
        (s.encoding, s.count)
    }

    #[test]
    fn gsm7_boundaries() {
        use Encoding::Gsm7;
        let cases = [
            ("".to_owned(), (Gsm7, 0)),
            ("a".to_owned(), (Gsm7, 1)),
            ("a".repeat(160), (Gsm7, 1)),
            ("a".repeat(161), (Gsm7, 2)),
            ("a".repeat(306), (Gsm7, 2)),
            ("a".repeat(307), (Gsm7, 3)),
            ("a".repeat(459), (Gsm7, 3)),
            ("a".repeat(460), (Gsm7, 4)),
            ("@£$¥èéùìòÇ".repeat(16), (Gsm7, 1)),
        ];
        for (text, want) in cases {
            assert_eq!(seg(&text), want, "{} chars", text.chars().count());
        }
    }

    #[test]
    fn extension_characters_count_twice_and_are_never_split() {
        use Encoding::Gsm7;
        assert_eq!(seg(&"€".repeat(80)), (Gsm7, 1), "80 x 2 septets = 160");
        assert_eq!(seg(&format!("{}a", "€".repeat(80))), (Gsm7, 2));
        assert_eq!(seg(&"[".repeat(81)), (Gsm7, 2));
        // 152 septets then an escape pair: it does not fit in the first part's last septet.
        assert_eq!(seg(&format!("{}{}{}", "a".repeat(152), "{", "a".repeat(152))), (Gsm7, 3));
        assert_eq!(seg(&format!("{}{}{}", "a".repeat(151), "{", "a".repeat(153))), (Gsm7, 2));
        assert_eq!(seg("\u{000C}^{}\\[~]|€"), (Gsm7, 1));
    }

    #[test]
    fn ucs2_boundaries_and_emoji() {
        use Encoding::Ucs2;
        assert_eq!(seg(&"ж".repeat(70)), (Ucs2, 1));
        assert_eq!(seg(&"ж".repeat(71)), (Ucs2, 2));
        assert_eq!(seg(&"ж".repeat(134)), (Ucs2, 2));
        assert_eq!(seg(&"ж".repeat(135)), (Ucs2, 3));
        assert_eq!(seg(&"ж".repeat(201)), (Ucs2, 3));
        assert_eq!(seg(&"ж".repeat(202)), (Ucs2, 4));
        // One non-GSM character turns the whole message UCS-2.
        assert_eq!(seg(&format!("{}ж", "a".repeat(69))), (Ucs2, 1));
        assert_eq!(seg(&format!("{}ж", "a".repeat(70))), (Ucs2, 2));
        // An emoji is two UTF-16 units.
        assert_eq!(seg(&"😀".repeat(35)), (Ucs2, 1));
        assert_eq!(seg(&format!("{}a", "😀".repeat(35))), (Ucs2, 2));
        // 66 units then an emoji: the pair is not split, it opens the second part.
        assert_eq!(seg(&format!("{}😀{}", "ж".repeat(66), "ж".repeat(66))), (Ucs2, 3));
        assert_eq!(seg(&format!("{}😀{}", "ж".repeat(65), "ж".repeat(67))), (Ucs2, 2));
    }

    #[test]
    fn keywords_tolerate_case_and_punctuation() {
        for (text, want) in [
            ("STOP", Some(Keyword::OptOut)),
            ("stop.", Some(Keyword::OptOut)),
            ("  Stop!! ", Some(Keyword::OptOut)),
            ("StopAll", Some(Keyword::OptOut)),
            ("unsubscribe", Some(Keyword::OptOut)),
            ("Cancel", Some(Keyword::OptOut)),
            ("end", Some(Keyword::OptOut)),
            ("QUIT", Some(Keyword::OptOut)),
            ("start", Some(Keyword::OptIn)),
            ("UNSTOP", Some(Keyword::OptIn)),
            ("help?", Some(Keyword::Help)),
            ("please stop texting me", None),
            ("stopping by later", None),
            ("", None),
        ] {
            assert_eq!(keyword(text), want, "{text:?}");
        }
    }
}
