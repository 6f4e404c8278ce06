//! Numbering-plan data: ITU-T E.164 country calling codes, the dialling prefixes of each
//! country, and national number lengths where they are fixed enough to check.

/// Every assigned country calling code (ITU-T E.164 annex, including the shared codes for
/// global services). The set is prefix-free, so a number starts with at most one of them.
#[rustfmt::skip]
pub(super) const CALLING_CODES: &[u16] = &[
    1, 7,
    20, 27, 30, 31, 32, 33, 34, 36, 39, 40, 41, 43, 44, 45, 46, 47, 48, 49,
    51, 52, 53, 54, 55, 56, 57, 58, 60, 61, 62, 63, 64, 65, 66, 81, 82, 84, 86,
    90, 91, 92, 93, 94, 95, 98,
    211, 212, 213, 216, 218,
    220, 221, 222, 223, 224, 225, 226, 227, 228, 229,
    230, 231, 232, 233, 234, 235, 236, 237, 238, 239,
    240, 241, 242, 243, 244, 245, 246, 247, 248, 249,
    250, 251, 252, 253, 254, 255, 256, 257, 258,
    260, 261, 262, 263, 264, 265, 266, 267, 268, 269,
    290, 291, 297, 298, 299,
    350, 351, 352, 353, 354, 355, 356, 357, 358, 359,
    370, 371, 372, 373, 374, 375, 376, 377, 378, 379,
    380, 381, 382, 383, 385, 386, 387, 389,
    420, 421, 423,
    500, 501, 502, 503, 504, 505, 506, 507, 508, 509,
    590, 591, 592, 593, 594, 595, 596, 597, 598, 599,
    670, 672, 673, 674, 675, 676, 677, 678, 679,
    680, 681, 682, 683, 685, 686, 687, 688, 689,
    690, 691, 692,
    800, 808, 850, 852, 853, 855, 856, 870, 878, 880, 881, 882, 883, 886, 888,
    960, 961, 962, 963, 964, 965, 966, 967, 968,
    970, 971, 972, 973, 974, 975, 976, 977, 979,
    992, 993, 994, 995, 996, 998,
];

/// ISO 3166-1 alpha-2 code to country calling code (plus AC and XK, which have codes of
/// their own without being in ISO 3166-1).
#[rustfmt::skip]
pub(super) const COUNTRIES: &[(&str, u16)] = &[
    ("AC", 247), ("AD", 376), ("AE", 971), ("AF", 93), ("AG", 1), ("AI", 1), ("AL", 355),
    ("AM", 374), ("AO", 244), ("AQ", 672), ("AR", 54), ("AS", 1), ("AT", 43), ("AU", 61),
    ("AW", 297), ("AX", 358), ("AZ", 994),
    ("BA", 387), ("BB", 1), ("BD", 880), ("BE", 32), ("BF", 226), ("BG", 359), ("BH", 973),
    ("BI", 257), ("BJ", 229), ("BL", 590), ("BM", 1), ("BN", 673), ("BO", 591), ("BQ", 599),
    ("BR", 55), ("BS", 1), ("BT", 975), ("BW", 267), ("BY", 375), ("BZ", 501),
    ("CA", 1), ("CC", 61), ("CD", 243), ("CF", 236), ("CG", 242), ("CH", 41), ("CI", 225),
    ("CK", 682), ("CL", 56), ("CM", 237), ("CN", 86), ("CO", 57), ("CR", 506), ("CU", 53),
    ("CV", 238), ("CW", 599), ("CX", 61), ("CY", 357), ("CZ", 420),
    ("DE", 49), ("DJ", 253), ("DK", 45), ("DM", 1), ("DO", 1), ("DZ", 213),
    ("EC", 593), ("EE", 372), ("EG", 20), ("EH", 212), ("ER", 291), ("ES", 34), ("ET", 251),
    ("FI", 358), ("FJ", 679), ("FK", 500), ("FM", 691), ("FO", 298), ("FR", 33),
    ("GA", 241), ("GB", 44), ("GD", 1), ("GE", 995), ("GF", 594), ("GG", 44), ("GH", 233),
    ("GI", 350), ("GL", 299), ("GM", 220), ("GN", 224), ("GP", 590), ("GQ", 240), ("GR", 30),
    ("GS", 500), ("GT", 502), ("GU", 1), ("GW", 245), ("GY", 592),
    ("HK", 852), ("HN", 504), ("HR", 385), ("HT", 509), ("HU", 36),
    ("ID", 62), ("IE", 353), ("IL", 972), ("IM", 44), ("IN", 91), ("IO", 246), ("IQ", 964),
    ("IR", 98), ("IS", 354), ("IT", 39),
    ("JE", 44), ("JM", 1), ("JO", 962), ("JP", 81),
    ("KE", 254), ("KG", 996), ("KH", 855), ("KI", 686), ("KM", 269), ("KN", 1), ("KP", 850),
    ("KR", 82), ("KW", 965), ("KY", 1), ("KZ", 7),
    ("LA", 856), ("LB", 961), ("LC", 1), ("LI", 423), ("LK", 94), ("LR", 231), ("LS", 266),
    ("LT", 370), ("LU", 352), ("LV", 371), ("LY", 218),
    ("MA", 212), ("MC", 377), ("MD", 373), ("ME", 382), ("MF", 590), ("MG", 261), ("MH", 692),
    ("MK", 389), ("ML", 223), ("MM", 95), ("MN", 976), ("MO", 853), ("MP", 1), ("MQ", 596),
    ("MR", 222), ("MS", 1), ("MT", 356), ("MU", 230), ("MV", 960), ("MW", 265), ("MX", 52),
    ("MY", 60), ("MZ", 258),
    ("NA", 264), ("NC", 687), ("NE", 227), ("NF", 672), ("NG", 234), ("NI", 505), ("NL", 31),
    ("NO", 47), ("NP", 977), ("NR", 674), ("NU", 683), ("NZ", 64),
    ("OM", 968),
    ("PA", 507), ("PE", 51), ("PF", 689), ("PG", 675), ("PH", 63), ("PK", 92), ("PL", 48),
    ("PM", 508), ("PN", 64), ("PR", 1), ("PS", 970), ("PT", 351), ("PW", 680), ("PY", 595),
    ("QA", 974),
    ("RE", 262), ("RO", 40), ("RS", 381), ("RU", 7), ("RW", 250),
    ("SA", 966), ("SB", 677), ("SC", 248), ("SD", 249), ("SE", 46), ("SG", 65), ("SH", 290),
    ("SI", 386), ("SJ", 47), ("SK", 421), ("SL", 232), ("SM", 378), ("SN", 221), ("SO", 252),
    ("SR", 597), ("SS", 211), ("ST", 239), ("SV", 503), ("SX", 1), ("SY", 963), ("SZ", 268),
    ("TC", 1), ("TD", 235), ("TG", 228), ("TH", 66), ("TJ", 992), ("TK", 690), ("TL", 670),
    ("TM", 993), ("TN", 216), ("TO", 676), ("TR", 90), ("TT", 1), ("TV", 688), ("TW", 886),
    ("TZ", 255),
    ("UA", 380), ("UG", 256), ("US", 1), ("UY", 598), ("UZ", 998),
    ("VA", 39), ("VC", 1), ("VE", 58), ("VG", 1), ("VI", 1), ("VN", 84), ("VU", 678),
    ("WF", 681), ("WS", 685),
    ("XK", 383),
    ("YE", 967), ("YT", 262),
    ("ZA", 27), ("ZM", 260), ("ZW", 263),
];

/// The North American Numbering Plan countries (calling code 1).
const NANP: &[&str] = &[
    "US", "CA", "AG", "AI", "AS", "BB", "BM", "BS", "DM", "DO", "GD", "GU", "JM", "KN", "KY", "LC",
    "MP", "MS", "PR", "SX", "TC", "TT", "VC", "VG", "VI",
];

/// International call prefixes that are not the ITU-recommended `00`. Where a country has
/// several (carrier choice), all are listed; the longest match wins.
pub(super) const INTERNATIONAL_PREFIXES: &[(&[&str], &[&str])] = &[
    (NANP, &["011"]),
    (&["RU", "KZ", "BY", "UZ", "TJ", "TM"], &["810"]),
    (&["JP"], &["010"]),
    (&["AU", "CX", "CC"], &["0011"]),
    (
        &["KR"],
        &["00700", "001", "002", "005", "006", "008", "009"],
    ),
    (&["HK", "MN", "GY"], &["001"]),
    (&["SG"], &["000", "001", "002", "008"]),
    (&["ID", "TH"], &["001", "007", "008", "009"]),
    (&["KH"], &["001", "007", "008"]),
    (&["TW"], &["002", "005", "006", "007", "009"]),
    (&["CO"], &["005", "007", "009"]),
    (&["NG"], &["009"]),
    (&["KE", "UG", "TZ"], &["000"]),
    (&["CU"], &["119"]),
];

/// Countries without a trunk prefix: their national numbers are dialled as they are (and may
/// start with 0, as in Italy).
const NO_TRUNK_PREFIX: &[&str] = &[
    "AD", "AO", "AW", "BF", "BH", "BJ", "BZ", "CI", "CL", "CR", "CV", "CY", "CZ", "DK", "EE", "ES",
    "FO", "GI", "GL", "GM", "GQ", "GR", "GT", "GW", "HK", "HN", "IS", "IT", "KW", "LU", "LV", "MC",
    "ML", "MO", "MR", "MT", "MU", "MV", "MX", "NE", "NI", "NO", "OM", "PA", "PL", "PT", "QA", "SC",
    "SG", "SJ", "SM", "SN", "SR", "ST", "SV", "TG", "TN", "VA",
];

/// Trunk prefixes (dialled before a national number) that are not `0`, tried in order.
pub(super) const TRUNK_PREFIXES: &[(&[&str], &[&str])] = &[
    (NANP, &["1"]),
    (&["RU", "KZ", "UZ", "TJ", "TM"], &["8"]),
    // Belarus dials 8, a pause, then the area code with its 0: "8 017 ..." and "8 029 ...".
    (&["BY"], &["80", "8"]),
    (&["HU"], &["06"]),
    // Lithuania is moving its trunk prefix from 8 to 0; both are in use.
    (&["LT"], &["8", "0"]),
    (NO_TRUNK_PREFIX, &[]),
];

/// Countries whose international and trunk prefixes are followed by a two-digit carrier
/// selection code ("0 21 11 ..." and "00 21 49 ..." in Brazil).
pub(super) const CARRIER_SELECTION: &[&str] = &["BR"];

/// National significant number lengths (digits after the calling code), inclusive, where
/// every number of the calling code is known to fall in the range.
#[rustfmt::skip]
pub(super) const NATIONAL_LENGTHS: &[(u16, usize, usize)] = &[
    (1, 10, 10), (7, 10, 10),
    (20, 8, 10), (27, 9, 9), (30, 10, 10), (31, 9, 9), (32, 8, 9), (33, 9, 9), (34, 9, 9),
    (36, 8, 9), (39, 6, 11), (40, 9, 9), (41, 9, 9), (43, 4, 13), (44, 7, 10), (45, 8, 8),
    (46, 7, 10), (47, 8, 8), (48, 9, 9), (49, 6, 13),
    (51, 8, 9), (52, 10, 10), (54, 10, 11), (55, 10, 11), (56, 9, 9), (57, 10, 10),
    (58, 10, 10),
    (60, 8, 10), (61, 9, 9), (62, 7, 12), (63, 8, 10), (64, 8, 10), (65, 8, 8), (66, 8, 9),
    (81, 9, 10), (82, 8, 10), (84, 9, 10), (86, 9, 11),
    (90, 10, 10), (91, 10, 10), (92, 9, 10), (94, 9, 9), (98, 10, 10),
    (212, 9, 9), (213, 8, 9), (216, 8, 8), (225, 10, 10), (233, 9, 9), (234, 7, 10),
    (251, 9, 9), (254, 9, 9), (255, 9, 9), (256, 9, 9),
    (351, 9, 9), (353, 7, 9), (358, 5, 12), (359, 7, 9), (380, 9, 9), (385, 8, 9),
    (386, 8, 8), (420, 9, 9), (421, 9, 9),
    (880, 8, 10), (966, 9, 9), (971, 8, 9), (972, 8, 9),
];

/// Calling codes whose national significant numbers may start with 0 (Italy keeps the 0 of
/// its area codes; Côte d'Ivoire, Gabon, Congo, Benin and San Marino put it in every number).
pub(super) const LEADING_ZERO_ALLOWED: &[u16] = &[39, 225, 229, 241, 242, 378];

/// The trunk prefixes of `country` (an upper-case ISO code).
pub(super) fn trunk_prefixes(country: &str) -> &'static [&'static str] {
    TRUNK_PREFIXES
        .iter()
        .find(|(countries, _)| countries.contains(&country))
        .map_or(&["0"], |&(_, prefixes)| prefixes)
}

/// The international call prefixes of `country` (an upper-case ISO code), longest first.
pub(super) fn international_prefixes(country: &str) -> &'static [&'static str] {
    INTERNATIONAL_PREFIXES
        .iter()
        .find(|(countries, _)| countries.contains(&country))
        .map_or(&["00"], |&(_, prefixes)| prefixes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calling_codes_are_sorted_and_prefix_free() {
        assert!(CALLING_CODES.windows(2).all(|w| w[0] < w[1]));
        for &a in CALLING_CODES {
            for &b in CALLING_CODES {
                let (a, b) = (a.to_string(), b.to_string());
                assert!(a == b || !b.starts_with(&a), "{a} is a prefix of {b}");
            }
        }
    }

    #[test]
    fn every_country_has_an_assigned_code() {
        assert!(COUNTRIES.windows(2).all(|w| w[0].0 < w[1].0));
        for &(iso, code) in COUNTRIES {
            assert!(CALLING_CODES.contains(&code), "{iso} +{code}");
        }
        for table in [INTERNATIONAL_PREFIXES, TRUNK_PREFIXES] {
            for &(countries, _) in table {
                for iso in countries {
                    assert!(COUNTRIES.iter().any(|&(c, _)| c == *iso), "{iso}");
                }
            }
        }
    }

    #[test]
    fn international_prefixes_are_listed_longest_first() {
        for &(_, prefixes) in INTERNATIONAL_PREFIXES {
            assert!(prefixes.windows(2).all(|w| w[0].len() >= w[1].len()));
        }
    }

    #[test]
    fn length_table_is_consistent() {
        assert!(NATIONAL_LENGTHS.len() >= 40);
        assert!(NATIONAL_LENGTHS.windows(2).all(|w| w[0].0 < w[1].0));
        for &(code, min, max) in NATIONAL_LENGTHS {
            assert!(CALLING_CODES.contains(&code), "+{code}");
            assert!(min <= max && code.to_string().len() + max <= 15, "+{code}");
        }
    }
}
