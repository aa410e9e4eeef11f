//! Unit ids follow the codes units already have: the 12-digit statistical
//! division code (district, street, community) and the 18-character unified
//! social credit code of GB 32100 (resident units), check character included.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::UnitIdError;

const CREDIT_CHARSET: &[u8; 31] = b"0123456789ABCDEFGHJKLMNPQRTUWXY";
const CREDIT_WEIGHTS: [u32; 17] = [
    1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28,
];

/// The kind of a unit in the administrative tree.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum UnitKind {
    District,
    Street,
    Community,
    Resident,
}

impl UnitKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            UnitKind::District => "district",
            UnitKind::Street => "street",
            UnitKind::Community => "community",
            UnitKind::Resident => "resident",
        }
    }

    /// The Chinese name shown to users.
    pub fn label_zh(&self) -> &'static str {
        match self {
            UnitKind::District => "区",
            UnitKind::Street => "街道",
            UnitKind::Community => "社区",
            UnitKind::Resident => "驻区单位",
        }
    }
}

impl fmt::Display for UnitKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for UnitKind {
    type Err = UnitIdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "district" => UnitKind::District,
            "street" => UnitKind::Street,
            "community" => UnitKind::Community,
            "resident" | "resident_unit" | "resident-unit" => UnitKind::Resident,
            other => return Err(UnitIdError::Kind(other.to_owned())),
        })
    }
}

/// A unit id: a division code or a unified social credit code.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum UnitId {
    /// 12 ASCII digits.
    Division([u8; 12]),
    /// 18 characters of the GB 32100 alphabet, check character verified.
    Credit([u8; 18]),
}

impl UnitId {
    pub fn as_str(&self) -> &str {
        let bytes: &[u8] = match self {
            UnitId::Division(b) => b,
            UnitId::Credit(b) => b,
        };
        std::str::from_utf8(bytes).unwrap_or_else(|_| unreachable!("ascii checked at parse"))
    }

    /// The kind this code's shape says it is: `None` for a credit code of a
    /// resident unit is never the case; division codes tell their level.
    pub fn implied_kind(&self) -> UnitKind {
        match self {
            UnitId::Credit(_) => UnitKind::Resident,
            UnitId::Division(d) => {
                if d[6..] == *b"000000" {
                    UnitKind::District
                } else if d[9..] == *b"000" {
                    UnitKind::Street
                } else {
                    UnitKind::Community
                }
            }
        }
    }

    /// The parent a division code implies: a community's street, a street's
    /// district. Resident units (credit codes) and districts have none.
    pub fn implied_parent(&self) -> Option<UnitId> {
        let UnitId::Division(d) = self else {
            return None;
        };
        let mut p = *d;
        match self.implied_kind() {
            UnitKind::Community => p[9..].copy_from_slice(b"000"),
            UnitKind::Street => p[6..].copy_from_slice(b"000000"),
            _ => return None,
        }
        Some(UnitId::Division(p))
    }

    /// The street whose region a division code lies in: a community's
    /// street, a street itself, a district itself. `None` for a credit code
    /// (a resident unit's street is its certified parent's).
    pub fn division_street(&self) -> Option<UnitId> {
        match self.implied_kind() {
            UnitKind::Community => self.implied_parent(),
            UnitKind::Street | UnitKind::District => Some(*self),
            UnitKind::Resident => None,
        }
    }

    /// A division code's 12 digits as a number (ordered as the codes are);
    /// `None` for a credit code.
    pub fn division_number(&self) -> Option<u64> {
        let UnitId::Division(d) = self else {
            return None;
        };
        Some(d.iter().fold(0u64, |n, c| n * 10 + u64::from(c - b'0')))
    }

    /// Checks that the id is the code of a unit of `kind`.
    pub fn check_kind(&self, kind: UnitKind) -> Result<(), UnitIdError> {
        if self.implied_kind() == kind {
            Ok(())
        } else {
            Err(UnitIdError::KindMismatch {
                id: self.to_string(),
                kind: kind.as_str(),
            })
        }
    }

    /// Checks that `parent` may admit this unit: a street under its district,
    /// a community under its street, a resident unit under a street or community.
    pub fn check_parent(&self, parent: &UnitId) -> Result<(), UnitIdError> {
        let err = |reason| UnitIdError::Parent {
            child: self.to_string(),
            parent: parent.to_string(),
            reason,
        };
        let (child_kind, parent_kind) = (self.implied_kind(), parent.implied_kind());
        let (c, p) = (self.as_str().as_bytes(), parent.as_str().as_bytes());
        match (child_kind, parent_kind) {
            (UnitKind::District, _) => Err(err("a district has no parent")),
            (UnitKind::Street, UnitKind::District) if c[..6] == p[..6] => Ok(()),
            (UnitKind::Street, UnitKind::District) => {
                Err(err("the street code is not within the district"))
            }
            (UnitKind::Street, _) => Err(err("a street's parent is its district")),
            (UnitKind::Community, UnitKind::Street) if c[..9] == p[..9] => Ok(()),
            (UnitKind::Community, UnitKind::Street) => {
                Err(err("the community code is not within the street"))
            }
            (UnitKind::Community, _) => Err(err("a community's parent is its street")),
            (UnitKind::Resident, UnitKind::Street | UnitKind::Community) => Ok(()),
            (UnitKind::Resident, _) => {
                Err(err("a resident unit's parent is a street or community"))
            }
        }
    }
}

fn credit_check_char(first17: &[u8]) -> Option<u8> {
    let mut sum = 0u32;
    for (i, c) in first17.iter().enumerate() {
        let v = CREDIT_CHARSET.iter().position(|x| x == c)? as u32;
        sum += v * CREDIT_WEIGHTS[i];
    }
    let check = (31 - sum % 31) % 31;
    Some(CREDIT_CHARSET[check as usize])
}

impl FromStr for UnitId {
    type Err = UnitIdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let b = s.as_bytes();
        if b.len() == 12 && b.iter().all(u8::is_ascii_digit) {
            if b.iter().all(|c| *c == b'0') {
                return Err(UnitIdError::Zero(s.to_owned()));
            }
            let mut d = [0u8; 12];
            d.copy_from_slice(b);
            return Ok(UnitId::Division(d));
        }
        if b.len() == 18 && s.is_ascii() {
            if let Some(ch) = s.chars().find(|c| !CREDIT_CHARSET.contains(&(*c as u8))) {
                return Err(UnitIdError::CreditChar {
                    id: s.to_owned(),
                    ch,
                });
            }
            let expected = credit_check_char(&b[..17])
                .unwrap_or_else(|| unreachable!("charset checked above"));
            if b[17] != expected {
                return Err(UnitIdError::CheckChar {
                    id: s.to_owned(),
                    expected: expected as char,
                });
            }
            let mut c = [0u8; 18];
            c.copy_from_slice(b);
            return Ok(UnitId::Credit(c));
        }
        Err(UnitIdError::Shape(s.to_owned()))
    }
}

impl fmt::Display for UnitId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for UnitId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "UnitId({})", self.as_str())
    }
}

impl Serialize for UnitId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for UnitId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <&str>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn division_codes_tell_their_level() {
        let d: UnitId = "320106000000".parse().unwrap();
        let s: UnitId = "320106002000".parse().unwrap();
        let c: UnitId = "320106002001".parse().unwrap();
        assert_eq!(d.implied_kind(), UnitKind::District);
        assert_eq!(s.implied_kind(), UnitKind::Street);
        assert_eq!(c.implied_kind(), UnitKind::Community);
        s.check_parent(&d).unwrap();
        c.check_parent(&s).unwrap();
        assert!(c.check_parent(&d).is_err());
        let other_street: UnitId = "320106003000".parse().unwrap();
        assert!(c.check_parent(&other_street).is_err());
        let other_district: UnitId = "320105000000".parse().unwrap();
        assert!(s.check_parent(&other_district).is_err());
    }

    #[test]
    fn credit_code_check_character() {
        let ok: UnitId = "91350100M000100Y43".parse().unwrap();
        assert_eq!(ok.implied_kind(), UnitKind::Resident);
        assert_eq!(
            "91350100M000100Y44".parse::<UnitId>(),
            Err(UnitIdError::CheckChar {
                id: "91350100M000100Y44".into(),
                expected: '3'
            })
        );
        assert!(matches!(
            "91350100I000100Y43".parse::<UnitId>(),
            Err(UnitIdError::CreditChar { ch: 'I', .. })
        ));
    }

    #[test]
    fn malformed_ids_are_refused() {
        for bad in [
            "",
            "32010600000",
            "3201060000001",
            "000000000000",
            "街道办事处",
            "32010600000x",
        ] {
            assert!(bad.parse::<UnitId>().is_err(), "{bad} accepted");
        }
    }
}
