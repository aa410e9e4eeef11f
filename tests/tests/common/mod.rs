//! The federation the fetch and feed tests share: a root, a district and
//! two streets, their certificates, replicas on real stores, and the
//! district's and the first street's sessions with each other.

use gongjian_engine::{LocalIdentity, Replica};
use gongjian_identity::{Certificate, RecordBody, Secret, SignedRecord, UnitId, UnitKind};
use gongjian_store::Store;
use gongjian_sync::{PeerProgress, Role, Session};

pub const NOW: u64 = 1_780_000_000;
pub const DISTRICT: &str = "320106000000";
pub const STREETS: [&str; 2] = ["320106002000", "320106003000"];

pub fn cert(
    root: &Secret,
    subject: &Secret,
    unit: &str,
    kind: UnitKind,
    parent: Option<&str>,
) -> SignedRecord {
    Certificate {
        subject: subject.public(),
        unit: unit.parse().unwrap(),
        kind,
        parent: parent.map(|p| p.parse().unwrap()),
        name: format!("{unit}单位"),
        not_before: NOW - 10,
        not_after: NOW + 86_400,
    }
    .sign(root)
}

/// The federation of these tests: the root, the district's key, the two
/// streets' keys, and their certificates (the district's first).
pub struct Fed {
    pub root: Secret,
    pub d_secret: Secret,
    pub s_secrets: [Secret; 2],
    pub certs: Vec<SignedRecord>,
}

pub fn fed() -> Fed {
    let root = Secret::from_seed([1; 32]);
    let d_secret = Secret::from_seed([2; 32]);
    let s_secrets = [Secret::from_seed([3; 32]), Secret::from_seed([4; 32])];
    let mut certs = vec![cert(&root, &d_secret, DISTRICT, UnitKind::District, None)];
    for (s, unit) in s_secrets.iter().zip(STREETS) {
        certs.push(cert(&root, s, unit, UnitKind::Street, Some(DISTRICT)));
    }
    Fed {
        root,
        d_secret,
        s_secrets,
        certs,
    }
}

pub fn replica(root: &Secret, secret: &Secret, unit: &str) -> (tempfile::TempDir, Replica) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::create(dir.path()).unwrap();
    store.bump_epoch(NOW).unwrap();
    let r = Replica::open(
        store,
        root.public(),
        Some(LocalIdentity {
            secret: secret.clone(),
            unit: unit.parse::<UnitId>().unwrap(),
        }),
    )
    .unwrap();
    (dir, r)
}

/// A district's session with the first street (it dialled: it leads) and
/// the street's with the district.
pub fn district_and_street_sessions() -> (Session, Session) {
    (
        Session::new(
            STREETS[0].parse().unwrap(),
            Role::Initiator,
            PeerProgress::default(),
        ),
        Session::new(
            DISTRICT.parse().unwrap(),
            Role::Responder,
            PeerProgress::default(),
        ),
    )
}
