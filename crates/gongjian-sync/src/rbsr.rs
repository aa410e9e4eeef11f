//! Range-based set reconciliation over document summaries (after Meyer,
//! "Range-Based Set Reconciliation", and negentropy): both sides sort their
//! items by key; a range whose fingerprints agree is skipped, a small range
//! is listed, a large one is split. Bytes grow with the differences, not
//! with the set. Each side only ever lists items its peer may see.

use gongjian_identity::{Hash, UnitId};
use serde::{Deserialize, Serialize};

/// Which set a reconciliation is about: records first, then documents.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum SetId {
    /// Signed records (certificates, revocations, geneses, heads
    /// announcements), keyed by hash, value zero.
    Records,
    /// Documents, keyed by id, valued by a digest of their heads.
    Docs,
}

/// An item's key: a record hash or a document id.
pub type Key = [u8; 32];

/// An item's short id: 8 bytes of a hash of the reconciliation's salt and
/// the item. Ranges small enough to list are listed by short id, and only
/// the items that differ travel whole. The salt is drawn at random by the
/// initiator for each reconciliation, so nobody can grind two items into
/// one id in advance.
pub type ShortId = [u8; 8];

/// The salt of one reconciliation (see [`ShortId`]).
pub type Salt = [u8; 8];

/// One element of a set: a key and a 16-byte summary of its state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Item {
    pub key: Key,
    pub value: [u8; 16],
}

/// Bytes of a record item's key that name its street ([`Item::record`]).
const REGION: usize = 5;
/// The region of records of no street: above every 12-digit code.
const NO_STREET: u64 = (1 << (8 * REGION)) - 1;

impl Item {
    /// A document's item: its id; the first 12 bytes of the digest of its
    /// sorted heads, then its count of accepted changes (u32, big-endian,
    /// saturating). The count tells which side of a difference is behind,
    /// so only that side asks (§8.3).
    pub fn doc(doc: &gongjian_identity::DocId, heads: &[Hash], changes: u64) -> Item {
        let mut parts: Vec<&[u8]> = vec![b"gongjian/v1/doc-state"];
        for h in heads {
            parts.push(h.as_bytes());
        }
        let d = Hash::of_parts(&parts);
        let mut value = [0u8; 16];
        value[..12].copy_from_slice(&d.as_bytes()[..12]);
        value[12..].copy_from_slice(&(changes.min(u32::MAX as u64) as u32).to_be_bytes());
        Item {
            key: *doc.as_bytes(),
            value,
        }
    }

    /// A document item's count of accepted changes.
    pub fn changes(&self) -> u32 {
        u32::from_be_bytes([
            self.value[12],
            self.value[13],
            self.value[14],
            self.value[15],
        ])
    }

    /// A record's item (records never change): the key is the number of
    /// the street whose region the record belongs to (5 bytes; `None`, a
    /// record of no street, sorts last) and the first 27 bytes of its hash,
    /// the value the hash's last 5 bytes. A street's records are
    /// neighbours in the key space, so what one street hub holds and a
    /// node lacks is a few ranges, not items spread over the whole set.
    pub fn record(street: Option<&UnitId>, hash: &Hash) -> Item {
        let region = street
            .and_then(UnitId::division_number)
            .unwrap_or(NO_STREET);
        let mut key = [0u8; 32];
        key[..REGION].copy_from_slice(&region.to_be_bytes()[8 - REGION..]);
        key[REGION..].copy_from_slice(&hash.as_bytes()[..32 - REGION]);
        let mut value = [0u8; 16];
        value[..REGION].copy_from_slice(&hash.as_bytes()[32 - REGION..]);
        Item { key, value }
    }

    /// The hash of a record's item ([`Item::record`]).
    pub fn record_hash(&self) -> Hash {
        let mut h = [0u8; 32];
        h[..32 - REGION].copy_from_slice(&self.key[REGION..]);
        h[32 - REGION..].copy_from_slice(&self.value[..REGION]);
        Hash(h)
    }

    /// The item's digest, summed into fingerprints.
    fn digest(&self) -> u128 {
        let d = Hash::of_parts(&[b"gongjian/v1/rbsr-item", &self.key, &self.value]);
        let mut b = [0u8; 16];
        b.copy_from_slice(&d.as_bytes()[..16]);
        u128::from_be_bytes(b)
    }

    /// The item's short id under `salt`.
    pub fn short_id(&self, salt: &Salt) -> ShortId {
        let d = Hash::of_parts(&[b"gongjian/v1/rbsr-id", salt, &self.key, &self.value]);
        let mut id = [0u8; 8];
        id.copy_from_slice(&d.as_bytes()[..8]);
        id
    }
}

/// The fingerprint of a range: a hash of the wrapping sum of its items'
/// digests and their count.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fingerprint(pub [u8; 16]);

/// The upper end of a range, exclusive; `None` is past every key. On the
/// wire a bound goes without its trailing zero bytes, and a split picks
/// the shortest zero-padded prefix that separates two items, so a bound
/// costs a few bytes rather than 32.
pub type Bound = Option<Key>;

mod bound_bytes {
    use super::{Bound, Key};
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub fn serialize<S: Serializer>(b: &Bound, s: S) -> Result<S::Ok, S::Error> {
        match b {
            None => s.serialize_none(),
            Some(k) => {
                let n = k.iter().rposition(|&x| x != 0).map_or(0, |i| i + 1);
                s.serialize_some(&k[..n])
            }
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Bound, D::Error> {
        match Option::<Vec<u8>>::deserialize(d)? {
            None => Ok(None),
            Some(v) if v.len() <= 32 => {
                let mut k: Key = [0; 32];
                k[..v.len()].copy_from_slice(&v);
                Ok(Some(k))
            }
            Some(v) => Err(D::Error::custom(format!(
                "range bound of {} bytes (at most 32)",
                v.len()
            ))),
        }
    }
}

/// The shortest zero-padded prefix of `hi` that is above `lo` (`lo < hi`).
fn bound_between(lo: &Key, hi: &Key) -> Key {
    for n in 1..32 {
        let mut k: Key = [0; 32];
        k[..n].copy_from_slice(&hi[..n]);
        if k > *lo {
            return k;
        }
    }
    *hi
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Mode {
    /// The sender holds the same items here.
    Skip,
    /// The sender's fingerprint of the range.
    Fingerprint(Fingerprint),
    /// The sender's items here, as sorted short ids: answer with `Diff`.
    Ids(Vec<ShortId>),
    /// The answer to `Ids`: the sender's items whose ids were not listed,
    /// and the listed ids the sender does not hold (send those items).
    Diff { items: Vec<Item>, ask: Vec<ShortId> },
    /// The items a `Diff` asked for; no answer.
    Items(Vec<Item>),
}

/// A range from the previous range's upper bound (or the start) to `upper`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Range {
    #[serde(with = "bound_bytes")]
    pub upper: Bound,
    pub mode: Mode,
}

/// A range of at most this many items is listed rather than split.
pub const LIST_THRESHOLD: usize = 16;
/// A range is split in this many parts.
pub const SPLIT: usize = 16;
/// Most ranges and listed items (ids and items together) one reconcile
/// message may carry.
pub const MAX_RANGES: usize = 4096;
pub const MAX_ITEMS: usize = 16_384;

/// Why a peer's reconcile message is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RbsrError {
    #[error("range {0}: upper bounds must increase and the last range must be unbounded")]
    Bounds(usize),
    #[error("range {0}: listed items must be sorted, unique and inside the range")]
    Items(usize),
    #[error("range {0}: listed ids must be sorted and unique")]
    Ids(usize),
    #[error("too many ranges or items ({0})")]
    TooMany(usize),
}

/// What answering a reconcile message gives.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Response {
    /// The ranges to send back; empty when every range agreed.
    pub reply: Vec<Range>,
    /// The peer's items (key and value) this side does not hold in that
    /// state.
    pub wanted: Vec<Item>,
}

/// What is used of a reply's caps; one range stays in reserve for the
/// closing fingerprint.
#[derive(Debug, Default)]
struct Budget {
    ranges: usize,
    items: usize,
}

impl Budget {
    fn take(&mut self, ranges: usize, items: usize) -> bool {
        if self.ranges + ranges >= MAX_RANGES || self.items + items > MAX_ITEMS {
            return false;
        }
        self.ranges += ranges;
        self.items += items;
        true
    }
}

fn listed(mode: &Mode) -> usize {
    match mode {
        Mode::Skip | Mode::Fingerprint(_) => 0,
        Mode::Ids(ids) => ids.len(),
        Mode::Diff { items, ask } => items.len() + ask.len(),
        Mode::Items(items) => items.len(),
    }
}

/// A sorted set of items with prefix sums of their digests, so any range's
/// fingerprint costs two binary searches.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    items: Vec<Item>,
    acc: Vec<u128>,
}

impl Snapshot {
    pub fn new(mut items: Vec<Item>) -> Snapshot {
        items.sort();
        items.dedup_by(|a, b| a.key == b.key);
        let mut acc = Vec::with_capacity(items.len() + 1);
        let mut sum = 0u128;
        acc.push(sum);
        for it in &items {
            sum = sum.wrapping_add(it.digest());
            acc.push(sum);
        }
        Snapshot { items, acc }
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// This side's item with `key`.
    pub fn get(&self, key: &Key) -> Option<&Item> {
        self.items
            .binary_search_by(|it| it.key.cmp(key))
            .ok()
            .map(|i| &self.items[i])
    }

    fn index(&self, bound: &Bound) -> usize {
        match bound {
            None => self.items.len(),
            Some(k) => self.items.partition_point(|it| it.key < *k),
        }
    }

    fn fingerprint(&self, a: usize, b: usize) -> Fingerprint {
        let sum = self.acc[b].wrapping_sub(self.acc[a]);
        let d = Hash::of_parts(&[
            b"gongjian/v1/rbsr-range",
            &sum.to_be_bytes(),
            &((b - a) as u64).to_be_bytes(),
        ]);
        let mut out = [0u8; 16];
        out.copy_from_slice(&d.as_bytes()[..16]);
        Fingerprint(out)
    }

    /// The short ids of `[a, b)`, sorted, each once (two items of one id
    /// under a random salt: as likely as guessing a 64-bit key).
    fn sorted_ids(&self, a: usize, b: usize, salt: &Salt) -> Vec<ShortId> {
        let mut ids: Vec<ShortId> = self.items[a..b].iter().map(|i| i.short_id(salt)).collect();
        ids.sort_unstable();
        ids.dedup();
        ids
    }

    /// The opening message: the whole set as one range.
    pub fn initial(&self, salt: &Salt) -> Vec<Range> {
        let mode = if self.items.len() <= LIST_THRESHOLD {
            Mode::Ids(self.sorted_ids(0, self.items.len(), salt))
        } else {
            Mode::Fingerprint(self.fingerprint(0, self.items.len()))
        };
        vec![Range { upper: None, mode }]
    }

    /// Splits `[a, b)` (more than `SPLIT` items) in `SPLIT` fingerprinted
    /// parts.
    fn split(&self, a: usize, b: usize, upper: Bound, out: &mut Vec<Range>) {
        let n = b - a;
        debug_assert!(n >= SPLIT);
        for i in 0..SPLIT {
            let (s, e) = (a + n * i / SPLIT, a + n * (i + 1) / SPLIT);
            let bound = if i + 1 == SPLIT {
                upper
            } else {
                Some(bound_between(&self.items[e - 1].key, &self.items[e].key))
            };
            out.push(Range {
                upper: bound,
                mode: Mode::Fingerprint(self.fingerprint(s, e)),
            });
        }
    }

    /// Checks a peer's step whole, so a bad range is refused wherever it is.
    fn check(ranges: &[Range]) -> Result<(), RbsrError> {
        let total: usize = ranges.iter().map(|r| listed(&r.mode)).sum();
        if ranges.len() > MAX_RANGES || total > MAX_ITEMS {
            return Err(RbsrError::TooMany(ranges.len().max(total)));
        }
        let mut lower: Option<Key> = None;
        for (i, r) in ranges.iter().enumerate() {
            let last = i + 1 == ranges.len();
            match (&r.upper, last) {
                (None, true) => {}
                (Some(u), false) if lower.is_none_or(|l| *u > l) => {}
                _ => return Err(RbsrError::Bounds(i)),
            }
            let inside =
                |it: &Item| lower.is_none_or(|l| it.key >= l) && r.upper.is_none_or(|u| it.key < u);
            let items_ok = |items: &[Item]| {
                items.windows(2).all(|w| w[0].key < w[1].key) && items.iter().all(inside)
            };
            let ids_ok = |ids: &[ShortId]| ids.windows(2).all(|w| w[0] < w[1]);
            match &r.mode {
                Mode::Items(items) | Mode::Diff { items, .. } if !items_ok(items) => {
                    return Err(RbsrError::Items(i));
                }
                Mode::Ids(ids) | Mode::Diff { ask: ids, .. } if !ids_ok(ids) => {
                    return Err(RbsrError::Ids(i));
                }
                _ => {}
            }
            lower = r.upper;
        }
        Ok(())
    }

    /// Answers a peer's ranges of the reconciliation salted `salt`.
    pub fn respond(&self, ranges: &[Range], salt: &Salt) -> Result<Response, RbsrError> {
        Self::check(ranges)?;
        let mut out = Response::default();
        // The reply stays within the caps the peer checks. Once the next
        // range's answer would not fit, the rest of the key space goes back
        // as one fingerprint, which the peer splits or lists next round; the
        // first range always fits, so every round makes progress.
        let mut budget = Budget::default();
        // Items of large ranges hashed for this step: at most the item cap
        // (ranges of 16 or fewer are always answered).
        let mut hashed = 0usize;
        let mut lower: Option<Key> = None;
        for r in ranges {
            // `lower` None is the start of the key space, `upper` None its end.
            let a = lower.map_or(0, |l| self.index(&Some(l)));
            let b = self.index(&r.upper);
            let mine = &self.items[a..b];
            let answer = match &r.mode {
                Mode::Skip => Mode::Skip,
                Mode::Fingerprint(fp) if self.fingerprint(a, b) == *fp => Mode::Skip,
                Mode::Fingerprint(_) if b - a <= LIST_THRESHOLD => {
                    Mode::Ids(self.sorted_ids(a, b, salt))
                }
                // Marked for a split below.
                Mode::Fingerprint(fp) => Mode::Fingerprint(*fp),
                // More here than fits in what is left of the cap: narrow it
                // down by fingerprints (decided before hashing a single id,
                // so a short step cannot make the node hash a large set).
                Mode::Ids(theirs)
                    if b - a > LIST_THRESHOLD
                        && (budget.items + (b - a) + theirs.len() > MAX_ITEMS
                            || hashed + (b - a) > MAX_ITEMS) =>
                {
                    Mode::Fingerprint(self.fingerprint(a, b))
                }
                Mode::Ids(theirs) => {
                    hashed += b - a;
                    let mut ours: Vec<(ShortId, usize)> =
                        (a..b).map(|i| (self.items[i].short_id(salt), i)).collect();
                    ours.sort_unstable();
                    let items: Vec<Item> = {
                        let mut v: Vec<Item> = ours
                            .iter()
                            .filter(|(id, _)| theirs.binary_search(id).is_err())
                            .map(|&(_, i)| self.items[i])
                            .collect();
                        v.sort_unstable();
                        v
                    };
                    let ask: Vec<ShortId> = theirs
                        .iter()
                        .filter(|id| ours.binary_search_by(|(o, _)| o.cmp(id)).is_err())
                        .copied()
                        .collect();
                    if items.is_empty() && ask.is_empty() {
                        Mode::Skip
                    } else {
                        Mode::Diff { items, ask }
                    }
                }
                Mode::Diff { items, ask } => {
                    out.wanted
                        .extend(items.iter().filter(|t| mine.binary_search(t).is_err()));
                    // An honest `Diff` answers our `Ids`, listed where we
                    // hold at most 16 items: asks over more are not hashed.
                    let sent: Vec<Item> = if ask.is_empty() || b - a > LIST_THRESHOLD {
                        Vec::new()
                    } else {
                        mine.iter()
                            .filter(|it| ask.binary_search(&it.short_id(salt)).is_ok())
                            .copied()
                            .collect()
                    };
                    if sent.is_empty() {
                        Mode::Skip
                    } else {
                        Mode::Items(sent)
                    }
                }
                Mode::Items(items) => {
                    out.wanted
                        .extend(items.iter().filter(|t| mine.binary_search(t).is_err()));
                    Mode::Skip
                }
            };
            let split = matches!(answer, Mode::Fingerprint(_));
            let need = if split { SPLIT } else { 1 };
            if !budget.take(need, listed(&answer)) {
                // This range is answered again when the peer narrows the
                // rest down.
                out.reply.push(Range {
                    upper: None,
                    mode: Mode::Fingerprint(self.fingerprint(a, self.items.len())),
                });
                return Ok(merge(out));
            }
            if split {
                self.split(a, b, r.upper, &mut out.reply);
            } else {
                out.reply.push(Range {
                    upper: r.upper,
                    mode: answer,
                });
            }
            lower = r.upper;
        }
        Ok(merge(out))
    }
}

/// Consecutive skips merge; all skips means agreement: nothing to send.
fn merge(mut out: Response) -> Response {
    let mut merged: Vec<Range> = Vec::with_capacity(out.reply.len());
    for r in out.reply.drain(..) {
        if let (Some(prev), Mode::Skip) = (merged.last_mut(), &r.mode)
            && prev.mode == Mode::Skip
        {
            prev.upper = r.upper;
            continue;
        }
        merged.push(r);
    }
    if merged.iter().all(|r| r.mode == Mode::Skip) {
        merged.clear();
    }
    out.reply = merged;
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const SALT: Salt = [7; 8];

    fn item(k: u32, v: u8) -> Item {
        let mut key = [0u8; 32];
        key[..4].copy_from_slice(&k.to_be_bytes());
        Item {
            key,
            value: [v; 16],
        }
    }

    /// Runs reconciliation to the end; returns what each side wanted and
    /// the bytes of the item lists exchanged.
    fn run(a: &Snapshot, b: &Snapshot) -> (Vec<Key>, Vec<Key>, usize) {
        let mut msg = a.initial(&SALT);
        let mut sides = [(a, Vec::new()), (b, Vec::new())];
        let mut turn = 1;
        let mut rounds = 0;
        while !msg.is_empty() {
            rounds += 1;
            assert!(rounds < MAX_ROUNDS_TEST, "reconciliation does not end");
            let r = sides[turn].0.respond(&msg, &SALT).unwrap();
            let listed: usize = r.reply.iter().map(|x| listed(&x.mode)).sum();
            assert!(r.reply.len() <= MAX_RANGES && listed <= MAX_ITEMS);
            sides[turn].1.extend(r.wanted.iter().map(|i| i.key));
            msg = r.reply;
            turn ^= 1;
        }
        let [(_, wa), (_, wb)] = sides;
        (wa, wb, rounds)
    }

    #[test]
    fn finds_exactly_the_differences() {
        let mut xs: Vec<Item> = (0..5000).map(|k| item(k * 3, 1)).collect();
        let ys_items = {
            let mut ys = xs.clone();
            ys[10].value = [2; 16]; // changed on b
            ys.remove(4000); // a has it, b lacks it
            ys.push(item(7, 1)); // b has it, a lacks it
            ys
        };
        xs.push(item(100_000, 9)); // a only
        let (a, b) = (Snapshot::new(xs), Snapshot::new(ys_items));
        let (mut wa, mut wb, rounds) = run(&a, &b);
        wa.sort();
        wb.sort();
        assert_eq!(wa, vec![item(7, 1).key, item(30, 1).key]);
        assert_eq!(
            wb,
            vec![item(30, 1).key, item(12_000, 1).key, item(100_000, 9).key]
        );
        assert!(rounds <= 8, "{rounds} rounds");
    }

    const MAX_ROUNDS_TEST: usize = 256;

    /// Bytes of the reconcile steps exchanged until the end.
    fn bytes_to_reconcile(a: &Snapshot, b: &Snapshot) -> usize {
        let step = |ranges: &Vec<Range>| {
            crate::message::encode(&crate::message::Message::Reconcile {
                set: SetId::Records,
                epoch: 0,
                round: 0,
                salt: SALT,
                ranges: ranges.clone(),
            })
            .len()
        };
        let mut msg = a.initial(&SALT);
        let mut bytes = step(&msg);
        let sides = [a, b];
        let mut turn = 1;
        while !msg.is_empty() {
            msg = sides[turn].respond(&msg, &SALT).unwrap().reply;
            bytes += step(&msg);
            turn ^= 1;
        }
        bytes
    }

    #[test]
    fn record_items_keep_their_hash_and_group_a_street_s_records() {
        let street = |s: u32| -> UnitId { format!("320106{s:03}000").parse().unwrap() };
        let h = |k: u32| Hash::of_parts(&[b"record", &k.to_be_bytes()]);
        let it = Item::record(Some(&street(2)), &h(1));
        assert_eq!(it.record_hash(), h(1));
        assert_eq!(Item::record(None, &h(1)).record_hash(), h(1));
        // Ordered by street first, then by hash; no street last.
        let mut items: Vec<(u32, Item)> = (0..300)
            .map(|k| (k % 3, Item::record(Some(&street(k % 3 + 1)), &h(k))))
            .chain((300..310).map(|k| (9, Item::record(None, &h(k)))))
            .collect();
        items.sort_by_key(|(_, i)| i.key);
        let order: Vec<u32> = items.iter().map(|(s, _)| *s).collect();
        let mut sorted = order.clone();
        sorted.sort();
        assert_eq!(order, sorted, "a street's records are neighbours");

        // A district holding every street's records but one street's 200
        // geneses, against that street's hub: the differences are one
        // region, reconciled in a fraction of what the same differences
        // spread over the key space cost.
        let set = |streets: bool, without: Option<u32>| {
            let mut v = Vec::new();
            for s in 1..=13u32 {
                for k in 0..250u32 {
                    if Some(s) == without && k >= 50 {
                        continue;
                    }
                    let hash = h(s * 1000 + k);
                    v.push(Item::record(streets.then(|| street(s)).as_ref(), &hash));
                }
            }
            Snapshot::new(v)
        };
        let grouped = bytes_to_reconcile(&set(true, Some(7)), &set(true, None));
        let spread = bytes_to_reconcile(&set(false, Some(7)), &set(false, None));
        // The 200 items themselves are 9,600 B (key and value).
        assert!(
            grouped < 2 * 200 * 48 && grouped * 2 < spread,
            "grouped by street {grouped} B, spread {spread} B"
        );
    }

    #[test]
    fn lopsided_sets_stay_within_the_caps() {
        // A peer that holds a few items meets one that holds 150,000: every
        // reply stays within the caps the other side enforces, and each
        // side ends up wanting exactly what it lacks.
        let big: Vec<Item> = (0..150_000).map(|k| item(k * 2, 1)).collect();
        let small: Vec<Item> = vec![item(1, 1), item(4, 1), item(299_999, 7)];
        let (a, b) = (Snapshot::new(big), Snapshot::new(small.clone()));
        for (x, y, flip) in [(&a, &b, false), (&b, &a, true)] {
            let (wx, wy, rounds) = run(x, y);
            let (wbig, wsmall) = if flip { (wy, wx) } else { (wx, wy) };
            // A key may be wanted more than once (the session fetches it once).
            let (mut wbig, mut wsmall) = (wbig, wsmall);
            wbig.sort();
            wbig.dedup();
            wsmall.sort();
            wsmall.dedup();
            assert_eq!(wbig, vec![item(1, 1).key, item(299_999, 7).key]);
            assert_eq!(wsmall.len(), 150_000 - 1, "all but item 4");
            eprintln!("lopsided: {rounds} rounds");
            assert!(rounds < 64, "{rounds} rounds");
        }
    }

    #[test]
    fn equal_sets_agree_in_one_round() {
        let xs: Vec<Item> = (0..10_000).map(|k| item(k, 1)).collect();
        let (a, b) = (Snapshot::new(xs.clone()), Snapshot::new(xs));
        let (wa, wb, rounds) = run(&a, &b);
        assert!(wa.is_empty() && wb.is_empty());
        assert_eq!(rounds, 1);
    }

    #[test]
    fn empty_sides() {
        let xs: Vec<Item> = (0..100).map(|k| item(k, 1)).collect();
        let (a, b) = (Snapshot::new(xs), Snapshot::new(vec![]));
        let (wa, wb, _) = run(&a, &b);
        assert!(wa.is_empty());
        assert_eq!(wb.len(), 100);
        let (wa, wb, _) = run(&b, &a);
        assert_eq!(wa.len(), 100);
        assert!(wb.is_empty());
    }

    #[test]
    fn bad_ranges_are_refused() {
        let s = Snapshot::new((0..10).map(|k| item(k, 1)).collect());
        let unbounded_first = vec![
            Range {
                upper: None,
                mode: Mode::Skip,
            },
            Range {
                upper: None,
                mode: Mode::Skip,
            },
        ];
        assert_eq!(
            s.respond(&unbounded_first, &SALT),
            Err(RbsrError::Bounds(0))
        );
        let unsorted = vec![Range {
            upper: None,
            mode: Mode::Items(vec![item(5, 1), item(2, 1)]),
        }];
        assert_eq!(s.respond(&unsorted, &SALT), Err(RbsrError::Items(0)));
        let outside = vec![
            Range {
                upper: Some(item(3, 0).key),
                mode: Mode::Diff {
                    items: vec![item(5, 1)],
                    ask: vec![],
                },
            },
            Range {
                upper: None,
                mode: Mode::Skip,
            },
        ];
        assert_eq!(s.respond(&outside, &SALT), Err(RbsrError::Items(0)));
        let ids = vec![Range {
            upper: None,
            mode: Mode::Ids(vec![[2; 8], [1; 8]]),
        }];
        assert_eq!(s.respond(&ids, &SALT), Err(RbsrError::Ids(0)));
        let bound = [0xffu8; 40];
        let mut long = crate::message::encode(&crate::Message::Reconcile {
            set: SetId::Docs,
            epoch: 0,
            round: 0,
            salt: SALT,
            ranges: vec![],
        });
        // Hand-built: one range whose bound claims 40 bytes.
        long.pop();
        long.extend([1u8, 1, 40]);
        long.extend(bound);
        long.push(0);
        assert!(crate::message::decode(&long).is_err());
    }

    #[test]
    fn bounds_travel_short_and_split_the_same() {
        // Random-looking keys: a split's bounds need a few bytes each.
        let xs: Vec<Item> = (0..3000u32)
            .map(|k| Item {
                key: *Hash::of(&k.to_be_bytes()).as_bytes(),
                value: [1; 16],
            })
            .collect();
        let s = Snapshot::new(xs.clone());
        let mut ranges = Vec::new();
        s.split(0, s.len(), None, &mut ranges);
        let bytes = postcard::to_stdvec(&ranges).unwrap();
        assert!(bytes.len() < 16 * 24, "{} bytes for 16 ranges", bytes.len());
        let back: Vec<Range> = postcard::from_bytes(&bytes).unwrap();
        assert_eq!(back, ranges);
        // Each part holds what it held with full keys as bounds.
        let n = s.len();
        for (i, r) in back.iter().enumerate() {
            assert_eq!(s.index(&r.upper), n * (i + 1) / SPLIT, "part {i}");
        }
    }

    #[test]
    fn a_few_differences_cost_few_bytes() {
        // 3,000 documents, 90 of them changed on one side: the bytes of the
        // whole reconciliation stay a small multiple of the differences.
        let key = |k: u32| *Hash::of(&k.to_be_bytes()).as_bytes();
        let xs: Vec<Item> = (0..3000u32)
            .map(|k| Item {
                key: key(k),
                value: [1; 16],
            })
            .collect();
        let mut ys = xs.clone();
        for k in 0..90 {
            ys[k * 33].value = [2; 16];
        }
        let (a, b) = (Snapshot::new(xs), Snapshot::new(ys));
        let mut msg = a.initial(&SALT);
        let mut sides = [(&a, 0usize), (&b, 0usize)];
        let (mut turn, mut bytes) = (1, 0);
        while !msg.is_empty() {
            bytes += postcard::to_stdvec(&msg).unwrap().len();
            let r = sides[turn].0.respond(&msg, &SALT).unwrap();
            sides[turn].1 += r.wanted.len();
            msg = r.reply;
            turn ^= 1;
        }
        assert_eq!(
            (sides[0].1, sides[1].1),
            (90, 90),
            "both learn every difference"
        );
        assert!(bytes < 90 * 300, "{bytes} bytes for 90 differences");
    }
}
